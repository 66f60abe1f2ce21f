//! Delivering the outbox: each event fanned out to the subscriptions it matches (one delivery
//! each), and each delivery taken by one worker under a lease, attempted, and finished: delivered,
//! retried later with exponential backoff and jitter, or dead-lettered when its day of retries
//! is over. Workers on several instances share the tables: on PostgreSQL they take rows with
//! `FOR UPDATE SKIP LOCKED`, so two never take the same delivery while its lease runs; SQLite has
//! one writer at a time. A worker killed mid-delivery leaves a lease that expires, and another
//! worker takes the delivery up again.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Text, Timestamp};
use serde::Serialize;

use crate::audit::{Actor, Audited, Change, now};
use crate::connection::{Database, DbConnection};
use crate::error::{DbError, DbResult};
use crate::outbox::{self, OutboxEvent};
use crate::page::{Page, PageRequest};
use crate::schema::{deliveries, delivery_attempts, email_digests, outbox_events, subscriptions, users};
use crate::stored::JsonText;
use crate::users::Role;
use crate::vocabulary::{Channel, EmailCadence, EventKind};

/// How failed attempts are retried.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// The wait after the first failure; it doubles after each failure after that.
    pub first_wait: Duration,
    /// The longest wait between attempts.
    pub longest_wait: Duration,
    /// How long after it was made (or redelivery was asked for) a delivery is retried.
    pub retry_for: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            first_wait: Duration::from_secs(30),
            longest_wait: Duration::from_secs(2 * 3600),
            retry_for: Duration::from_secs(24 * 3600),
        }
    }
}

impl RetryPolicy {
    /// The wait after the `failures`-th failure: `first_wait` doubled each time, at most
    /// `longest_wait`, times a random factor between 0.5 and 1.5 so that receivers that failed
    /// together are not retried together.
    pub fn wait_after(&self, failures: i32) -> Duration {
        let doublings = u32::try_from(failures.saturating_sub(1)).unwrap_or(0).min(20);
        let wait = self.first_wait.saturating_mul(1 << doublings).min(self.longest_wait);
        wait.mul_f64(rand::random_range(0.5..1.5))
    }
}

fn after(at: NaiveDateTime, wait: Duration) -> NaiveDateTime {
    at + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX)
}

pub use crate::vocabulary::DeliveryStatus;

/// A raw query's numbered parameters (`$1`) as the engine spells them: SQLite reads `$1` as a
/// name and numbers names in order of appearance, but `?1` by its number.
fn numbered_parameters(conn: &DbConnection, sql: String) -> String {
    match conn {
        DbConnection::Postgres(_) => sql,
        DbConnection::Sqlite(_) => sql.replace('$', "?"),
    }
}

