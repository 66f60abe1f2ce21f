//! An integrated care board acting for the organisations it commissions for: those whose
//! `parent_code` (ODS's "high level health geography") is the ICB. Its officers may do so only
//! while the ICB has granted it (a row in `icb_acting_grants`); the grant is the ICB's to give,
//! so it is set by the ICB's own officers (or the national team), and every grant and revocation
//! is audited. What an officer may then reach is decided in one place in the API (the
//! organisation scope of the signed-in user); the acts themselves are audited with the acting
//! ICB beside the organisation (see [`crate::audit::Actor::acting_icb`]).

use std::collections::BTreeSet;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;

use crate::audit::{Actor, Audited, Change, now};
use crate::connection::{Database, DbConnection};
use crate::error::{DbError, DbResult};
use crate::organisations;
use crate::schema::{icb_acting_grants as grants, organisations as orgs};
use crate::vocabulary::OrganisationKind;

/// A grant in force.
#[derive(Clone, Debug, Serialize, Queryable, Selectable, PartialEq)]
#[diesel(table_name = grants)]
pub struct IcbGrant {
    pub icb_code: String,
    /// Who granted it (the actor's label).
    pub granted_by: String,
    #[serde(serialize_with = "crate::time::utc")]
    pub granted_at: NaiveDateTime,
}

pub fn grant_of(conn: &mut DbConnection, icb: &str) -> DbResult<Option<IcbGrant>> {
    Ok(grants::table.find(icb.to_uppercase()).select(IcbGrant::as_select()).first(conn).optional()?)
}

/// The ICBs that have granted (for the read model: an officer of any other organisation needs
/// no database read to be told it acts for its own organisation only).
pub fn granted_icbs(conn: &mut DbConnection) -> DbResult<Vec<String>> {
    Ok(grants::table.select(grants::icb_code).order(grants::icb_code).load(conn)?)
}

/// The organisations an officer of `icb` may act for besides the ICB itself: none unless the ICB
/// has granted it, else every organisation ODS gives it as parent (closed ones too: their history
/// is readable, and the ledger refuses new claims for them).
pub fn commissioned_if_granted(conn: &mut DbConnection, icb: &str) -> DbResult<Option<BTreeSet<String>>> {
    let icb = icb.to_uppercase();
    if grant_of(conn, &icb)?.is_none() {
        return Ok(None);
    }
    let codes: Vec<String> = orgs::table
        .filter(orgs::parent_code.eq(&icb))
        .filter(orgs::code.ne(&icb))
        .select(orgs::code)
        .load(conn)?;
    Ok(Some(codes.into_iter().collect()))
}

/// Grants or revokes. Only an open ICB grants (422 otherwise); granting what is granted, or
/// revoking what is not, changes nothing and records nothing.
pub fn set(db: &Database, actor: &Actor, icb: &str, granted: bool) -> DbResult<Option<IcbGrant>> {
    db.write(actor, |conn| {
        let organisation = organisations::get(conn, icb)?;
        if organisation.kind != OrganisationKind::Icb {
            return Err(DbError::Invalid(format!(
                "{} is not an integrated care board: only an ICB grants its officers to act for the \
                 organisations it commissions for",
                organisation.code
            )));
        }
        if organisation.closed {
            return Err(DbError::Invalid(format!("{} has closed", organisation.code)));
        }
        let before = grant_of(conn, &organisation.code)?;
        let change = match (granted, &before) {
            (true, Some(_)) | (false, None) => return Ok(Audited::unchanged(before)),
            (true, None) => {
                diesel::insert_into(grants::table)
                    .values((
                        grants::icb_code.eq(&organisation.code),
                        grants::granted_by.eq(&actor.label),
                        grants::granted_at.eq(now()),
                    ))
                    .execute(conn)?;
                Change::new("icb_grant.grant", "icb_grant", &organisation.code)
            }
            (false, Some(_)) => {
                diesel::delete(grants::table.find(&organisation.code)).execute(conn)?;
                Change::new("icb_grant.revoke", "icb_grant", &organisation.code)
            }
        };
        let after = grant_of(conn, &organisation.code)?;
        let change = change.organisation(Some(&organisation.code)).before(&before).after(&after);
        Ok(Audited::one(after, change))
    })
}
