//! The seat ledger: the one place where seats of an entitlement are taken and given back.
//! Single claims, bulk claims and successions all go through [`take_seats`] and
//! [`give_back_seats`], so the invariant holds on every path: the sum of live allocations equals
//! the entitlement's `seats_allocated`, which never exceeds the cap unless the entitlement's
//! policy allows over-allocation (then the excess is flagged for true-up).
//!
//! Why it holds under concurrency: the cap check and the increment are one conditional UPDATE
//! (`... WHERE seats_allocated + n <= seat_cap`), which PostgreSQL evaluates under the row lock
//! and SQLite runs with the one-writer lock held; the table's CHECK constraint refuses anything
//! that slipped past both.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use serde::Serialize;

use crate::agreements::{seats_remaining, within_dates};
use crate::audit::{Actor, Audited, Change, now};
use crate::connection::{Database, DbConnection};
use crate::coverage::agreement_dates_in_force;
use crate::error::{DbError, DbResult};
use crate::nhsmail;
use crate::organisations::{self, Organisation};
use crate::page::{Page, PageRequest};
use crate::schema::{
    agreements as agreement_rows, allocations, entitlements, idempotency_keys, obligation_acceptances,
    obligations, organisations as orgs,
};
use crate::seat_requests::{self, SeatRequest};
use crate::stored::KindList;
use crate::vocabulary::{AgreementStatus, NhsmailService, OrganisationKind, OverAllocationPolicy};

/// The most seats one claim may take. The NHS has about 1.5 million staff and 2.1 million
/// devices (Defender for Endpoint, October 2023): ten million is more than any real claim, and
/// small enough that no sum of claims the ledger allows can overflow a 64-bit counter.
pub const MAX_SEATS_PER_CLAIM: i64 = 10_000_000;

pub use crate::agreements::MAX_SEATS_PER_LINE;

/// Refuses a claim or release quantity outside 1..=[`MAX_SEATS_PER_CLAIM`].
pub fn check_quantity(quantity: i64) -> DbResult<()> {
    if !(1..=MAX_SEATS_PER_CLAIM).contains(&quantity) {
        return Err(DbError::Invalid(format!("quantity must be between 1 and {MAX_SEATS_PER_CLAIM}")));
    }
    Ok(())
}

/// The seats on a line after `quantity` more are taken, or why it cannot hold them.
fn total_after_claim(seats_allocated: i64, quantity: i64) -> DbResult<i64> {
    seats_allocated.checked_add(quantity).filter(|total| *total <= MAX_SEATS_PER_LINE).ok_or_else(|| {
        DbError::Conflict(format!(
            "an entitlement line holds at most {MAX_SEATS_PER_LINE} seats; {seats_allocated} are allocated"
        ))
    })
}

// Only the schema of this type is used, so that the document lists the values;
// `Allocation::status` stays the text the ledger reads and writes. The values are those the ledger
// writes: a claim and a successor's allocation are `live`, a release of every seat `released`, a
// succession's predecessor `transferred` (the database's CHECK allows the same three).
/// An allocation's status: `live` (holds seats), `released` (all seats given back) or
/// `transferred` (its seats moved to a successor's allocation).
#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum AllocationStatus {
    Live,
    Released,
    Transferred,
}

#[derive(Clone, Debug, Serialize, Queryable, Selectable, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[diesel(table_name = allocations)]
pub struct Allocation {
    pub id: i64,
    pub entitlement_id: i64,
    /// ODS code of the organisation holding the seats.
    pub organisation_code: String,
    /// Seats held now (0 once released or transferred).
    pub quantity: i64,
    /// Seats the claim first took.
    pub claimed_quantity: i64,
    /// `live`, `released` (all seats given back) or `transferred` (to a successor).
    #[cfg_attr(feature = "openapi", schema(value_type = AllocationStatus))]
    pub status: String,
    pub reference: Option<String>,
    /// For a transferred allocation: the successor's allocation that took its seats.
    pub transferred_to_id: Option<i64>,
    pub created_by: Option<i64>,
    #[serde(serialize_with = "crate::time::utc")]
    pub created_at: NaiveDateTime,
    #[serde(serialize_with = "crate::time::utc")]
    pub updated_at: NaiveDateTime,
}

/// What a claim is decided from, read in one statement (so from one snapshot): the line's
/// dates, eligibility and seats, its agreement's status, dates and eligibility, and the claiming
/// organisation. Only these columns: a claim's transaction holds SQLite's writer lock.
#[derive(Queryable)]
struct ClaimTerms {
    line_kinds: KindList,
    line_starts_on: NaiveDate,
    line_ends_on: Option<NaiveDate>,
    seat_cap: Option<i64>,
    seats_allocated: i64,
    over_allocation_policy: OverAllocationPolicy,
    agreement_status: AgreementStatus,
    agreement_starts_on: NaiveDate,
    agreement_ends_on: Option<NaiveDate>,
    agreement_kinds: KindList,
    organisation_code: String,
    organisation_kind: OrganisationKind,
    organisation_closed_on: Option<NaiveDate>,
    requires_approval: bool,
    per_organisation_cap: Option<i64>,
    line_nhsmail_service: Option<NhsmailService>,
}