#[derive(diesel::QueryableByName)]
struct Id {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// Events written and not yet fanned out, oldest first; on PostgreSQL locked so that another
/// instance fanning out at the same time takes other events.
fn waiting_events(conn: &mut DbConnection, limit: i64) -> DbResult<Vec<i64>> {
    let sql = match conn {
        DbConnection::Postgres(_) => {
            "SELECT id FROM outbox_events WHERE NOT fanned_out ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED"
        }
        DbConnection::Sqlite(_) => "SELECT id FROM outbox_events WHERE NOT fanned_out ORDER BY id LIMIT $1",
    };
    let ids: Vec<Id> = diesel::sql_query(sql).bind::<BigInt, _>(limit).load(conn)?;
    Ok(ids.into_iter().map(|row| row.id).collect())
}

/// A subscription as fan-out reads it, with the holder's standing now.
#[derive(Queryable)]
struct Listener {
    id: i64,
    organisation_code: Option<String>,
    #[diesel(deserialize_as = JsonText<Vec<EventKind>>)]
    kinds: Vec<EventKind>,
    cadence: Option<EmailCadence>,
    holder_role: Role,
    holder_organisation: Option<String>,
}

impl Listener {
    /// A subscription hears an event of its kind about its organisation or a national one; one
    /// for every organisation, every event of its kind. The holder's standing is read again at
    /// each event, so a user moved to another organisation (or no longer an admin or auditor) is
    /// not told of the old one's events.
    fn hears(&self, event: &OutboxEvent) -> bool {
        let reads_everything = matches!(self.holder_role, Role::Admin | Role::Auditor);
        let may_hold = match &self.organisation_code {
            None => reads_everything,
            Some(code) => reads_everything || self.holder_organisation.as_deref() == Some(code),
        };
        let about_it = match (&self.organisation_code, &event.organisation_code) {
            (None, _) | (_, None) => true,
            (Some(mine), Some(theirs)) => mine == theirs,
        };
        may_hold && about_it && self.kinds.contains(&event.kind)
    }
}

fn listeners(conn: &mut DbConnection) -> DbResult<Vec<Listener>> {
    Ok(subscriptions::table
        .inner_join(users::table)
        .filter(users::disabled.eq(false))
        .select((
            subscriptions::id,
            subscriptions::organisation_code,
            subscriptions::kinds,
            subscriptions::email_cadence,
            users::role,
            users::organisation_code,
        ))
        .load(conn)?)
}

/// Fans out up to `limit` waiting events: a delivery for each subscription that hears it, due at
/// once (a daily digest's at `digest_time(now)`). Returns how many events it fanned out.
pub fn fan_out(
    db: &Database,
    limit: i64,
    retry: &RetryPolicy,
    digest_time: impl Fn(NaiveDateTime) -> NaiveDateTime,
) -> DbResult<usize> {
    db.transaction(|conn| {
        let ids = waiting_events(conn, limit)?;
        if ids.is_empty() {
            return Ok(0);
        }
        let listeners = listeners(conn)?;
        let stamp = now();
        let events = outbox::by_id(conn, &ids)?;
        // In the order the events were written, so that deliveries are too.
        for event in ids.iter().filter_map(|id| events.get(id)) {
            for listener in listeners.iter().filter(|l| l.hears(event)) {
                let due =
                    if listener.cadence == Some(EmailCadence::Daily) { digest_time(stamp) } else { stamp };
                diesel::insert_into(deliveries::table)
                    .values((
                        deliveries::event_id.eq(event.id),
                        deliveries::subscription_id.eq(listener.id),
                        deliveries::status.eq(DeliveryStatus::Pending),
                        deliveries::attempts.eq(0),
                        deliveries::next_attempt_at.eq(due),
                        deliveries::created_at.eq(stamp),
                        deliveries::retry_until.eq(after(due, retry.retry_for)),
                    ))
                    .execute(conn)?;
            }
        }
        diesel::update(outbox_events::table.filter(outbox_events::id.eq_any(&ids)))
            .set(outbox_events::fanned_out.eq(true))
            .execute(conn)?;
        Ok(ids.len())
    })
}

/// Where a taken delivery goes.
#[derive(Clone, Debug, PartialEq)]
pub enum Destination {
    Email { to: String, name: String, user_id: i64, daily: bool },
    Webhook { url: String, secret: String },
}

/// A delivery a worker has taken, with what it needs to attempt it.
#[derive(Clone, Debug)]
pub struct Taken {
    pub delivery_id: i64,
    pub subscription_id: i64,
    pub event: OutboxEvent,
    pub destination: Destination,
    /// Attempts made before this one.
    pub attempts: i32,
}

/// Takes up to `limit` deliveries that are due and not held by a live lease, holding them for
/// `lease` under the name `worker`. A lease must outlast an attempt (the webhook timeout) by a
/// margin; one that expires with its worker gone lets another take the delivery again. Email
/// deliveries wait untaken when `with_email` is false (no mail server is configured), rather
/// than failing their way to the dead letters.
pub fn take(
    db: &Database,
    worker: &str,
    lease: Duration,
    limit: i64,
    with_email: bool,
) -> DbResult<Vec<Taken>> {
    db.transaction(|conn| {
        let stamp = now();
        let lock = match conn {
            DbConnection::Postgres(_) => " FOR UPDATE SKIP LOCKED",
            DbConnection::Sqlite(_) => "",
        };
        let sql = numbered_parameters(
            conn,
            format!(
                "UPDATE deliveries SET leased_until = $1, leased_by = $2 WHERE id IN (\
             SELECT id FROM deliveries WHERE status = 'pending' AND next_attempt_at <= $3 \
             AND (leased_until IS NULL OR leased_until < $3) \
             AND ($5 OR subscription_id IN (SELECT id FROM subscriptions WHERE channel = 'webhook')) \
             ORDER BY next_attempt_at, id LIMIT $4{lock}) \
             RETURNING id"
            ),
        );
        let ids: Vec<Id> = diesel::sql_query(sql)
            .bind::<Timestamp, _>(after(stamp, lease))
            .bind::<Text, _>(worker)
            .bind::<Timestamp, _>(stamp)
            .bind::<BigInt, _>(limit)
            .bind::<Bool, _>(with_email)
            .load(conn)?;
        let ids: Vec<i64> = ids.into_iter().map(|row| row.id).collect();
        taken(conn, &ids)
    })
}

type TakenRow = (
    (i64, i64, i64, i32),
    (Channel, Option<EmailCadence>, Option<String>, Option<String>),
    (i64, String, String),
);

fn taken(conn: &mut DbConnection, ids: &[i64]) -> DbResult<Vec<Taken>> {
    let rows: Vec<TakenRow> = deliveries::table
        .inner_join(subscriptions::table.inner_join(users::table))
        .filter(deliveries::id.eq_any(ids))
        .order(deliveries::id)
        .select((
            (deliveries::id, deliveries::subscription_id, deliveries::event_id, deliveries::attempts),
            (
                subscriptions::channel,
                subscriptions::email_cadence,
                subscriptions::webhook_url,
                subscriptions::webhook_secret,
            ),
            (users::id, users::email, users::display_name),
        ))
        .load(conn)?;
    let event_ids: Vec<i64> = rows.iter().map(|((_, _, event_id, _), _, _)| *event_id).collect();
    let events = outbox::by_id(conn, &event_ids)?;
    let mut found = Vec::with_capacity(rows.len());
    for (
        (delivery_id, subscription_id, event_id, attempts),
        (channel, cadence, url, secret),
        (user_id, email, name),
    ) in rows
    {
        let destination = match (channel, url, secret) {
            (Channel::Webhook, Some(url), Some(secret)) => Destination::Webhook { url, secret },
            (Channel::Email, None, None) => {
                Destination::Email { to: email, name, user_id, daily: cadence == Some(EmailCadence::Daily) }
            }
            _ => {
                return Err(DbError::Internal(format!(
                    "delivery {delivery_id}: its subscription is corrupt"
                )));
            }
        };
        found.push(Taken {
            delivery_id,
            subscription_id,
            event: events
                .get(&event_id)
                .cloned()
                .ok_or_else(|| DbError::Internal(format!("delivery {delivery_id}: its event is missing")))?,
            destination,
            attempts,
        });
    }
    Ok(found)
}

/// One attempt's outcome, as recorded.
#[derive(Clone, Debug)]
pub struct AttemptRecord {
    pub status_code: Option<u16>,
    /// Why it failed (never a secret); `None` when it succeeded.
    pub error: Option<String>,
    pub duration: Duration,
}

/// What became of a delivery after an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finished {
    Delivered,
    RetryAt(NaiveDateTime),
    Dead,
    /// The lease had passed to another worker: the attempt is recorded, the state is theirs.
    LeaseLost,
}

