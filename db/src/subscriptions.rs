//! Subscriptions: who is told of which events, and how (an email, at once or in a daily digest,
//! or a signed webhook), and the hosts an admin lets webhooks reach although they are private.
//!
//! A subscription for an organisation is told of that organisation's events and of national ones
//! (an advisory, a line's cap); one with no organisation (admins and auditors) of every event.
//! Who may hold which subscription is the API's rule; this module stores and checks the shape.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;

use crate::audit::{Actor, Audited, Change, now};
use crate::connection::{Database, DbConnection};
use crate::error::{DbError, DbResult};
use crate::outbox::EventKind;
use crate::page::{Page, PageRequest};
use crate::schema::{organisations, subscriptions, webhook_allowed_hosts};
use crate::stored::JsonText;

/// A webhook URL's longest accepted length.
pub const MAX_URL_LENGTH: usize = 2048;

pub use crate::vocabulary::{Channel, EmailCadence};

/// A subscription, without its webhook secret (shown once, when it is made).
// Its kinds are stored as a JSON list.
#[derive(Clone, Debug, Serialize, PartialEq, Queryable, Selectable)]
#[diesel(table_name = subscriptions)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Subscription {
    pub id: i64,
    pub user_id: i64,
    /// The organisation whose events it is told (and national ones); null: every organisation's.
    pub organisation_code: Option<String>,
    #[diesel(deserialize_as = JsonText<Vec<EventKind>>)]
    pub kinds: Vec<EventKind>,
    pub channel: Channel,
    /// For email: `immediate` or `daily` (one digest a day at most).
    pub email_cadence: Option<EmailCadence>,
    /// For webhooks: where each event is posted.
    pub webhook_url: Option<String>,
    #[serde(serialize_with = "crate::time::utc")]
    pub created_at: NaiveDateTime,
}

/// A subscription to make. For a webhook, `webhook_secret` is the signing secret the caller
/// generated and shows the subscriber once.
#[derive(Clone, Debug)]
pub struct NewSubscription {
    pub user_id: i64,
    pub organisation_code: Option<String>,
    pub kinds: Vec<EventKind>,
    pub channel: Channel,
    pub email_cadence: Option<EmailCadence>,
    pub webhook_url: Option<String>,
    pub webhook_secret: Option<String>,
}

fn stored_kinds(kinds: &[EventKind]) -> String {
    let mut names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    serde_json::Value::from(names).to_string()
}

fn check_shape(new: &NewSubscription) -> DbResult<()> {
    if new.kinds.is_empty() {
        return Err(DbError::Invalid("a subscription needs at least one event kind".into()));
    }
    match new.channel {
        Channel::Email if new.email_cadence.is_none() => {
            Err(DbError::Invalid("an email subscription needs email_cadence: immediate or daily".into()))
        }
        Channel::Email if new.webhook_url.is_some() => {
            Err(DbError::Invalid("an email subscription takes no webhook_url".into()))
        }
        Channel::Webhook if new.webhook_url.is_none() || new.webhook_secret.is_none() => {
            Err(DbError::Invalid("a webhook subscription needs a webhook_url".into()))
        }
        Channel::Webhook if new.email_cadence.is_some() => {
            Err(DbError::Invalid("a webhook subscription takes no email_cadence".into()))
        }
        _ => Ok(()),
    }
}

fn insert(conn: &mut DbConnection, new: &NewSubscription) -> DbResult<Subscription> {
    check_shape(new)?;
    if let Some(code) = &new.organisation_code {
        let known: i64 =
            organisations::table.filter(organisations::code.eq(code)).count().get_result(conn)?;
        if known == 0 {
            return Err(DbError::Invalid(format!("organisation {code} does not exist")));
        }
    }
    let id: i64 = diesel::insert_into(subscriptions::table)
        .values((
            subscriptions::user_id.eq(new.user_id),
            subscriptions::organisation_code.eq(&new.organisation_code),
            subscriptions::kinds.eq(stored_kinds(&new.kinds)),
            subscriptions::channel.eq(new.channel),
            subscriptions::email_cadence.eq(new.email_cadence),
            subscriptions::webhook_url.eq(&new.webhook_url),
            subscriptions::webhook_secret.eq(&new.webhook_secret),
            subscriptions::created_at.eq(now()),
        ))
        .returning(subscriptions::id)
        .get_result(conn)?;
    get(conn, id)
}

fn created(subscription: &Subscription) -> Change {
    // The change records the subscription as read back: never its secret.
    Change::new("subscription.create", "subscription", subscription.id)
        .organisation(subscription.organisation_code.as_deref())
        .after(subscription)
}

pub fn create(db: &Database, actor: &Actor, new: NewSubscription) -> DbResult<Subscription> {
    db.write(actor, |conn| {
        let subscription = insert(conn, &new)?;
        let change = created(&subscription);
        Ok(Audited::one(subscription, change))
    })
}

