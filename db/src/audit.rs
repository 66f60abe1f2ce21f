//! The audit mechanism every write path uses. [`Database::write`] runs the work and records its
//! audit events in the same transaction, so an event exists exactly when the write committed,
//! and a write that forgets to describe itself fails instead of committing silently.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;

use crate::connection::{Committed, Database, DbConnection};
use crate::error::{DbError, DbResult};
use crate::outbox::{self, Changed};
use crate::page::{Page, PageRequest};
use crate::schema::audit_events;

/// Who is writing, and under which request.
#[derive(Clone, Debug)]
pub struct Actor {
    pub user_id: Option<i64>,
    /// The user's email, or `system` for the command line and start-up work.
    pub label: String,
    pub request_id: Option<String>,
    /// The ICB the user is an officer of, when that ICB has granted its officers to act for the
    /// organisations it commissions for: an event about another organisation records it.
    pub acting_icb: Option<String>,
}

impl Actor {
    pub fn system(label: &str) -> Actor {
        Actor { user_id: None, label: format!("system:{label}"), request_id: None, acting_icb: None }
    }
}

/// One change to one entity, as the audit log records it.
#[derive(Clone, Debug)]
pub struct Change {
    pub action: String,
    pub entity: &'static str,
    pub entity_id: String,
    pub organisation: Option<String>,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

impl Change {
    pub fn new(action: impl Into<String>, entity: &'static str, entity_id: impl ToString) -> Change {
        Change {
            action: action.into(),
            entity,
            entity_id: entity_id.to_string(),
            organisation: None,
            before: None,
            after: None,
        }
    }

    pub fn organisation(mut self, code: Option<&str>) -> Change {
        self.organisation = code.map(str::to_owned);
        self
    }

    pub fn before(mut self, state: &impl Serialize) -> Change {
        self.before = serde_json::to_value(state).ok();
        self
    }

    pub fn after(mut self, state: &impl Serialize) -> Change {
        self.after = serde_json::to_value(state).ok();
        self
    }
}

/// The result of a write together with the changes it made.
pub struct Audited<T> {
    pub value: T,
    pub changes: Vec<Change>,
    unchanged: bool,
}

impl<T> Audited<T> {
    pub fn one(value: T, change: Change) -> Audited<T> {
        Audited { value, changes: vec![change], unchanged: false }
    }

    pub fn many(value: T, changes: Vec<Change>) -> Audited<T> {
        Audited { value, changes, unchanged: false }
    }