/// Records an attempt at a delivery `worker` holds and moves the delivery on.
pub fn finish(
    db: &Database,
    worker: &str,
    delivery_id: i64,
    attempt: &AttemptRecord,
    retry: &RetryPolicy,
) -> DbResult<Finished> {
    db.transaction(|conn| finish_in(conn, worker, delivery_id, attempt, retry))
}

fn finish_in(
    conn: &mut DbConnection,
    worker: &str,
    delivery_id: i64,
    attempt: &AttemptRecord,
    retry: &RetryPolicy,
) -> DbResult<Finished> {
    let stamp = now();
    diesel::insert_into(delivery_attempts::table)
        .values((
            delivery_attempts::delivery_id.eq(delivery_id),
            delivery_attempts::attempted_at.eq(stamp),
            delivery_attempts::attempted_by.eq(worker),
            delivery_attempts::status_code.eq(attempt.status_code.map(i32::from)),
            delivery_attempts::error.eq(&attempt.error),
            delivery_attempts::duration_ms
                .eq(i64::try_from(attempt.duration.as_millis()).unwrap_or(i64::MAX)),
        ))
        .execute(conn)?;
    let (attempts, retry_until, leased_by): (i32, NaiveDateTime, Option<String>) = deliveries::table
        .find(delivery_id)
        .select((deliveries::attempts, deliveries::retry_until, deliveries::leased_by))
        .first(conn)?;
    if leased_by.as_deref() != Some(worker) {
        return Ok(Finished::LeaseLost);
    }
    let attempts = attempts.saturating_add(1);
    let target = deliveries::table.find(delivery_id);
    let outcome = match &attempt.error {
        None => {
            diesel::update(target)
                .set((
                    deliveries::status.eq(DeliveryStatus::Delivered),
                    deliveries::attempts.eq(attempts),
                    deliveries::delivered_at.eq(stamp),
                    deliveries::last_error.eq(None::<String>),
                ))
                .execute(conn)?;
            Finished::Delivered
        }
        Some(error) => {
            let next = after(stamp, retry.wait_after(attempts));
            let (status, finished) = if next > retry_until {
                (DeliveryStatus::Dead, Finished::Dead)
            } else {
                (DeliveryStatus::Pending, Finished::RetryAt(next))
            };
            diesel::update(target)
                .set((
                    deliveries::status.eq(status),
                    deliveries::attempts.eq(attempts),
                    deliveries::next_attempt_at.eq(next),
                    deliveries::last_error.eq(error),
                ))
                .execute(conn)?;
            finished
        }
    };
    diesel::update(target)
        .set((deliveries::leased_until.eq(None::<NaiveDateTime>), deliveries::leased_by.eq(None::<String>)))
        .execute(conn)?;
    Ok(outcome)
}