/// The claim's terms with what is read beside them: the organisation's NHSmail service on the
/// day, and the seats it holds of the line already (for a line with a per-organisation cap).
struct ClaimContext {
    terms: ClaimTerms,
    nhsmail_service: Option<NhsmailService>,
    organisation_holds: i64,
}

fn claim_context(
    conn: &mut DbConnection,
    entitlement_id: i64,
    organisation: &str,
    on: NaiveDate,
) -> DbResult<ClaimContext> {
    let terms = claim_terms(conn, entitlement_id, organisation)?;
    let nhsmail_service = match terms.line_nhsmail_service {
        // Read only for a line that is one service's provision.
        Some(_) => {
            let recorded = nhsmail::periods_of(conn, &terms.organisation_code)?;
            nhsmail::service_on(&recorded, terms.organisation_kind, on).map(|(service, _)| service)
        }
        None => None,
    };
    let organisation_holds = match terms.per_organisation_cap {
        Some(_) => seats_held(conn, entitlement_id, &terms.organisation_code)?,
        None => 0,
    };
    Ok(ClaimContext { terms, nhsmail_service, organisation_holds })
}

/// Seats an organisation holds of a line in live allocations (each at most
/// [`MAX_SEATS_PER_LINE`], and so is their sum: the line's total is bounded by it).
fn seats_held(conn: &mut DbConnection, entitlement_id: i64, organisation_code: &str) -> DbResult<i64> {
    let quantities: Vec<i64> = allocations::table
        .filter(allocations::entitlement_id.eq(entitlement_id))
        .filter(allocations::organisation_code.eq(organisation_code))
        .filter(allocations::status.eq("live"))
        .select(allocations::quantity)
        .load(conn)?;
    Ok(quantities.iter().fold(0i64, |total, quantity| total.saturating_add(*quantity)))
}

/// Refuses a claim that would take an organisation past the line's per-organisation cap.
fn check_organisation_cap(
    entitlement_id: i64,
    organisation_code: &str,
    per_organisation_cap: Option<i64>,
    holds: i64,
    quantity: i64,
) -> DbResult<()> {
    match per_organisation_cap {
        Some(cap) if holds.saturating_add(quantity) > cap => Err(DbError::Conflict(format!(
            "{organisation_code} may hold at most {cap} seats of entitlement {entitlement_id}; it holds {holds}, so it may claim {} more",
            (cap - holds).max(0)
        ))),
        _ => Ok(()),
    }
}

fn claim_terms(conn: &mut DbConnection, entitlement_id: i64, organisation: &str) -> DbResult<ClaimTerms> {
    use entitlements::dsl as e;
    let organisation = organisation.to_uppercase();
    let terms = e::entitlements
        .inner_join(agreement_rows::table)
        .inner_join(orgs::table.on(orgs::code.eq(&organisation)))
        .filter(e::id.eq(entitlement_id))
        .select((
            e::eligible_kinds,
            e::starts_on,
            e::ends_on,
            e::seat_cap,
            e::seats_allocated,
            e::over_allocation_policy,
            agreement_rows::status,
            agreement_rows::starts_on,
            agreement_rows::ends_on,
            agreement_rows::eligible_kinds,
            orgs::code,
            orgs::kind,
            orgs::closed_on,
            e::requires_approval,
            e::per_organisation_cap,
            e::nhsmail_service,
        ))
        .first::<ClaimTerms>(conn)
        .optional()?;
    match terms {
        Some(terms) => Ok(terms),
        None => {
            let line_exists: i64 =
                e::entitlements.filter(e::id.eq(entitlement_id)).count().get_result(conn)?;
            // The entitlement is the resource asked for (404); the organisation is a value in
            // the request's body, which is not acceptable when it names nothing (422).
            if line_exists == 0 {
                Err(DbError::NotFound("entitlement"))
            } else {
                Err(DbError::Invalid(format!("organisation {organisation} does not exist")))
            }
        }
    }
}