    /// Says explicitly that the work changed nothing (an idempotent repeat), so no event is due.
    pub fn unchanged(value: T) -> Audited<T> {
        Audited { value, changes: Vec::new(), unchanged: true }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[diesel(table_name = audit_events)]
pub struct AuditEvent {
    pub id: i64,
    #[serde(serialize_with = "crate::time::utc")]
    pub occurred_at: NaiveDateTime,
    pub actor_user_id: Option<i64>,
    pub actor: String,
    pub action: String,
    pub entity: String,
    pub entity_id: String,
    pub organisation_code: Option<String>,
    pub before_state: Option<String>,
    pub after_state: Option<String>,
    pub request_id: Option<String>,
    /// The ICB whose officer acted for `organisation_code` ("ICB acting for RXX"), if it was so.
    pub acting_icb: Option<String>,
}

pub(crate) fn now() -> NaiveDateTime {
    chrono::Utc::now().naive_utc()
}

fn record(conn: &mut DbConnection, actor: &Actor, change: Change) -> DbResult<()> {
    // An ICB's officer acting for the ICB itself is acting as ever; only an event about another
    // organisation is an act for it.
    let acting_icb = actor
        .acting_icb
        .as_deref()
        .filter(|icb| change.organisation.as_deref().is_some_and(|code| code != *icb));
    diesel::insert_into(audit_events::table)
        .values((
            audit_events::occurred_at.eq(now()),
            audit_events::actor_user_id.eq(actor.user_id),
            audit_events::actor.eq(&actor.label),
            audit_events::action.eq(change.action),
            audit_events::entity.eq(change.entity),
            audit_events::entity_id.eq(change.entity_id),
            audit_events::organisation_code.eq(change.organisation),
            audit_events::before_state.eq(change.before.map(|v| v.to_string())),
            audit_events::after_state.eq(change.after.map(|v| v.to_string())),
            audit_events::request_id.eq(&actor.request_id),
            audit_events::acting_icb.eq(acting_icb),
        ))
        .execute(conn)?;
    Ok(())
}

impl Database {
    /// Runs a write in one transaction and records its audit events inside that transaction.
    pub fn write<T>(
        &self,
        actor: &Actor,
        work: impl FnOnce(&mut DbConnection) -> DbResult<Audited<T>>,
    ) -> DbResult<T> {
        let mut touched = Vec::new();
        let value = self.transaction(|conn| {
            let Audited { value, changes, unchanged } = work(conn)?;
            if changes.is_empty() && !unchanged {
                return Err(DbError::Internal("a write described no change for the audit log".into()));
            }
            // What the changes tell subscribers goes to the outbox in this same transaction, read
            // after every change is made (a claim's line shows its seats after the claim).
            let mut told = Vec::new();
            for change in &changes {
                let changed = Changed {
                    action: &change.action,
                    entity_id: &change.entity_id,
                    organisation: change.organisation.as_deref(),
                    after: change.after.as_ref(),
                };
                if let Some(event) = outbox::told_by(conn, &changed)?
                    && !told
                        .iter()
                        .any(|t: &outbox::NewEvent| t.kind == event.kind && t.subject == event.subject)
                {
                    told.push(event);
                }
            }
            for event in &told {
                outbox::record(conn, event)?;
            }
            for change in changes {
                touched.push(Committed {
                    entity: change.entity,
                    entity_id: change.entity_id.clone(),
                    after: change.after.clone(),
                });
                record(conn, actor, change)?;
            }
            Ok(value)
        })?;
        // Committed: the read model (if one listens) learns of it before the caller can answer anyone.
        self.publish(&touched);
        Ok(value)
    }
}

/// Counts audit events (used by tests and readiness reporting).
pub fn count(conn: &mut DbConnection) -> DbResult<i64> {
    Ok(audit_events::table.count().get_result(conn)?)
}

#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub entity: Option<String>,
    pub entity_id: Option<String>,
    pub actor_user_id: Option<i64>,
    pub organisation_code: Option<String>,
    pub action: Option<String>,
    pub from: Option<NaiveDateTime>,
    /// Exclusive.
    pub to: Option<NaiveDateTime>,
}

/// Events matching `filter` with an id above `after`, oldest first, at most `limit`.
pub fn events_after(
    conn: &mut DbConnection,
    filter: &AuditFilter,
    after: Option<i64>,
    limit: i64,
) -> DbResult<Vec<AuditEvent>> {
    let mut query = audit_events::table.select(AuditEvent::as_select()).order(audit_events::id).into_boxed();
    if let Some(entity) = &filter.entity {
        query = query.filter(audit_events::entity.eq(entity.clone()));
    }
    if let Some(entity_id) = &filter.entity_id {
        query = query.filter(audit_events::entity_id.eq(entity_id.clone()));
    }
    if let Some(actor) = filter.actor_user_id {
        query = query.filter(audit_events::actor_user_id.eq(actor));
    }
    if let Some(code) = &filter.organisation_code {
        query = query.filter(audit_events::organisation_code.eq(code.to_uppercase()));
    }
    if let Some(action) = &filter.action {
        query = query.filter(audit_events::action.eq(action.clone()));
    }
    if let Some(from) = filter.from {
        query = query.filter(audit_events::occurred_at.ge(from));
    }
    if let Some(to) = filter.to {
        query = query.filter(audit_events::occurred_at.lt(to));
    }
    if let Some(after) = after {
        query = query.filter(audit_events::id.gt(after));
    }
    Ok(query.limit(limit).load(conn)?)
}

pub fn list(
    conn: &mut DbConnection,
    filter: &AuditFilter,
    page: &crate::PageRequest,
) -> DbResult<crate::Page<AuditEvent>> {
    let limit = page.limit();
    let rows = events_after(conn, filter, page.after_id()?, limit + 1)?;
    Ok(crate::Page::from_rows(rows, limit, |e| e.id.to_string()))
}

/// The entities of the change feed: the catalogue's shared record (what a client keeps a copy
/// of), not an organisation's own business (allocations, purchases, estates, users).
pub const FEED_ENTITIES: [&str; 7] =
    ["supplier", "product", "release", "agreement", "entitlement", "standard", "advisory"];

/// One change of the feed.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FeedChange {
    /// The feed's position after this change: keep the last one read and pass it as `after` to
    /// read on from there (also when there is no next page yet).
    pub cursor: String,
    /// The audit event's id.
    pub id: i64,
    #[serde(serialize_with = "crate::time::utc")]
    pub occurred_at: NaiveDateTime,
    /// e.g. `product.update`.
    pub action: String,
    /// One of supplier, product, release, agreement, entitlement, standard, advisory.
    pub entity: String,
    pub entity_id: String,
    /// The record after the change, as the audit log holds it: the resource's JSON (an object;
    /// a list for a product's lifecycle sources), or null when it was removed.
    pub after: Option<serde_json::Value>,
}

/// The feed's position: the transaction and the audit id of the last change read, `TX.ID`.
fn feed_position(cursor: &str) -> DbResult<(i64, i64)> {
    let (transaction, id) = cursor.split_once('.').ok_or(DbError::InvalidCursor)?;
    match (transaction.parse::<i64>(), id.parse::<i64>()) {
        (Ok(transaction), Ok(id)) if transaction >= 0 && id >= 0 => Ok((transaction, id)),
        _ => Err(DbError::InvalidCursor),
    }
}

/// Transactions below this one have all ended: their events are final. On PostgreSQL, the oldest
/// transaction still running on the server (read before the events, so that every transaction
/// below it had ended before the events are read); a long transaction anywhere on the server
/// delays the feed while it runs, and never makes it lose a change. SQLite has one writer:
/// whatever is visible has committed, in id order.
fn ended_below(conn: &mut DbConnection) -> DbResult<i64> {
    match conn {
        DbConnection::Sqlite(_) => Ok(i64::MAX),
        DbConnection::Postgres(_) => Ok(diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
            "pg_snapshot_xmin(pg_current_snapshot())::text::bigint",
        ))
        .get_result(conn)?),
    }
}

