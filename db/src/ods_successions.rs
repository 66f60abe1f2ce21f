//! Successions that ODS publishes (`succ.csv`), held for an admin. An import proposes each one
//! whose predecessor and successor the catalogue knows; confirming one runs the catalogue's own
//! succession ([`crate::ledger::succeed_within`]: the predecessor closes, its live allocations
//! and open obligations move to the successor) in the same transaction as the decision, so a
//! succession the ledger refuses leaves the proposal open. Rejecting one changes nothing else.
//!
//! Nothing is proposed twice: a pair once proposed stays recorded whatever was decided, so
//! importing the same file again does not bring back a rejected succession. A closed
//! organisation that ODS gives no successor is listed ([`closed_without_successor`]), never
//! deleted: its code stays known, so it is never reused.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use serde::Serialize;

use crate::audit::{Actor, Audited, Change, now};
use crate::connection::{Database, DbConnection};
use crate::error::{DbError, DbResult};
use crate::ledger;
use crate::organisations::{self, Organisation};
use crate::page::{Page, PageRequest};
use crate::schema::{ods_successions as table, organisations as orgs};
pub use crate::vocabulary::SuccessionStatus;

/// One succession ODS published, and the admin's decision on it.
#[derive(Clone, Debug, Serialize, Queryable, Selectable, PartialEq)]
#[diesel(table_name = table)]
pub struct OdsSuccession {
    pub id: i64,
    pub predecessor_code: String,
    pub successor_code: String,
    /// ODS's reason code (`F`, `O` or `R`), as published.
    pub reason: Option<String>,
    /// The legal start of the succession in ODS.
    pub effective_on: NaiveDate,
    pub status: String,
    #[serde(serialize_with = "crate::time::utc")]
    pub created_at: NaiveDateTime,
    #[serde(serialize_with = "crate::time::utc_option")]
    pub decided_at: Option<NaiveDateTime>,
    /// Who decided (the actor's label).
    pub decided_by: Option<String>,
}

/// Every (predecessor, successor) pair ever proposed, whatever was decided.
pub(crate) fn proposed_pairs(conn: &mut DbConnection) -> DbResult<Vec<(String, String)>> {
    Ok(table::table.select((table::predecessor_code, table::successor_code)).load(conn)?)
}

/// Records a proposal (inside the import's transaction).
pub(crate) fn propose(
    conn: &mut DbConnection,
    predecessor: &str,
    successor: &str,
    reason: Option<&str>,
    effective_on: NaiveDate,
) -> DbResult<OdsSuccession> {
    let id: i64 = diesel::insert_into(table::table)
        .values((
            table::predecessor_code.eq(predecessor),
            table::successor_code.eq(successor),
            table::reason.eq(reason),
            table::effective_on.eq(effective_on),
            table::status.eq(SuccessionStatus::Proposed),
            table::created_at.eq(now()),
        ))
        .returning(table::id)
        .get_result(conn)?;
    get(conn, id)
}

pub fn get(conn: &mut DbConnection, id: i64) -> DbResult<OdsSuccession> {
    table::table
        .find(id)
        .select(OdsSuccession::as_select())
        .first(conn)
        .optional()?
        .ok_or(DbError::NotFound("ODS succession"))
}

/// Successions by id, those of one status only when asked.
pub fn list(
    conn: &mut DbConnection,
    status: Option<SuccessionStatus>,
    page: &PageRequest,
) -> DbResult<Page<OdsSuccession>> {
    let mut query = table::table.select(OdsSuccession::as_select()).order(table::id).into_boxed();
    if let Some(status) = status {
        query = query.filter(table::status.eq(status));
    }
    if let Some(after) = page.after_id()? {
        query = query.filter(table::id.gt(after));
    }
    let limit = page.limit();
    Ok(Page::from_rows(query.limit(limit + 1).load(conn)?, limit, |s| s.id.to_string()))
}

/// Closed organisations that ODS owns with no successor recorded and none proposed or confirmed:
/// the closures a person should look at (a rejected proposal leaves one here). By code.
pub fn closed_without_successor(conn: &mut DbConnection, page: &PageRequest) -> DbResult<Page<Organisation>> {
    let pending =
        table::table.filter(table::status.ne(SuccessionStatus::Rejected)).select(table::predecessor_code);
    let mut query = orgs::table
        .filter(orgs::closed_on.is_not_null())
        .filter(orgs::ods_file.is_not_null())
        .filter(orgs::successor_code.is_null())
        .filter(orgs::code.ne_all(pending))
        .select(orgs::code)
        .order(orgs::code)
        .into_boxed();
    if let Some(after) = &page.cursor {
        query = query.filter(orgs::code.gt(after.clone()));
    }
    let limit = page.limit();
    let codes: Vec<String> = query.limit(limit + 1).load(conn)?;
    let organisations = organisations::by_codes(conn, &codes)?;
    Ok(Page::from_rows(organisations, limit, |o| o.code.clone()))
}

/// An admin's decision. Confirming runs the succession (the predecessor closes, keeping the close
/// date ODS gave it, or else the day before the succession's effective date) and records the
/// decision with it; a succession the ledger refuses (the predecessor already succeeded, the
/// successor closed) leaves the proposal as it was. Either decision is final (409 after).
pub fn decide(db: &Database, actor: &Actor, id: i64, confirm: bool) -> DbResult<OdsSuccession> {
    db.write(actor, |conn| {
        let proposal = get(conn, id)?;
        let status = if confirm { SuccessionStatus::Confirmed } else { SuccessionStatus::Rejected };
        // Decided only if still proposed: of two decisions at once, one finds it taken.
        let decided =
            diesel::update(table::table.find(id).filter(table::status.eq(SuccessionStatus::Proposed)))
                .set((
                    table::status.eq(status),
                    table::decided_at.eq(now()),
                    table::decided_by.eq(&actor.label),
                ))
                .execute(conn)?;
        if decided == 0 {
            return Err(DbError::Conflict(format!("ODS succession {id} was already {}", proposal.status)));
        }
        let mut changes = Vec::new();
        if confirm {
            let closes_on = proposal.effective_on.pred_opt().unwrap_or(proposal.effective_on);
            let (_, moved) = ledger::succeed_within(
                conn,
                actor,
                &proposal.predecessor_code,
                &proposal.successor_code,
                closes_on,
            )?;
            changes.extend(moved);
        }
        let after = get(conn, id)?;
        let action = if confirm { "ods_succession.confirm" } else { "ods_succession.reject" };
        changes.insert(
            0,
            Change::new(action, "ods_succession", id)
                .organisation(Some(&proposal.predecessor_code))
                .before(&proposal)
                .after(&after),
        );
        Ok(Audited::many(after, changes))
    })
}