/// Decides a claim of `quantity` seats from `terms`: the organisation's eligibility on `on`, then
/// the seats left. Inside the claim's transaction this is checked again by [`take_seats`]'s
/// conditional UPDATE; before it, a refusal here needs no writer at all (see [`claim`]).
fn check_claim(entitlement_id: i64, context: &ClaimContext, quantity: i64, on: NaiveDate) -> DbResult<()> {
    let terms = &context.terms;
    let organisation = &terms.organisation_code;
    if terms.organisation_closed_on.is_some() {
        return Err(DbError::Invalid(format!("organisation {organisation} has closed")));
    }
    if !agreement_dates_in_force(
        terms.agreement_status,
        terms.agreement_starts_on,
        terms.agreement_ends_on,
        on,
    ) || !within_dates(terms.line_starts_on, terms.line_ends_on, on)
    {
        return Err(DbError::Invalid(format!("entitlement {entitlement_id} is not in force on {on}")));
    }
    let kind = terms.organisation_kind;
    if !terms.line_kinds.contains(&kind) || !terms.agreement_kinds.contains(&kind) {
        return Err(DbError::Invalid(format!(
            "organisations of kind {kind} are not eligible for entitlement {entitlement_id}"
        )));
    }
    if let Some(service) = terms.line_nhsmail_service
        && context.nhsmail_service != Some(service)
    {
        return Err(DbError::Invalid(format!(
            "entitlement {entitlement_id} is the national provision for NHSmail {service} Service organisations; {organisation} takes {}",
            context.nhsmail_service.map_or("no NHSmail service", NhsmailService::as_str)
        )));
    }
    check_quantity(quantity)?;
    check_organisation_cap(
        entitlement_id,
        organisation,
        terms.per_organisation_cap,
        context.organisation_holds,
        quantity,
    )?;
    let total = total_after_claim(terms.seats_allocated, quantity)?;
    let over_allocation_allowed = terms.over_allocation_policy == OverAllocationPolicy::AllowAndFlag;
    match terms.seat_cap {
        Some(cap) if !over_allocation_allowed && total > cap => Err(DbError::SeatsExhausted {
            remaining: seats_remaining(terms.seat_cap, terms.seats_allocated).unwrap_or(0),
        }),
        _ => Ok(()),
    }
}

/// Takes `quantity` seats of an entitlement, or fails with the seats remaining. The only
/// code that increases `seats_allocated`.
fn take_seats(conn: &mut DbConnection, entitlement_id: i64, quantity: i64) -> DbResult<()> {
    use entitlements::dsl as e;
    // Bounded here too (a succession moves whole allocations): with both bounds the SQL below
    // never computes past MAX_SEATS_PER_LINE, so neither engine can overflow.
    if !(1..=MAX_SEATS_PER_LINE).contains(&quantity) {
        return Err(DbError::Invalid(format!("quantity must be between 1 and {MAX_SEATS_PER_LINE}")));
    }
    // One statement decides and takes: a line that allows over-allocation takes seats past its
    // cap (and is flagged), any other only within it; no line past MAX_SEATS_PER_LINE.
    let updated = diesel::update(
        e::entitlements
            .filter(e::id.eq(entitlement_id))
            .filter(e::seats_allocated.le(MAX_SEATS_PER_LINE - quantity))
            .filter(
                e::over_allocation_policy
                    .eq(OverAllocationPolicy::AllowAndFlag)
                    .or(e::seat_cap.is_null())
                    .or(e::seats_allocated.le(e::seat_cap.assume_not_null() - quantity)),
            ),
    )
    .set((e::seats_allocated.eq(e::seats_allocated + quantity), e::seats_version.eq(e::seats_version + 1)))
    .execute(conn)?;
    if updated == 0 {
        let (cap, allocated): (Option<i64>, i64) =
            e::entitlements.find(entitlement_id).select((e::seat_cap, e::seats_allocated)).first(conn)?;
        total_after_claim(allocated, quantity)?;
        return Err(DbError::SeatsExhausted { remaining: seats_remaining(cap, allocated).unwrap_or(0) });
    }
    Ok(())
}

/// Takes the line's row lock (PostgreSQL) without changing it, so that ledger transactions lock
/// a line before its allocations; on SQLite the one writer already orders them.
fn lock_line(conn: &mut DbConnection, entitlement_id: i64) -> DbResult<()> {
    use entitlements::dsl as e;
    diesel::update(e::entitlements.filter(e::id.eq(entitlement_id)))
        .set(e::seats_allocated.eq(e::seats_allocated))
        .execute(conn)?;
    Ok(())
}

/// Gives `quantity` seats back to an entitlement. The only code that decreases it.
fn give_back_seats(conn: &mut DbConnection, entitlement_id: i64, quantity: i64) -> DbResult<()> {
    use entitlements::dsl as e;
    diesel::update(e::entitlements.filter(e::id.eq(entitlement_id)))
        .set((
            e::seats_allocated.eq(e::seats_allocated - quantity),
            e::seats_version.eq(e::seats_version + 1),
        ))
        .execute(conn)?;
    Ok(())
}

/// Records the entitlement's obligations as accepted by the organisation (once each).
fn accept_obligations(conn: &mut DbConnection, entitlement_id: i64, organisation_code: &str) -> DbResult<()> {
    let due: Vec<(i64, Option<NaiveDate>)> = obligations::table
        .filter(obligations::entitlement_id.eq(entitlement_id))
        .select((obligations::id, obligations::due_on))
        .load(conn)?;
    for (obligation_id, due_on) in due {
        let existing: i64 = obligation_acceptances::table
            .filter(obligation_acceptances::obligation_id.eq(obligation_id))
            .filter(obligation_acceptances::organisation_code.eq(organisation_code))
            .count()
            .get_result(conn)?;
        if existing == 0 {
            diesel::insert_into(obligation_acceptances::table)
                .values((
                    obligation_acceptances::obligation_id.eq(obligation_id),
                    obligation_acceptances::organisation_code.eq(organisation_code),
                    obligation_acceptances::accepted_at.eq(now()),
                    obligation_acceptances::due_on.eq(due_on),
                    obligation_acceptances::status.eq("open"),
                ))
                .execute(conn)?;
        }
    }
    Ok(())
}