/// The digest day a user was last sent, if it is `day`: a digest is sent at most once a day.
pub fn digest_sent_on(conn: &mut DbConnection, user_id: i64, day: NaiveDate) -> DbResult<bool> {
    let sent: i64 = email_digests::table
        .filter(email_digests::user_id.eq(user_id))
        .filter(email_digests::day.eq(day))
        .count()
        .get_result(conn)?;
    Ok(sent > 0)
}

/// Records a user's digest of `day` as sent and its deliveries as delivered, together: a second
/// digest the same day is refused by the table's key, and nothing is marked delivered twice.
pub fn finish_digest(
    db: &Database,
    worker: &str,
    user_id: i64,
    day: NaiveDate,
    delivery_ids: &[i64],
    attempt: &AttemptRecord,
    retry: &RetryPolicy,
) -> DbResult<Vec<Finished>> {
    db.transaction(|conn| {
        if attempt.error.is_none() {
            diesel::insert_into(email_digests::table)
                .values((
                    email_digests::user_id.eq(user_id),
                    email_digests::day.eq(day),
                    email_digests::sent_at.eq(now()),
                ))
                .execute(conn)?;
        }
        delivery_ids.iter().map(|id| finish_in(conn, worker, *id, attempt, retry)).collect()
    })
}

/// Puts deliveries `worker` holds back to wait until `at` without counting an attempt (a digest
/// already sent today waits for tomorrow's).
pub fn postpone(db: &Database, worker: &str, delivery_ids: &[i64], at: NaiveDateTime) -> DbResult<()> {
    db.transaction(|conn| {
        diesel::update(
            deliveries::table
                .filter(deliveries::id.eq_any(delivery_ids))
                .filter(deliveries::leased_by.eq(worker)),
        )
        .set((
            deliveries::next_attempt_at.eq(at),
            deliveries::leased_until.eq(None::<NaiveDateTime>),
            deliveries::leased_by.eq(None::<String>),
        ))
        .execute(conn)?;
        Ok(())
    })
}

/// One attempt at a delivery.
#[derive(Clone, Debug, Serialize, PartialEq, Queryable, Selectable)]
#[diesel(table_name = delivery_attempts)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeliveryAttempt {
    #[serde(serialize_with = "crate::time::utc")]
    pub attempted_at: NaiveDateTime,
    /// The receiver's HTTP status (webhooks), when it answered.
    pub status_code: Option<i32>,
    /// Why it failed; null when it succeeded.
    pub error: Option<String>,
    pub duration_ms: i64,
}

/// A delivery of one event to one subscription, with its attempts.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Delivery {
    pub id: i64,
    pub subscription_id: i64,
    pub event: OutboxEvent,
    pub status: DeliveryStatus,
    #[serde(serialize_with = "crate::time::utc")]
    pub next_attempt_at: NaiveDateTime,
    #[serde(serialize_with = "crate::time::utc_option")]
    pub delivered_at: Option<NaiveDateTime>,
    pub last_error: Option<String>,
    /// Every attempt, oldest first.
    pub attempts: Vec<DeliveryAttempt>,
}

/// A delivery as stored; its event and attempts are read beside it. It stays apart from
/// `Delivery`, which holds the event itself where the row holds its id.
#[derive(Queryable, Selectable)]
#[diesel(table_name = deliveries)]
struct DeliveryRow {
    id: i64,
    subscription_id: i64,
    event_id: i64,
    status: DeliveryStatus,
    next_attempt_at: NaiveDateTime,
    delivered_at: Option<NaiveDateTime>,
    last_error: Option<String>,
}

