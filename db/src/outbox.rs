//! The outbox: every event worth telling someone, written in the same transaction as the change
//! that causes it ([`told_by`], called by `Database::write` for each audited change) or by the
//! scheduler for dates (`crate::reminders`, once per occasion). Nothing is told that did not
//! commit, and nothing that committed is lost when a process dies: delivery (`crate::deliveries`)
//! reads the outbox after the fact.
//!
//! This file knows nothing of the audit log or of the domain modules (they import it), so it reads
//! the few facts it needs from the schema directly.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;

use crate::connection::DbConnection;
use crate::error::{DbError, DbResult};
use crate::schema::{entitlements, outbox_events, products, standards};
use crate::stored::JsonText;

pub use crate::vocabulary::EventKind;

/// An event to write to the outbox.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEvent {
    pub kind: EventKind,
    /// The organisation it is about; `None` for national events, which every subscriber of the
    /// kind is told.
    pub organisation_code: Option<String>,
    /// What it is about, as `entity/id` ("advisory/12").
    pub subject: String,
    /// One plain-English sentence: what an email says and a webhook carries.
    pub summary: String,
    pub payload: serde_json::Value,
    /// The scheduler's key for a dated event: written once however often it is found.
    pub occasion: Option<String>,
}

/// An event in the outbox.
// Read straight from its row; the payload is stored as JSON text.
#[derive(Clone, Debug, Serialize, Queryable, Selectable)]
#[diesel(table_name = outbox_events)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OutboxEvent {
    pub id: i64,
    pub kind: EventKind,
    pub organisation_code: Option<String>,
    pub subject: String,
    pub summary: String,
    #[diesel(deserialize_as = JsonText<serde_json::Value>)]
    pub payload: serde_json::Value,
    #[serde(serialize_with = "crate::time::utc")]
    pub occurred_at: NaiveDateTime,
}

fn now() -> NaiveDateTime {
    chrono::Utc::now().naive_utc()
}

/// Writes an event (inside the caller's transaction).
pub fn record(conn: &mut DbConnection, event: &NewEvent) -> DbResult<i64> {
    Ok(diesel::insert_into(outbox_events::table)
        .values((
            outbox_events::kind.eq(event.kind),
            outbox_events::organisation_code.eq(&event.organisation_code),
            outbox_events::subject.eq(&event.subject),
            outbox_events::summary.eq(&event.summary),
            outbox_events::payload.eq(event.payload.to_string()),
            outbox_events::occasion.eq(&event.occasion),
            outbox_events::occurred_at.eq(now()),
            outbox_events::fanned_out.eq(false),
        ))
        .returning(outbox_events::id)
        .get_result(conn)?)
}

/// Writes a dated event unless its occasion was written before; true when it was written now.
/// The scheduler runs alone (one instance at a time), so reading first is enough.
pub fn record_once(conn: &mut DbConnection, event: &NewEvent) -> DbResult<bool> {
    let Some(occasion) = &event.occasion else {
        return Err(DbError::Internal("a dated event needs its occasion".into()));
    };
    let seen: i64 =
        outbox_events::table.filter(outbox_events::occasion.eq(occasion)).count().get_result(conn)?;
    if seen > 0 {
        return Ok(false);
    }
    record(conn, event)?;
    Ok(true)
}

/// An event by id.
pub fn get(conn: &mut DbConnection, id: i64) -> DbResult<OutboxEvent> {
    outbox_events::table
        .find(id)
        .select(OutboxEvent::as_select())
        .first(conn)
        .optional()?
        .ok_or(DbError::NotFound("event"))
}

/// Events by id (a page of deliveries' events in one read).
pub fn by_id(conn: &mut DbConnection, ids: &[i64]) -> DbResult<std::collections::HashMap<i64, OutboxEvent>> {
    let events: Vec<OutboxEvent> = outbox_events::table
        .filter(outbox_events::id.eq_any(ids))
        .select(OutboxEvent::as_select())
        .load(conn)?;
    Ok(events.into_iter().map(|event| (event.id, event)).collect())
}

/// The newest events first, at most `limit` (for tests and the admin's view of the outbox).
pub fn recent(conn: &mut DbConnection, limit: i64) -> DbResult<Vec<OutboxEvent>> {
    Ok(outbox_events::table
        .select(OutboxEvent::as_select())
        .order(outbox_events::id.desc())
        .limit(limit)
        .load(conn)?)
}

/// One audited change, as [`told_by`] reads it.
pub struct Changed<'a> {
    pub action: &'a str,
    pub entity_id: &'a str,
    pub organisation: Option<&'a str>,
    pub after: Option<&'a serde_json::Value>,
}

fn text<'a>(state: Option<&'a serde_json::Value>, field: &str) -> &'a str {
    state.and_then(|s| s.get(field)).and_then(serde_json::Value::as_str).unwrap_or("")
}