pub fn get_allocation(conn: &mut DbConnection, id: i64) -> DbResult<Allocation> {
    allocations::table
        .find(id)
        .select(Allocation::as_select())
        .first(conn)
        .optional()?
        .ok_or(DbError::NotFound("allocation"))
}

#[derive(Clone, Debug, Serialize)]
pub struct Claim {
    pub organisation: String,
    pub quantity: i64,
    pub reference: Option<String>,
}

/// One claim, checked inside the caller's transaction: on a line that requires approval it is
/// held as a seat request (no seats taken), on any other line its seats are taken.
fn claim_or_request_in(
    conn: &mut DbConnection,
    actor: &Actor,
    entitlement_id: i64,
    claim: &Claim,
    on: NaiveDate,
) -> DbResult<(ClaimOutcome, Change)> {
    let context = claim_context(conn, entitlement_id, &claim.organisation, on)?;
    check_claim(entitlement_id, &context, claim.quantity, on)?;
    if context.terms.requires_approval {
        let (request, change) = seat_requests::create_in(
            conn,
            actor,
            entitlement_id,
            &claim.organisation,
            claim.quantity,
            claim.reference.as_deref(),
        )?;
        return Ok((ClaimOutcome::Requested(request), change));
    }
    let (allocation, change) = take_checked_claim(conn, actor, entitlement_id, claim, context.terms)?;
    Ok((ClaimOutcome::Created(allocation), change))
}

/// One claim, checked and its seats taken inside the caller's transaction, whether or not the
/// line requires approval: a seat request's approval comes here.
pub(crate) fn claim_in(
    conn: &mut DbConnection,
    actor: &Actor,
    entitlement_id: i64,
    claim: &Claim,
    on: NaiveDate,
) -> DbResult<(Allocation, Change)> {
    let context = claim_context(conn, entitlement_id, &claim.organisation, on)?;
    check_claim(entitlement_id, &context, claim.quantity, on)?;
    take_checked_claim(conn, actor, entitlement_id, claim, context.terms)
}

/// Takes a claim's seats once [`check_claim`] has passed on `terms`, read in this transaction.
fn take_checked_claim(
    conn: &mut DbConnection,
    actor: &Actor,
    entitlement_id: i64,
    claim: &Claim,
    terms: ClaimTerms,
) -> DbResult<(Allocation, Change)> {
    // The organisation's row lock, held to the commit: a succession closing it waits for this
    // claim (and then moves its seats), or this claim waits for the succession and is refused.
    // Locks are taken organisation, line, allocation, in every ledger transaction. A column that
    // is not the key is "changed", so the lock does not block rows that merely refer to it.
    let open = diesel::update(
        orgs::table.filter(orgs::code.eq(&terms.organisation_code)).filter(orgs::closed_on.is_null()),
    )
    .set(orgs::name.eq(orgs::name))
    .execute(conn)?;
    if open == 0 {
        return Err(DbError::Invalid(format!("organisation {} has closed", terms.organisation_code)));
    }
    // Read again under the organisation's lock: a concurrent claim by the same organisation has
    // committed or waits behind this one, so the seats it holds cannot change until the commit.
    if terms.per_organisation_cap.is_some() {
        let holds = seats_held(conn, entitlement_id, &terms.organisation_code)?;
        check_organisation_cap(
            entitlement_id,
            &terms.organisation_code,
            terms.per_organisation_cap,
            holds,
            claim.quantity,
        )?;
    }
    take_seats(conn, entitlement_id, claim.quantity)?;
    let organisation_code = terms.organisation_code;
    let stamp = now();
    let id: i64 = diesel::insert_into(allocations::table)
        .values((
            allocations::entitlement_id.eq(entitlement_id),
            allocations::organisation_code.eq(&organisation_code),
            allocations::quantity.eq(claim.quantity),
            allocations::claimed_quantity.eq(claim.quantity),
            allocations::status.eq("live"),
            allocations::reference.eq(&claim.reference),
            allocations::created_by.eq(actor.user_id),
            allocations::created_at.eq(stamp),
            allocations::updated_at.eq(stamp),
        ))
        .returning(allocations::id)
        .get_result(conn)?;
    accept_obligations(conn, entitlement_id, &organisation_code)?;
    let allocation = get_allocation(conn, id)?;
    let change = Change::new("allocation.claim", "allocation", id)
        .organisation(Some(&organisation_code))
        .after(&allocation);
    Ok((allocation, change))
}

/// What an approval made: the request, approved, and the allocation holding its seats.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Approval {
    pub request: SeatRequest,
    pub allocation: Allocation,
}

