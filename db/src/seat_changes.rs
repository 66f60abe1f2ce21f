//! Seat changes from a spreadsheet: an organisation claims and gives back seats on many national
//! lines from one CSV file (`entitlement_id`, `change` = `claim` or `release`, `quantity`, and an
//! optional `reference`), all or nothing.
//!
//! Every row goes through the same ledger rules as a single claim or release (eligibility, the
//! line's dates and cap, the organisation's cap, its row locks), each in a savepoint of one
//! transaction so that a refused row is reported and the others still tried: the report names
//! every row's outcome, not only the first failure. If any row is refused, nothing is applied.
//! A dry run is the same transaction rolled back, so what it reports is what the file would do
//! against the data as it is now.
//!
//! A release gives back seats of the organisation's live allocations on the line, newest first,
//! splitting the last one it touches. A line that requires approval cannot be claimed from a
//! file: each such claim is a seat request, made singly.

use chrono::NaiveDate;
use diesel::prelude::*;
use serde::Serialize;

use crate::audit::{Actor, Audited, Change};
use crate::connection::{Database, DbConnection};
use crate::error::{DbError, DbResult};
use crate::ledger::{self, Claim};
use crate::schema::{allocations, entitlements};

/// The most rows one file may hold.
pub const MAX_ROWS: usize = 10_000;
/// The most seats one row may claim or release: as many as a single claim.
pub const MAX_QUANTITY: i64 = ledger::MAX_SEATS_PER_CLAIM;

/// What a row asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SeatChangeKind {
    Claim,
    Release,
}

/// What became of a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SeatChangeOutcome {
    /// Claimed (or, in a dry run, would be).
    Claimed,
    /// Given back (or, in a dry run, would be).
    Released,
    /// Refused: `reason` says why; nothing in the file is applied.
    Refused,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SeatChangeRow {
    /// The row's line in the file (the header is line 1).
    pub line: u64,
    pub entitlement_id: Option<i64>,
    pub change: Option<SeatChangeKind>,
    pub quantity: Option<i64>,
    pub outcome: SeatChangeOutcome,
    /// The allocations the row made or changed.
    pub allocation_ids: Vec<i64>,
    /// Seats left on the line after the row (none when the line has no cap).
    pub seats_remaining: Option<i64>,
    pub reason: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SeatChangeReport {
    pub organisation_code: String,
    /// Nothing was written: the report says what the file would do.
    pub dry_run: bool,
    /// Every row was applied (never on a dry run, nor when a row is refused).
    pub applied: bool,
    /// Seats claimed and released by the rows that were (or would be) accepted.
    pub seats_claimed: i64,
    pub seats_released: i64,
    pub rows_refused: i64,
    pub rows: Vec<SeatChangeRow>,
}

/// A row as read from the file, before the ledger sees it.
struct Requested {
    line: u64,
    entitlement_id: i64,
    change: SeatChangeKind,
    quantity: i64,
    reference: Option<String>,
}

/// Reads the file: a header naming `entitlement_id`, `change` and `quantity` (and optionally
/// `reference`), in any order and case. A row that cannot be read is refused with its reason.
fn read_rows(file: &[u8]) -> DbResult<Vec<Result<Requested, SeatChangeRow>>> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).trim(csv::Trim::All).from_reader(file);
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| DbError::Invalid(format!("the file's header could not be read: {e}")))?
        .iter()
        .map(|name| name.trim_start_matches('\u{feff}').to_ascii_lowercase())
        .collect();
    let column = |name: &str| header.iter().position(|found| found == name);
    let (Some(line_column), Some(change_column), Some(quantity_column)) =
        (column("entitlement_id"), column("change"), column("quantity"))
    else {
        return Err(DbError::Invalid(
            "the header must name entitlement_id, change and quantity (and may name reference)".into(),
        ));
    };
    let reference_column = column("reference");
    let mut rows = Vec::new();
    for (index, record) in reader.records().enumerate() {
        let line = index as u64 + 2;
        if rows.len() == MAX_ROWS {
            return Err(DbError::Invalid(format!("a file may hold at most {MAX_ROWS} rows")));
        }
        let record = record.map_err(|e| DbError::Invalid(format!("line {line} could not be read: {e}")))?;
        let cell = |index: usize| record.get(index).unwrap_or("");
        let entitlement_id = cell(line_column).parse::<i64>().ok().filter(|id| *id > 0);
        let change = match cell(change_column).to_ascii_lowercase().as_str() {
            "claim" => Some(SeatChangeKind::Claim),
            "release" => Some(SeatChangeKind::Release),
            _ => None,
        };
        let quantity = cell(quantity_column).parse::<i64>().ok().filter(|q| (1..=MAX_QUANTITY).contains(q));
        let reference = reference_column.map(cell).filter(|text| !text.is_empty()).map(str::to_owned);
        let reason = match (entitlement_id, change, quantity) {
            (None, _, _) => Some(format!("entitlement_id {:?} is not a line's id", cell(line_column))),
            (_, None, _) => Some(format!("change {:?} is neither claim nor release", cell(change_column))),
            (_, _, None) => Some(format!(
                "quantity {:?} is not a whole number from 1 to {MAX_QUANTITY}",
                cell(quantity_column)
            )),
            _ if reference.as_ref().is_some_and(|text| text.chars().count() > 200) => {
                Some("reference is longer than 200 characters".into())
            }
            _ => None,
        };
        rows.push(match (reason, entitlement_id, change, quantity) {
            (None, Some(entitlement_id), Some(change), Some(quantity)) => {
                Ok(Requested { line, entitlement_id, change, quantity, reference })
            }
            (reason, ..) => Err(SeatChangeRow {
                line,
                entitlement_id,
                change,
                quantity,
                outcome: SeatChangeOutcome::Refused,
                allocation_ids: Vec::new(),
                seats_remaining: None,
                reason,
            }),
        });
    }
    if rows.is_empty() {
        return Err(DbError::Invalid("the file has no rows".into()));
    }
    Ok(rows)
}