/// What a new officer is told until they choose otherwise: at once, by email, of what has a
/// deadline (an advisory and its acknowledgement); in a daily digest, the rest of what concerns
/// their organisation. Made in the transaction that makes the user; the changes are for its audit.
pub fn add_officer_defaults(
    conn: &mut DbConnection,
    user_id: i64,
    organisation: &str,
) -> DbResult<Vec<Change>> {
    let at_once =
        [EventKind::AdvisoryPublished, EventKind::AcknowledgementDue, EventKind::AcknowledgementOverdue];
    let daily: Vec<EventKind> = EventKind::ALL
        .iter()
        .copied()
        .filter(|kind| {
            !at_once.contains(kind)
                && !matches!(kind, EventKind::ApprovalRequested | EventKind::AdvisoryChanged)
        })
        .collect();
    [(at_once.to_vec(), EmailCadence::Immediate), (daily, EmailCadence::Daily)]
        .into_iter()
        .map(|(kinds, cadence)| {
            let subscription = insert(
                conn,
                &NewSubscription {
                    user_id,
                    organisation_code: Some(organisation.to_owned()),
                    kinds,
                    channel: Channel::Email,
                    email_cadence: Some(cadence),
                    webhook_url: None,
                    webhook_secret: None,
                },
            )?;
            Ok(created(&subscription))
        })
        .collect()
}

pub fn get(conn: &mut DbConnection, id: i64) -> DbResult<Subscription> {
    subscriptions::table
        .find(id)
        .select(Subscription::as_select())
        .first(conn)
        .optional()?
        .ok_or(DbError::NotFound("subscription"))
}

/// Subscriptions in id order; `owner` narrows them to one user's.
pub fn list(conn: &mut DbConnection, owner: Option<i64>, page: &PageRequest) -> DbResult<Page<Subscription>> {
    let mut query =
        subscriptions::table.select(Subscription::as_select()).order(subscriptions::id).into_boxed();
    if let Some(user_id) = owner {
        query = query.filter(subscriptions::user_id.eq(user_id));
    }
    if let Some(after) = page.after_id()? {
        query = query.filter(subscriptions::id.gt(after));
    }
    let limit = page.limit();
    let rows = query.limit(limit + 1).load(conn)?;
    Ok(Page::from_rows(rows, limit, |s| s.id.to_string()))
}

/// Ends a subscription; its deliveries, delivered or waiting, go with it.
pub fn delete(db: &Database, actor: &Actor, id: i64) -> DbResult<()> {
    db.write(actor, |conn| {
        let before = get(conn, id)?;
        diesel::delete(subscriptions::table.find(id)).execute(conn)?;
        let change = Change::new("subscription.delete", "subscription", id)
            .organisation(before.organisation_code.as_deref())
            .before(&before);
        Ok(Audited::one((), change))
    })
}

/// A host an admin lets webhooks reach although it is loopback or private.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AllowedHost {
    pub host: String,
    pub allowed_by: Option<i64>,
    #[serde(serialize_with = "crate::time::utc")]
    pub created_at: NaiveDateTime,
}

pub fn allowed_hosts(conn: &mut DbConnection) -> DbResult<Vec<AllowedHost>> {
    let rows: Vec<(String, Option<i64>, NaiveDateTime)> = webhook_allowed_hosts::table
        .select((
            webhook_allowed_hosts::host,
            webhook_allowed_hosts::allowed_by,
            webhook_allowed_hosts::created_at,
        ))
        .order(webhook_allowed_hosts::host)
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(host, allowed_by, created_at)| AllowedHost { host, allowed_by, created_at })
        .collect())
}

/// Allows a host (stored lower-case); allowing it again changes nothing.
pub fn allow_host(db: &Database, actor: &Actor, host: &str) -> DbResult<AllowedHost> {
    let host = host.trim().to_ascii_lowercase();
    let well_formed = !host.is_empty()
        && host.len() <= 253
        && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    if !well_formed {
        return Err(DbError::Invalid(
            "host must be a host name or an IP address, without scheme or port".into(),
        ));
    }
    db.write(actor, |conn| {
        if let Some(existing) = allowed_hosts(conn)?.into_iter().find(|h| h.host == host) {
            return Ok(Audited::unchanged(existing));
        }
        diesel::insert_into(webhook_allowed_hosts::table)
            .values((
                webhook_allowed_hosts::host.eq(&host),
                webhook_allowed_hosts::allowed_by.eq(actor.user_id),
                webhook_allowed_hosts::created_at.eq(now()),
            ))
            .execute(conn)?;
        let allowed = allowed_hosts(conn)?
            .into_iter()
            .find(|h| h.host == host)
            .ok_or_else(|| DbError::Internal("an allowed host did not read back".into()))?;
        let change = Change::new("webhook_host.allow", "webhook_host", &host).after(&allowed);
        Ok(Audited::one(allowed, change))
    })
}

pub fn forbid_host(db: &Database, actor: &Actor, host: &str) -> DbResult<()> {
    let host = host.trim().to_ascii_lowercase();
    db.write(actor, |conn| {
        let removed = diesel::delete(webhook_allowed_hosts::table.find(&host)).execute(conn)?;
        if removed == 0 {
            return Err(DbError::NotFound("allowed host"));
        }
        Ok(Audited::one((), Change::new("webhook_host.forbid", "webhook_host", &host)))
    })
}