/// Approves a pending seat request: its claim is made now, checked as any claim on `on`. When
/// the claim is refused (no seats left, the organisation's cap, a closed organisation) nothing
/// changes and the request stays pending, to be refused with a reason or approved later.
pub fn approve_request(db: &Database, actor: &Actor, request_id: i64, on: NaiveDate) -> DbResult<Approval> {
    db.write(actor, |conn| {
        let before = seat_requests::lock_pending(conn, request_id)?;
        let claim = Claim {
            organisation: before.organisation_code.clone(),
            quantity: before.quantity,
            reference: before.reference.clone(),
        };
        let (allocation, claim_change) = claim_in(conn, actor, before.entitlement_id, &claim, on)?;
        let (request, change) = seat_requests::mark_approved(conn, actor, &before, allocation.id)?;
        Ok(Audited::many(Approval { request, allocation }, vec![change, claim_change]))
    })
}

/// An idempotency key for a claim: the same key and body give the first answer again.
#[derive(Clone, Debug)]
pub struct IdempotencyKey {
    pub user_id: i64,
    pub key: String,
    /// A digest of the request (entitlement and body), to refuse a reused key with another body.
    pub fingerprint: String,
}

impl IdempotencyKey {
    /// The key for a claim, from the API or from a web form: one fingerprint for both, a digest
    /// of the entitlement and the claim as the ledger reads it (organisation code upper-cased),
    /// so "the same request" means the same thing wherever it came from.
    pub fn for_claim(user_id: i64, key: String, entitlement_id: i64, claim: &Claim) -> IdempotencyKey {
        use sha2::{Digest, Sha256};
        let canonical = serde_json::json!({
            "entitlement_id": entitlement_id,
            "organisation": claim.organisation.to_uppercase(),
            "quantity": claim.quantity,
            "reference": claim.reference,
        });
        let digest = Sha256::digest(canonical.to_string().as_bytes());
        IdempotencyKey { user_id, key, fingerprint: digest.iter().map(|b| format!("{b:02x}")).collect() }
    }
}

pub enum ClaimOutcome {
    Created(Allocation),
    /// The line requires approval: the claim is held as a request, and takes no seats yet.
    Requested(SeatRequest),
}

/// What a claim answers: what it made, and whether that was made by an earlier request with the
/// same idempotency key (a retry, which took nothing).
pub struct Claimed {
    pub outcome: ClaimOutcome,
    pub replayed: bool,
}

/// Claims seats. With an idempotency key, a retry (even a concurrent one) returns what the first
/// made (the allocation or seat request as it stands now) and never takes seats twice; the key
/// with a different body is refused.
pub fn claim(
    db: &Database,
    actor: &Actor,
    entitlement_id: i64,
    request: Claim,
    key: Option<IdempotencyKey>,
    on: NaiveDate,
) -> DbResult<Claimed> {
    // On a contended line most claims are refused. A refusal is decided here from the last
    // committed state, without a transaction: on SQLite it does not queue for the one writer, on
    // PostgreSQL it takes no row lock. A claim that may succeed is decided again, inside its
    // transaction, by the conditional UPDATE.
    let refusal = db.read(|conn| {
        let context = claim_context(conn, entitlement_id, &request.organisation, on)?;
        check_claim(entitlement_id, &context, request.quantity, on)
    });
    if let Err(refusal) = refusal {
        // A retry of a claim that was made answers as it did then (or is refused for another body).
        if let Some(key) = &key
            && let Some(replay) = db.read(|conn| stored_outcome(conn, key))?
        {
            return Ok(Claimed { outcome: replay, replayed: true });
        }
        return Err(refusal);
    }
    let Some(key) = key else {
        return db.write(actor, |conn| {
            let (outcome, change) = claim_or_request_in(conn, actor, entitlement_id, &request, on)?;
            Ok(Audited::one(Claimed { outcome, replayed: false }, change))
        });
    };
    let attempt = db.write(actor, |conn| {
        if let Some(replay) = stored_outcome(conn, &key)? {
            return Ok(Audited::unchanged(Claimed { outcome: replay, replayed: true }));
        }
        // Reserve the key first: a concurrent request with the same key waits here (PostgreSQL)
        // and then fails on the primary key, rolling back anything it would have done.
        let reserved = diesel::insert_into(idempotency_keys::table)
            .values((
                idempotency_keys::user_id.eq(key.user_id),
                idempotency_keys::idempotency_key.eq(&key.key),
                idempotency_keys::request_fingerprint.eq(&key.fingerprint),
                idempotency_keys::created_at.eq(now()),
            ))
            .execute(conn);
        match reserved {
            Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
                return Err(DbError::Conflict(KEY_RACE.into()));
            }
            other => other?,
        };
        let (outcome, change) = claim_or_request_in(conn, actor, entitlement_id, &request, on)?;
        let (allocation_id, seat_request_id) = match &outcome {
            ClaimOutcome::Created(allocation) => (Some(allocation.id), None),
            ClaimOutcome::Requested(seat_request) => (None, Some(seat_request.id)),
        };
        diesel::update(idempotency_keys::table.find((key.user_id, &key.key)))
            .set((
                idempotency_keys::allocation_id.eq(allocation_id),
                idempotency_keys::seat_request_id.eq(seat_request_id),
            ))
            .execute(conn)?;
        Ok(Audited::one(Claimed { outcome, replayed: false }, change))
    });
    match attempt {
        Err(DbError::Conflict(detail)) if detail == KEY_RACE => db
            .read(|conn| stored_outcome(conn, &key))?
            .map(|outcome| Claimed { outcome, replayed: true })
            .ok_or_else(|| {
                DbError::Conflict("a request with this Idempotency-Key is still in progress".into())
            }),
        other => other,
    }
}