/// Gives back `quantity` seats of the organisation's live allocations on the line, newest first.
fn release_from_line(
    conn: &mut DbConnection,
    organisation: &str,
    entitlement_id: i64,
    quantity: i64,
) -> DbResult<(Vec<i64>, Vec<Change>)> {
    let held: Vec<(i64, i64)> = allocations::table
        .filter(allocations::organisation_code.eq(organisation))
        .filter(allocations::entitlement_id.eq(entitlement_id))
        .filter(allocations::status.eq("live"))
        .order(allocations::id.desc())
        .select((allocations::id, allocations::quantity))
        .load(conn)?;
    let total = held.iter().fold(0i64, |sum, (_, seats)| sum.saturating_add(*seats));
    if total < quantity {
        return Err(DbError::Invalid(format!(
            "{organisation} holds {total} seats on line {entitlement_id}, fewer than the {quantity} to release"
        )));
    }
    let (mut left, mut ids, mut changes) = (quantity, Vec::new(), Vec::new());
    for (id, seats) in held {
        if left == 0 {
            break;
        }
        let given = seats.min(left);
        let (_, change) = ledger::release_in(conn, id, Some(given))?;
        ids.push(id);
        changes.push(change);
        left -= given;
    }
    Ok((ids, changes))
}

/// Seats left on a line, if it has a cap.
fn seats_remaining(conn: &mut DbConnection, entitlement_id: i64) -> DbResult<Option<i64>> {
    let (cap, allocated): (Option<i64>, i64) = entitlements::table
        .find(entitlement_id)
        .select((entitlements::seat_cap, entitlements::seats_allocated))
        .first(conn)?;
    Ok(cap.map(|cap| cap.saturating_sub(allocated).max(0)))
}

/// One row through the ledger, in a savepoint: refused rows leave nothing behind.
fn apply_row(
    conn: &mut DbConnection,
    actor: &Actor,
    organisation: &str,
    row: &Requested,
    on: NaiveDate,
) -> DbResult<(Vec<i64>, Vec<Change>)> {
    conn.transaction(|conn| match row.change {
        SeatChangeKind::Claim => {
            let line = crate::agreements::get_entitlement(conn, row.entitlement_id)?;
            if line.requires_approval {
                return Err(DbError::Conflict(format!(
                    "line {} requires approval: request its seats singly",
                    row.entitlement_id
                )));
            }
            let claim = Claim {
                organisation: organisation.to_owned(),
                quantity: row.quantity,
                reference: row.reference.clone(),
            };
            let (allocation, change) = ledger::claim_in(conn, actor, row.entitlement_id, &claim, on)?;
            Ok((vec![allocation.id], vec![change]))
        }
        SeatChangeKind::Release => release_from_line(conn, organisation, row.entitlement_id, row.quantity),
    })
}

