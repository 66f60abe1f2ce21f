//! Seat requests: claims on a line that requires the national team's approval. A request holds
//! no seats; approving it makes the claim through the ledger (`ledger::approve_request`, the
//! ledger being the one place seats are taken), with every check made again on the day of
//! approval (the seats left, the organisation's cap, its eligibility), so the ledger's invariants
//! are over approved seats only. Refusing needs a reason; the organisation may withdraw a request
//! while it is pending.
//!
//! Each decision is one transaction that first takes the pending request's row lock with a
//! conditional UPDATE (`lock_pending`): two admins deciding at once cannot both act, and a
//! request is never approved twice.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;

use crate::audit::{Actor, Audited, Change, now};
use crate::connection::{Database, DbConnection};
use crate::error::{DbError, DbResult};
use crate::page::{AddedOrder, Page, PageRequest};
use crate::schema::seat_requests as requests;
use crate::vocabulary::SeatRequestStatus;

/// A refusal's reason, at most this many characters.
pub const MAX_REASON_CHARS: usize = 2000;

#[derive(Clone, Debug, Serialize, Queryable, Selectable, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[diesel(table_name = requests)]
pub struct SeatRequest {
    pub id: i64,
    pub entitlement_id: i64,
    /// ODS code of the organisation the seats are for.
    pub organisation_code: String,
    /// Seats asked for.
    pub quantity: i64,
    pub reference: Option<String>,
    pub status: SeatRequestStatus,
    /// Why it was refused.
    pub reason: Option<String>,
    /// The allocation its approval made.
    pub allocation_id: Option<i64>,
    pub requested_by: Option<i64>,
    #[serde(serialize_with = "crate::time::utc")]
    pub requested_at: NaiveDateTime,
    pub decided_by: Option<i64>,
    #[serde(serialize_with = "crate::time::utc_option")]
    pub decided_at: Option<NaiveDateTime>,
}

pub fn get(conn: &mut DbConnection, id: i64) -> DbResult<SeatRequest> {
    requests::table
        .find(id)
        .select(SeatRequest::as_select())
        .first(conn)
        .optional()?
        .ok_or(DbError::NotFound("seat request"))
}

/// Records a claim as a pending request, inside the claim's transaction (after the ledger has
/// checked it as it would check a claim).
pub(crate) fn create_in(
    conn: &mut DbConnection,
    actor: &Actor,
    entitlement_id: i64,
    organisation_code: &str,
    quantity: i64,
    reference: Option<&str>,
) -> DbResult<(SeatRequest, Change)> {
    let id: i64 = diesel::insert_into(requests::table)
        .values((
            requests::entitlement_id.eq(entitlement_id),
            requests::organisation_code.eq(organisation_code.to_uppercase()),
            requests::quantity.eq(quantity),
            requests::reference.eq(reference),
            requests::status.eq(SeatRequestStatus::Pending),
            requests::requested_by.eq(actor.user_id),
            requests::requested_at.eq(now()),
        ))
        .returning(requests::id)
        .get_result(conn)?;
    let request = get(conn, id)?;
    let change = Change::new("seat_request.create", "seat_request", id)
        .organisation(Some(&request.organisation_code))
        .after(&request);
    Ok((request, change))
}

#[derive(Debug, Default)]
pub struct SeatRequestFilter {
    pub status: Option<SeatRequestStatus>,
    pub organisation_code: Option<String>,
    pub entitlement_id: Option<i64>,
    /// Oldest first (the order the national team works through them, and the API's), or the
    /// latest first.
    pub order: AddedOrder,
}

/// Requests in the filter's order.
pub fn list(
    conn: &mut DbConnection,
    filter: &SeatRequestFilter,
    page: &PageRequest,
) -> DbResult<Page<SeatRequest>> {
    let mut query = requests::table.select(SeatRequest::as_select()).into_boxed();
    if let Some(status) = filter.status {
        query = query.filter(requests::status.eq(status));
    }
    if let Some(code) = &filter.organisation_code {
        query = query.filter(requests::organisation_code.eq(code.to_uppercase()));
    }
    if let Some(entitlement) = filter.entitlement_id {
        query = query.filter(requests::entitlement_id.eq(entitlement));
    }
    let after = page.after_id()?;
    query = match filter.order {
        AddedOrder::OldestFirst => match after {
            Some(after) => query.filter(requests::id.gt(after)),
            None => query,
        }
        .order(requests::id),
        AddedOrder::NewestFirst => match after {
            Some(after) => query.filter(requests::id.lt(after)),
            None => query,
        }
        .order(requests::id.desc()),
    };
    let limit = page.limit();
    Ok(Page::from_rows(query.limit(limit + 1).load(conn)?, limit, |r| r.id.to_string()))
}

/// The label of the product each of `entitlement_ids` is a line of, by line id, in one statement
/// (a list of requests names what each asks for).
pub fn products_of_lines(
    conn: &mut DbConnection,
    entitlement_ids: &[i64],
) -> DbResult<std::collections::BTreeMap<i64, String>> {
    let rows: Vec<(i64, String, String, String)> = crate::schema::entitlements::table
        .inner_join(crate::schema::products::table)
        .filter(crate::schema::entitlements::id.eq_any(entitlement_ids))
        .select((
            crate::schema::entitlements::id,
            crate::schema::products::name,
            crate::schema::products::edition,
            crate::schema::products::version,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, name, edition, version)| (id, crate::products::label(&name, &edition, &version)))
        .collect())
}