fn number(state: Option<&serde_json::Value>, field: &str) -> Option<i64> {
    state.and_then(|s| s.get(field)).and_then(serde_json::Value::as_i64)
}

/// The event a committed change causes, if any: called inside the change's transaction, after
/// the change, so what it reads (a line's seats) is the state the change leaves.
pub fn told_by(conn: &mut DbConnection, change: &Changed) -> DbResult<Option<NewEvent>> {
    let after = change.after;
    let event = |kind: EventKind, organisation: Option<&str>, subject: String, summary: String| NewEvent {
        kind,
        organisation_code: organisation.map(str::to_owned),
        subject,
        summary,
        payload: after.cloned().unwrap_or(serde_json::Value::Null),
        occasion: None,
    };
    let advisory =
        || format!("{} ({}): {}", text(after, "reference"), text(after, "severity"), text(after, "title"));
    Ok(match change.action {
        "advisory.create" => Some(event(
            EventKind::AdvisoryPublished,
            None,
            format!("advisory/{}", change.entity_id),
            format!("Advisory {} was published.", advisory()),
        )),
        "advisory.update" => Some(event(
            EventKind::AdvisoryChanged,
            None,
            format!("advisory/{}", change.entity_id),
            format!("Advisory {} was changed.", advisory()),
        )),
        "seat_request.create" => Some(event(
            EventKind::ApprovalRequested,
            change.organisation,
            format!("seat_request/{}", change.entity_id),
            format!(
                "{} asked for {} seats on entitlement line {}; the line needs approval.",
                change.organisation.unwrap_or("An organisation"),
                number(after, "quantity").unwrap_or(0),
                number(after, "entitlement_id").unwrap_or(0),
            ),
        )),
        "seat_request.approve" | "seat_request.refuse" => Some(event(
            EventKind::ApprovalDecided,
            change.organisation,
            format!("seat_request/{}", change.entity_id),
            format!(
                "The request for {} seats on entitlement line {} was {}.",
                number(after, "quantity").unwrap_or(0),
                number(after, "entitlement_id").unwrap_or(0),
                if change.action == "seat_request.approve" { "approved" } else { "refused" },
            ),
        )),
        "standard_version.publish" | "standard_version.withdraw" => {
            let (kind, verb) = if change.action == "standard_version.publish" {
                (EventKind::StandardPublished, "published")
            } else {
                (EventKind::StandardWithdrawn, "withdrawn")
            };
            let standard_id = number(after, "standard_id").unwrap_or(0);
            let title: Option<String> =
                standards::table.find(standard_id).select(standards::title).first(conn).optional()?;
            Some(event(
                kind,
                None,
                format!("standard_version/{}", change.entity_id),
                format!(
                    "Version {} of the standard \"{}\", published by {}, was {verb}.",
                    number(after, "number").unwrap_or(0),
                    title.unwrap_or_default(),
                    change.organisation.unwrap_or("an exemplar"),
                ),
            ))
        }
        "allocation.claim" => match (number(after, "entitlement_id"), number(after, "quantity")) {
            (Some(line), Some(quantity)) => cap_crossed(conn, line, quantity)?,
            _ => None,
        },
        _ => None,
    })
}

/// A claim of `claimed` seats that took a capped line to 90% or to full: the event that says so,
/// once (the seats before the claim were below the mark).
fn cap_crossed(conn: &mut DbConnection, line: i64, claimed: i64) -> DbResult<Option<NewEvent>> {
    let found: Option<(Option<i64>, i64, String)> = entitlements::table
        .inner_join(products::table)
        .filter(entitlements::id.eq(line))
        .select((entitlements::seat_cap, entitlements::seats_allocated, products::name))
        .first(conn)
        .optional()?;
    let Some((Some(cap), allocated, product)) = found else { return Ok(None) };
    if cap <= 0 {
        return Ok(None);
    }
    // Compared in i128: a cap and a seat count are bounded, their products by 10 need not be.
    let (cap, now, before) =
        (i128::from(cap), i128::from(allocated), i128::from(allocated) - i128::from(claimed));
    let crossed = |mark_tenths: i128| before * 10 < cap * mark_tenths && now * 10 >= cap * mark_tenths;
    let (kind, words) = if crossed(10) {
        (EventKind::CapFull, "is full")
    } else if crossed(9) {
        (EventKind::CapNearlyFull, "is 90% claimed")
    } else {
        return Ok(None);
    };
    Ok(Some(NewEvent {
        kind,
        organisation_code: None,
        subject: format!("entitlement/{line}"),
        summary: format!("Entitlement line {line} ({product}) {words}: {now} of {cap} seats."),
        payload: serde_json::json!({ "entitlement_id": line, "product": product, "seat_cap": cap as i64, "seats_allocated": allocated }),
        occasion: None,
    }))
}