/// Changes to the shared record after `page`'s cursor, in the order their transactions began
/// and, within one, the order written: every change exactly once across pages however writes
/// interleave, because only transactions that have ended are read (a change still being
/// committed appears on a later page, never before one already read).
pub fn feed(conn: &mut DbConnection, page: &PageRequest) -> DbResult<Page<FeedChange>> {
    let limit = page.limit();
    let horizon = ended_below(conn)?;
    let mut query = audit_events::table
        .filter(audit_events::entity.eq_any(FEED_ENTITIES))
        .filter(audit_events::transaction_id.lt(horizon))
        .into_boxed();
    if let Some((transaction, id)) = page.cursor.as_deref().map(feed_position).transpose()? {
        query = query.filter(
            audit_events::transaction_id
                .gt(transaction)
                .or(audit_events::transaction_id.eq(transaction).and(audit_events::id.gt(id))),
        );
    }
    type Row = (i64, i64, NaiveDateTime, String, String, String, Option<String>);
    let rows: Vec<Row> = query
        .order((audit_events::transaction_id, audit_events::id))
        .limit(limit + 1)
        .select((
            audit_events::transaction_id,
            audit_events::id,
            audit_events::occurred_at,
            audit_events::action,
            audit_events::entity,
            audit_events::entity_id,
            audit_events::after_state,
        ))
        .load(conn)?;
    let page = Page::from_rows(rows, limit, |row| format!("{}.{}", row.0, row.1));
    let items = page
        .items
        .into_iter()
        .map(|(transaction, id, occurred_at, action, entity, entity_id, after)| {
            let after = after
                .map(|text| {
                    serde_json::from_str(&text)
                        .map_err(|e| DbError::corrupt_json(format!("audit event {id}"), "after_state", &e))
                })
                .transpose()?;
            Ok(FeedChange {
                cursor: format!("{transaction}.{id}"),
                id,
                occurred_at,
                action,
                entity,
                entity_id,
                after,
            })
        })
        .collect::<DbResult<Vec<_>>>()?;
    Ok(Page { items, next_cursor: page.next_cursor })
}