const KEY_RACE: &str = "idempotency key taken by a concurrent request";

/// What the claim first made with this key, if it was made; refused when the key came with
/// another request. A key whose claim has not committed is not seen (it is written in the claim's
/// transaction), and one that names nothing is corrupt.
fn stored_outcome(conn: &mut DbConnection, key: &IdempotencyKey) -> DbResult<Option<ClaimOutcome>> {
    let stored: Option<(String, Option<i64>, Option<i64>)> = idempotency_keys::table
        .find((key.user_id, &key.key))
        .select((
            idempotency_keys::request_fingerprint,
            idempotency_keys::allocation_id,
            idempotency_keys::seat_request_id,
        ))
        .first(conn)
        .optional()?;
    match stored {
        None => Ok(None),
        Some((fingerprint, _, _)) if fingerprint != key.fingerprint => Err(DbError::Invalid(
            "this Idempotency-Key was used with a different request; use a new key".into(),
        )),
        Some((_, Some(allocation_id), _)) => {
            Ok(Some(ClaimOutcome::Created(get_allocation(conn, allocation_id)?)))
        }
        Some((_, None, Some(request_id))) => {
            Ok(Some(ClaimOutcome::Requested(seat_requests::get(conn, request_id)?)))
        }
        Some((_, None, None)) => Err(DbError::Internal(format!(
            "idempotency key {:?} of user {} names neither an allocation nor a seat request",
            key.key, key.user_id
        ))),
    }
}

/// Claims for many organisations in one transaction: all are taken or none.
pub fn claim_bulk(
    db: &Database,
    actor: &Actor,
    entitlement_id: i64,
    claims: &[Claim],
    on: NaiveDate,
) -> DbResult<Vec<Allocation>> {
    if claims.is_empty() {
        return Err(DbError::Invalid("claims must not be empty".into()));
    }
    db.write(actor, |conn| {
        // A missing entitlement is the resource asked for: 404, as for a single claim.
        let line = crate::agreements::get_entitlement(conn, entitlement_id)?;
        if line.requires_approval {
            return Err(DbError::Conflict(format!(
                "entitlement {entitlement_id} requires approval: each organisation's claim is a seat request, made singly"
            )));
        }
        let mut created = Vec::with_capacity(claims.len());
        let mut changes = Vec::with_capacity(claims.len());
        for (index, claim) in claims.iter().enumerate() {
            let (allocation, change) =
                claim_in(conn, actor, entitlement_id, claim, on).map_err(|error| match error {
                    DbError::Invalid(detail) => DbError::Invalid(format!("claims[{index}]: {detail}")),
                    DbError::NotFound(what) => DbError::Invalid(format!("claims[{index}]: {what} not found")),
                    other => other,
                })?;
            created.push(allocation);
            changes.push(change);
        }
        Ok(Audited::many(created, changes))
    })
}

/// Gives back some or all seats of a live allocation.
pub fn release(
    db: &Database,
    actor: &Actor,
    allocation_id: i64,
    quantity: Option<i64>,
) -> DbResult<Allocation> {
    db.write(actor, |conn| {
        let (after, change) = release_in(conn, allocation_id, quantity)?;
        Ok(Audited::one(after, change))
    })
}

/// [`release`] inside the caller's transaction, giving back the audit event it calls for.
pub(crate) fn release_in(
    conn: &mut DbConnection,
    allocation_id: i64,
    quantity: Option<i64>,
) -> DbResult<(Allocation, Change)> {
    let before = get_allocation(conn, allocation_id)?;
    if before.status != "live" {
        return Err(DbError::Conflict(format!("allocation {allocation_id} is {}, not live", before.status)));
    }
    // The line first, then the allocation: the order every ledger transaction takes its row
    // locks in (a succession gives seats back, taking the line, before it touches an
    // allocation). In the other order a release and a succession deadlocked on PostgreSQL.
    lock_line(conn, before.entitlement_id)?;
    let quantity = quantity.unwrap_or(before.quantity);
    if quantity <= 0 || quantity > before.quantity {
        return Err(DbError::Invalid(format!("quantity must be between 1 and {}", before.quantity)));
    }
    let remaining = before.quantity - quantity;
    // Conditional on the allocation being as it was read: two releases at once on PostgreSQL
    // both read it live, and both gave its seats back (the line's total dropped twice). The
    // second now waits for the first's row lock, finds the row changed and gives nothing back.
    let released = diesel::update(
        allocations::table
            .find(allocation_id)
            .filter(allocations::status.eq("live"))
            .filter(allocations::quantity.eq(before.quantity)),
    )
    .set((
        allocations::quantity.eq(remaining),
        allocations::status.eq(if remaining == 0 { "released" } else { "live" }),
        allocations::updated_at.eq(now()),
    ))
    .execute(conn)?;
    if released == 0 {
        return Err(DbError::Conflict(format!(
            "allocation {allocation_id} was changed by another request; read it again"
        )));
    }
    give_back_seats(conn, before.entitlement_id, quantity)?;
    let after = get_allocation(conn, allocation_id)?;
    let change = Change::new("allocation.release", "allocation", allocation_id)
        .organisation(Some(&after.organisation_code))
        .before(&before)
        .after(&after);
    Ok((after, change))
}