/// Every row of the file, in order, inside the caller's transaction: the report, and the audit
/// events of the rows accepted.
fn apply_rows(
    conn: &mut DbConnection,
    actor: &Actor,
    organisation: &str,
    file: &[u8],
    on: NaiveDate,
    dry_run: bool,
) -> DbResult<(SeatChangeReport, Vec<Change>)> {
    crate::organisations::get(conn, organisation)?;
    let mut report = SeatChangeReport {
        organisation_code: organisation.to_owned(),
        dry_run,
        applied: false,
        seats_claimed: 0,
        seats_released: 0,
        rows_refused: 0,
        rows: Vec::new(),
    };
    let mut changes = Vec::new();
    for row in read_rows(file)? {
        let requested = match row {
            Ok(requested) => requested,
            Err(refused) => {
                report.rows_refused += 1;
                report.rows.push(refused);
                continue;
            }
        };
        let mut reported = SeatChangeRow {
            line: requested.line,
            entitlement_id: Some(requested.entitlement_id),
            change: Some(requested.change),
            quantity: Some(requested.quantity),
            outcome: SeatChangeOutcome::Refused,
            allocation_ids: Vec::new(),
            seats_remaining: None,
            reason: None,
        };
        match apply_row(conn, actor, organisation, &requested, on) {
            Ok((ids, row_changes)) => {
                reported.allocation_ids = ids;
                reported.seats_remaining = seats_remaining(conn, requested.entitlement_id)?;
                match requested.change {
                    SeatChangeKind::Claim => {
                        reported.outcome = SeatChangeOutcome::Claimed;
                        report.seats_claimed = report.seats_claimed.saturating_add(requested.quantity);
                    }
                    SeatChangeKind::Release => {
                        reported.outcome = SeatChangeOutcome::Released;
                        report.seats_released = report.seats_released.saturating_add(requested.quantity);
                    }
                }
                changes.extend(row_changes);
            }
            // The database failing is not the row's fault: the whole file stops.
            Err(
                error @ (DbError::Unavailable(_)
                | DbError::Internal(_)
                | DbError::Migration(_)
                | DbError::RolledBack),
            ) => {
                return Err(error);
            }
            Err(refused) => {
                reported.reason = Some(match refused {
                    DbError::NotFound(what) => format!("{what} {} not found", requested.entitlement_id),
                    other => other.to_string(),
                });
                report.rows_refused += 1;
            }
        }
        report.rows.push(reported);
    }
    Ok((report, changes))
}

/// What a file of seat changes would do, written nowhere: the rows go through the ledger in a
/// transaction that is rolled back.
pub fn rehearse(
    db: &Database,
    actor: &Actor,
    organisation: &str,
    file: &[u8],
    on: NaiveDate,
) -> DbResult<SeatChangeReport> {
    let organisation = organisation.to_uppercase();
    db.rehearse(|conn| Ok(apply_rows(conn, actor, &organisation, file, on, true)?.0))
}

/// Applies a file of seat changes: every row, audited, or, if any row is refused, none (the
/// error names the refused lines).
pub fn apply(
    db: &Database,
    actor: &Actor,
    organisation: &str,
    file: &[u8],
    on: NaiveDate,
) -> DbResult<SeatChangeReport> {
    let organisation = organisation.to_uppercase();
    db.write(actor, |conn| {
        let (mut report, changes) = apply_rows(conn, actor, &organisation, file, on, false)?;
        if report.rows_refused > 0 {
            let refused: Vec<String> = report
                .rows
                .iter()
                .filter(|row| row.outcome == SeatChangeOutcome::Refused)
                .take(20)
                .map(|row| format!("line {}: {}", row.line, row.reason.as_deref().unwrap_or("refused")))
                .collect();
            return Err(DbError::Invalid(format!(
                "{} of {} rows refused, so none was applied (a dry run reports every row): {}",
                report.rows_refused,
                report.rows.len(),
                refused.join("; ")
            )));
        }
        report.applied = true;
        Ok(Audited::many(report, changes))
    })
}