fn load_deliveries(conn: &mut DbConnection, rows: Vec<DeliveryRow>) -> DbResult<Vec<Delivery>> {
    let ids: Vec<i64> = rows.iter().map(|row| row.id).collect();
    let mut events = outbox::by_id(conn, &rows.iter().map(|row| row.event_id).collect::<Vec<_>>())?;
    let mut attempts: BTreeMap<i64, Vec<DeliveryAttempt>> = BTreeMap::new();
    let attempt_rows: Vec<(i64, DeliveryAttempt)> = delivery_attempts::table
        .filter(delivery_attempts::delivery_id.eq_any(&ids))
        .order((delivery_attempts::delivery_id, delivery_attempts::id))
        .select((delivery_attempts::delivery_id, DeliveryAttempt::as_select()))
        .load(conn)?;
    for (delivery_id, attempt) in attempt_rows {
        attempts.entry(delivery_id).or_default().push(attempt);
    }
    rows.into_iter()
        .map(|row| {
            Ok(Delivery {
                id: row.id,
                subscription_id: row.subscription_id,
                event: events
                    .remove(&row.event_id)
                    .ok_or_else(|| DbError::Internal(format!("delivery {}: its event is missing", row.id)))?,
                status: row.status,
                next_attempt_at: row.next_attempt_at,
                delivered_at: row.delivered_at,
                last_error: row.last_error,
                attempts: attempts.remove(&row.id).unwrap_or_default(),
            })
        })
        .collect()
}

/// A subscription's deliveries, newest event last, with their attempts.
pub fn of_subscription(
    conn: &mut DbConnection,
    subscription_id: i64,
    page: &PageRequest,
) -> DbResult<Page<Delivery>> {
    let mut query = deliveries::table
        .filter(deliveries::subscription_id.eq(subscription_id))
        .order(deliveries::id)
        .select(DeliveryRow::as_select())
        .into_boxed();
    if let Some(after) = page.after_id()? {
        query = query.filter(deliveries::id.gt(after));
    }
    let limit = page.limit();
    let rows: Vec<DeliveryRow> = query.limit(limit + 1).load(conn)?;
    Ok(Page::from_rows(load_deliveries(conn, rows)?, limit, |d| d.id.to_string()))
}

/// A delivery by id.
pub fn get(conn: &mut DbConnection, id: i64) -> DbResult<Delivery> {
    let rows = deliveries::table.filter(deliveries::id.eq(id)).select(DeliveryRow::as_select()).load(conn)?;
    load_deliveries(conn, rows)?.into_iter().next().ok_or(DbError::NotFound("delivery"))
}

/// Asks for a delivery again: due now, retried for another day, whatever became of it. A
/// receiver that lost a message (or was down past the day of retries) gets it again, with the
/// same `webhook-id`, so it can tell a repeat.
pub fn redeliver(db: &Database, actor: &Actor, id: i64, retry: &RetryPolicy) -> DbResult<Delivery> {
    db.write(actor, |conn| {
        let before = get(conn, id)?;
        let stamp = now();
        diesel::update(deliveries::table.find(id))
            .set((
                deliveries::status.eq(DeliveryStatus::Pending),
                deliveries::next_attempt_at.eq(stamp),
                deliveries::retry_until.eq(after(stamp, retry.retry_for)),
                deliveries::leased_until.eq(None::<NaiveDateTime>),
                deliveries::leased_by.eq(None::<String>),
            ))
            .execute(conn)?;
        let delivery = get(conn, id)?;
        let change =
            Change::new("delivery.redeliver", "delivery", id).before(&before.status).after(&delivery.status);
        Ok(Audited::one(delivery, change))
    })
}

/// The subscription a delivery belongs to (for authorisation).
pub fn subscription_of(conn: &mut DbConnection, delivery_id: i64) -> DbResult<i64> {
    deliveries::table
        .find(delivery_id)
        .select(deliveries::subscription_id)
        .first(conn)
        .optional()?
        .ok_or(DbError::NotFound("delivery"))
}

/// Counts by status (tests and readiness).
pub fn count(conn: &mut DbConnection, status: &str) -> DbResult<i64> {
    Ok(deliveries::table.filter(deliveries::status.eq(status)).count().get_result(conn)?)
}