#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Succession {
    pub predecessor: Organisation,
    pub successor: Organisation,
    /// The successor's allocations that received the predecessor's seats.
    pub moved_allocations: Vec<Allocation>,
    pub moved_obligations: usize,
    /// Seat requests still waiting for the national team, now the successor's.
    pub moved_seat_requests: usize,
}

/// Closes `predecessor` and moves its live allocations and open obligations to `successor`,
/// merging with the successor's own, in one transaction. History stays with the predecessor:
/// its allocations are kept, marked transferred, pointing to where their seats went.
pub fn succeed(
    db: &Database,
    actor: &Actor,
    predecessor: &str,
    successor: &str,
    on: NaiveDate,
) -> DbResult<Succession> {
    db.write(actor, |conn| {
        let (succession, changes) = succeed_within(conn, actor, predecessor, successor, on)?;
        Ok(Audited::many(succession, changes))
    })
}

/// [`succeed`] inside a transaction the caller holds (confirming a succession that ODS
/// published), giving back the audit events it calls for. An organisation that ODS has closed
/// without a recorded successor may be succeeded: it keeps the close date ODS gave it. One that
/// has a successor already may not (a second succession would move nothing and hide the first).
pub(crate) fn succeed_within(
    conn: &mut DbConnection,
    actor: &Actor,
    predecessor: &str,
    successor: &str,
    on: NaiveDate,
) -> DbResult<(Succession, Vec<Change>)> {
    let before = organisations::get(conn, predecessor)?;
    // The successor is named in the body: one that does not exist is bad input (422), not
    // the missing resource of the path (404).
    let heir = organisations::get(conn, successor).map_err(|error| match error {
        DbError::NotFound(_) => DbError::Invalid(format!("the successor {successor} does not exist")),
        other => other,
    })?;
    if before.code == heir.code {
        return Err(DbError::Invalid("an organisation cannot succeed itself".into()));
    }
    if let Some(heir) = &before.successor_code {
        return Err(DbError::Conflict(format!("{} has already been succeeded by {heir}", before.code)));
    }
    let on = before.closed_on.unwrap_or(on);
    if heir.closed {
        return Err(DbError::Invalid(format!("the successor {} has closed", heir.code)));
    }
    // Closed first: a claim for the predecessor that has not yet read it is refused from now
    // on, and one that has waits for this row's lock (below) or is moved with the rest.
    diesel::update(orgs::table.find(&before.code))
        .set((orgs::closed_on.eq(on), orgs::successor_code.eq(&heir.code)))
        .execute(conn)?;
    // By line, so that two successions take the lines' locks in one order.
    let live: Vec<Allocation> = allocations::table
        .filter(allocations::organisation_code.eq(&before.code))
        .filter(allocations::status.eq("live"))
        .order((allocations::entitlement_id, allocations::id))
        .select(Allocation::as_select())
        .load(conn)?;
    let mut changes = Vec::new();
    let mut moved = Vec::new();
    for listed in live {
        // Read again under the line's lock: a release that committed since the list was
        // read has given these seats back already (moving them too counted them twice).
        lock_line(conn, listed.entitlement_id)?;
        let allocation = get_allocation(conn, listed.id)?;
        if allocation.status != "live" {
            continue;
        }
        // Through the ledger: the seats are given back and taken again for the successor,
        // so the totals and the cap check are the ledger's own.
        give_back_seats(conn, allocation.entitlement_id, allocation.quantity)?;
        take_seats(conn, allocation.entitlement_id, allocation.quantity)?;
        let existing: Option<i64> = allocations::table
            .filter(allocations::organisation_code.eq(&heir.code))
            .filter(allocations::entitlement_id.eq(allocation.entitlement_id))
            .filter(allocations::status.eq("live"))
            .order(allocations::id)
            .select(allocations::id)
            .first(conn)
            .optional()?;
        let target = match existing {
            Some(id) => {
                diesel::update(allocations::table.find(id))
                    .set((
                        allocations::quantity.eq(allocations::quantity + allocation.quantity),
                        allocations::updated_at.eq(now()),
                    ))
                    .execute(conn)?;
                id
            }
            None => diesel::insert_into(allocations::table)
                .values((
                    allocations::entitlement_id.eq(allocation.entitlement_id),
                    allocations::organisation_code.eq(&heir.code),
                    allocations::quantity.eq(allocation.quantity),
                    allocations::claimed_quantity.eq(allocation.quantity),
                    allocations::status.eq("live"),
                    allocations::reference.eq(format!("succession from {}", before.code)),
                    allocations::created_by.eq(actor.user_id),
                    allocations::created_at.eq(now()),
                    allocations::updated_at.eq(now()),
                ))
                .returning(allocations::id)
                .get_result(conn)?,
        };
        diesel::update(allocations::table.find(allocation.id))
            .set((
                allocations::status.eq("transferred"),
                allocations::transferred_to_id.eq(target),
                allocations::updated_at.eq(now()),
            ))
            .execute(conn)?;
        let received = get_allocation(conn, target)?;
        changes.push(
            Change::new("allocation.transfer", "allocation", allocation.id)
                .organisation(Some(&before.code))
                .before(&allocation)
                .after(&received),
        );
        moved.push(received);
    }
    let open: Vec<(i64, i64, Option<NaiveDate>)> = obligation_acceptances::table
        .filter(obligation_acceptances::organisation_code.eq(&before.code))
        .filter(obligation_acceptances::status.eq("open"))
        .select((
            obligation_acceptances::id,
            obligation_acceptances::obligation_id,
            obligation_acceptances::due_on,
        ))
        .load(conn)?;
    for (acceptance_id, obligation_id, due_on) in &open {
        let held: i64 = obligation_acceptances::table
            .filter(obligation_acceptances::obligation_id.eq(obligation_id))
            .filter(obligation_acceptances::organisation_code.eq(&heir.code))
            .count()
            .get_result(conn)?;
        if held == 0 {
            diesel::insert_into(obligation_acceptances::table)
                .values((
                    obligation_acceptances::obligation_id.eq(obligation_id),
                    obligation_acceptances::organisation_code.eq(&heir.code),
                    obligation_acceptances::accepted_at.eq(now()),
                    obligation_acceptances::due_on.eq(due_on),
                    obligation_acceptances::status.eq("open"),
                ))
                .execute(conn)?;
        }
        diesel::update(obligation_acceptances::table.find(acceptance_id))
            .set(obligation_acceptances::status.eq("transferred"))
            .execute(conn)?;
    }
    let transferred = seat_requests::transfer_pending_in(conn, &before.code, &heir.code)?;
    let moved_seat_requests = transferred.len();
    changes.extend(transferred);
    diesel::update(orgs::table.find(&before.code))
        .set((
            orgs::closed_on.eq(on),
            orgs::successor_code.eq(&heir.code),
            orgs::revision.eq(orgs::revision + 1),
            orgs::updated_at.eq(now()),
        ))
        .execute(conn)?;
    let after = organisations::get(conn, &before.code)?;
    changes.insert(
        0,
        Change::new("organisation.succession", "organisation", &before.code)
            .organisation(Some(&before.code))
            .before(&before)
            .after(&after),
    );
    let succession = Succession {
        predecessor: after,
        successor: heir,
        moved_allocations: moved,
        moved_obligations: open.len(),
        moved_seat_requests,
    };
    Ok((succession, changes))
}