/// Takes a pending request's row lock (a no-op update) and reads it, or says where it stands:
/// a concurrent decision waits for the lock, then finds it decided. An approval takes it first,
/// so locks go request, organisation, line.
pub(crate) fn lock_pending(conn: &mut DbConnection, id: i64) -> DbResult<SeatRequest> {
    let current = get(conn, id)?;
    let pending = diesel::update(
        requests::table.filter(requests::id.eq(id)).filter(requests::status.eq(SeatRequestStatus::Pending)),
    )
    .set(requests::status.eq(requests::status))
    .execute(conn)?;
    if pending == 0 {
        return Err(DbError::Conflict(format!("seat request {id} is {}, not pending", current.status)));
    }
    get(conn, id)
}

/// Decides a request locked by [`lock_pending`], recording who decided and when (an approved
/// request names the allocation its claim made, a refused one its reason: the table's CHECKs).
fn decide(
    conn: &mut DbConnection,
    actor: &Actor,
    before: &SeatRequest,
    (status, action): (SeatRequestStatus, &'static str),
    reason: Option<&str>,
    allocation_id: Option<i64>,
) -> DbResult<(SeatRequest, Change)> {
    diesel::update(requests::table.find(before.id))
        .set((
            requests::status.eq(status),
            requests::reason.eq(reason),
            requests::allocation_id.eq(allocation_id),
            requests::decided_by.eq(actor.user_id),
            requests::decided_at.eq(now()),
        ))
        .execute(conn)?;
    let request = get(conn, before.id)?;
    let change = Change::new(action, "seat_request", before.id)
        .organisation(Some(&request.organisation_code))
        .before(before)
        .after(&request);
    Ok((request, change))
}

/// Marks a request locked by [`lock_pending`] approved, naming the allocation its claim made.
pub(crate) fn mark_approved(
    conn: &mut DbConnection,
    actor: &Actor,
    before: &SeatRequest,
    allocation_id: i64,
) -> DbResult<(SeatRequest, Change)> {
    decide(
        conn,
        actor,
        before,
        (SeatRequestStatus::Approved, "seat_request.approve"),
        None,
        Some(allocation_id),
    )
}

/// Hands an organisation's pending requests to its successor, inside the succession's
/// transaction: the successor will hold the seats, and approving a request for the closed
/// predecessor could only be refused. Decided requests stay the predecessor's history.
pub(crate) fn transfer_pending_in(conn: &mut DbConnection, from: &str, to: &str) -> DbResult<Vec<Change>> {
    let pending: Vec<SeatRequest> = requests::table
        .filter(requests::organisation_code.eq(from))
        .filter(requests::status.eq(SeatRequestStatus::Pending))
        .order(requests::id)
        .select(SeatRequest::as_select())
        .load(conn)?;
    let mut changes = Vec::with_capacity(pending.len());
    for request in &pending {
        diesel::update(requests::table.find(request.id))
            .set(requests::organisation_code.eq(to))
            .execute(conn)?;
        let moved = get(conn, request.id)?;
        changes.push(
            Change::new("seat_request.transfer", "seat_request", request.id)
                .organisation(Some(from))
                .before(request)
                .after(&moved),
        );
    }
    Ok(changes)
}

/// What is wrong with a refusal's reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReasonProblem {
    Empty,
    /// Longer than [`MAX_REASON_CHARS`].
    TooLong,
}

/// The rule a refusal's reason breaks, if any: the one statement of it that [`refuse`] refuses
/// with and the request page shows against its field.
pub fn reason_problem(reason: &str) -> Option<ReasonProblem> {
    let reason = reason.trim();
    match () {
        _ if reason.is_empty() => Some(ReasonProblem::Empty),
        _ if reason.chars().count() > MAX_REASON_CHARS => Some(ReasonProblem::TooLong),
        _ => None,
    }
}

/// Refuses a pending request, with the reason the organisation will read.
pub fn refuse(db: &Database, actor: &Actor, id: i64, reason: &str) -> DbResult<SeatRequest> {
    let reason = reason.trim();
    match reason_problem(reason) {
        Some(ReasonProblem::Empty) => return Err(DbError::Invalid("a refusal needs a reason".into())),
        Some(ReasonProblem::TooLong) => {
            return Err(DbError::Invalid(format!("reason must be at most {MAX_REASON_CHARS} characters")));
        }
        None => {}
    }
    db.write(actor, |conn| {
        let before = lock_pending(conn, id)?;
        let (request, change) = decide(
            conn,
            actor,
            &before,
            (SeatRequestStatus::Refused, "seat_request.refuse"),
            Some(reason),
            None,
        )?;
        Ok(Audited::one(request, change))
    })
}

/// Withdraws a pending request (the organisation no longer needs the seats).
pub fn withdraw(db: &Database, actor: &Actor, id: i64) -> DbResult<SeatRequest> {
    db.write(actor, |conn| {
        let before = lock_pending(conn, id)?;
        let (request, change) = decide(
            conn,
            actor,
            &before,
            (SeatRequestStatus::Withdrawn, "seat_request.withdraw"),
            None,
            None,
        )?;
        Ok(Audited::one(request, change))
    })
}