#[derive(Debug, Default)]
pub struct AllocationFilter {
    pub entitlement_id: Option<i64>,
    pub organisation_code: Option<String>,
    /// Released and transferred allocations are left out unless asked for.
    pub include_ended: bool,
}

pub fn list(
    conn: &mut DbConnection,
    filter: &AllocationFilter,
    page: &PageRequest,
) -> DbResult<Page<Allocation>> {
    let mut query = allocations::table.select(Allocation::as_select()).order(allocations::id).into_boxed();
    if let Some(entitlement) = filter.entitlement_id {
        query = query.filter(allocations::entitlement_id.eq(entitlement));
    }
    if let Some(code) = &filter.organisation_code {
        query = query.filter(allocations::organisation_code.eq(code.to_uppercase()));
    }
    if !filter.include_ended {
        query = query.filter(allocations::status.eq("live"));
    }
    if let Some(after) = page.after_id()? {
        query = query.filter(allocations::id.gt(after));
    }
    let limit = page.limit();
    Ok(Page::from_rows(query.limit(limit + 1).load(conn)?, limit, |a| a.id.to_string()))
}

/// The sum of live allocations of an entitlement (for checking the ledger against itself).
pub fn live_total(conn: &mut DbConnection, entitlement_id: i64) -> DbResult<i64> {
    // Summed here rather than with SQL SUM, whose result type differs between the engines.
    let quantities: Vec<i64> = allocations::table
        .filter(allocations::entitlement_id.eq(entitlement_id))
        .filter(allocations::status.eq("live"))
        .select(allocations::quantity)
        .load(conn)?;
    quantities
        .iter()
        .try_fold(0i64, |total, quantity| total.checked_add(*quantity))
        .ok_or_else(|| DbError::Internal(format!("live seats of entitlement {entitlement_id} overflow")))
}
