//! Lifecycle risk: who holds software that is unsupported (or soon will be) at a date, and the
//! risk acceptances organisations record for unsupported products they cannot yet replace
//! (typically medical devices), with compensating controls and an expiry.

use std::collections::BTreeMap;

use chrono::{Months, NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use serde::Serialize;

use crate::audit::{Actor, Audited, Change, now};
use crate::connection::{BINDS_PER_QUERY, Database, DbConnection};
use crate::error::{DbError, DbResult};
use crate::organisations;
use crate::products::{self, support_status};
use crate::schema::{
    allocations, entitlements, organisations as orgs, products as products_table, purchases, risk_acceptances,
};
use crate::vocabulary::SupportStatus;

#[derive(Clone, Debug, Serialize, Queryable, Selectable, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[diesel(table_name = risk_acceptances)]
pub struct RiskAcceptance {
    pub id: i64,
    pub organisation_code: String,
    pub product_id: i64,
    pub compensating_controls: String,
    /// Reference of the MDS2 form or other evidence.
    pub mds2_reference: Option<String>,
    pub expires_on: NaiveDate,
    pub created_by: Option<i64>,
    #[serde(serialize_with = "crate::time::utc")]
    pub created_at: NaiveDateTime,
}

pub struct NewRiskAcceptance {
    pub organisation_code: String,
    pub product_id: i64,
    pub compensating_controls: String,
    pub mds2_reference: Option<String>,
    pub expires_on: NaiveDate,
}

pub fn accept(
    db: &Database,
    actor: &Actor,
    new: NewRiskAcceptance,
    today: NaiveDate,
) -> DbResult<RiskAcceptance> {
    if new.compensating_controls.trim().is_empty() {
        return Err(DbError::Invalid("describe the compensating controls".into()));
    }
    if new.expires_on <= today {
        return Err(DbError::Invalid("expires_on must be in the future".into()));
    }
    db.write(actor, |conn| {
        let organisation = organisations::get(conn, &new.organisation_code)?;
        products::get(conn, new.product_id, today)
            .map_err(|_| DbError::Invalid(format!("product {} does not exist", new.product_id)))?;
        let id: i64 = diesel::insert_into(risk_acceptances::table)
            .values((
                risk_acceptances::organisation_code.eq(&organisation.code),
                risk_acceptances::product_id.eq(new.product_id),
                risk_acceptances::compensating_controls.eq(new.compensating_controls.trim()),
                risk_acceptances::mds2_reference.eq(&new.mds2_reference),
                risk_acceptances::expires_on.eq(new.expires_on),
                risk_acceptances::created_by.eq(actor.user_id),
                risk_acceptances::created_at.eq(now()),
            ))
            .returning(risk_acceptances::id)
            .get_result(conn)?;
        let acceptance = risk_acceptances::table.find(id).select(RiskAcceptance::as_select()).first(conn)?;
        let change = Change::new("risk_acceptance.create", "risk_acceptance", id)
            .organisation(Some(&organisation.code))
            .after(&acceptance);
        Ok(Audited::one(acceptance, change))
    })
}

pub fn acceptances_of(conn: &mut DbConnection, code: &str) -> DbResult<Vec<RiskAcceptance>> {
    Ok(risk_acceptances::table
        .filter(risk_acceptances::organisation_code.eq(code.to_uppercase()))
        .order(risk_acceptances::id)
        .select(RiskAcceptance::as_select())
        .load(conn)?)
}

#[derive(Clone, Debug, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AcceptanceState {
    pub risk_acceptance_id: i64,
    pub expires_on: NaiveDate,
    /// The acceptance had expired by the report date.
    pub expired: bool,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RiskyHolding {
    pub organisation_code: String,
    pub organisation_name: String,
    pub region: Option<String>,
    pub product_id: i64,
    pub product: String,
    pub support_status: SupportStatus,
    pub support_ends_on: Option<NaiveDate>,
    /// Seats held through allocations on the date.
    pub seats: i64,
    /// Units bought locally by the date.
    pub purchased: i64,
    /// The latest risk acceptance for this organisation and product, if any.
    pub acceptance: Option<AcceptanceState>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnsupportedReport {
    pub on: NaiveDate,
    /// Products whose support ends within this many months also count (0: only unsupported).
    pub within_months: u32,
    /// Holdings with no acceptance in force (expired acceptances are flagged in each).
    pub at_risk: Vec<RiskyHolding>,
    /// Holdings covered by an acceptance in force on the date.
    pub accepted: Vec<RiskyHolding>,
    pub organisations_at_risk: usize,
    pub expired_acceptances: usize,
}

/// Who held unsupported software on `on` (or software whose support ends within `within_months`):
/// every organisation, or only `organisation`.
/// Holdings on a past date: allocations made by then and not yet released or transferred (the
/// time of a release is its last update), and local purchases made by then.
pub fn unsupported_report(
    conn: &mut DbConnection,
    on: NaiveDate,
    within_months: u32,
    organisation: Option<&str>,
) -> DbResult<UnsupportedReport> {
    let horizon = on.checked_add_months(Months::new(within_months)).unwrap_or(on);
    let end_of_day = on.and_hms_opt(23, 59, 59).unwrap_or_default();
    type ProductRow = (i64, String, String, String, Option<NaiveDate>, Option<NaiveDate>);
    let candidates: Vec<ProductRow> = products_table::table
        .select((
            products_table::id,
            products_table::name,
            products_table::edition,
            products_table::version,
            products_table::mainstream_support_ends_on,
            products_table::extended_support_ends_on,
        ))
        .load(conn)?;
    let mut risky: BTreeMap<i64, (String, SupportStatus, Option<NaiveDate>)> = BTreeMap::new();
    for (id, name, edition, version, mainstream, extended) in candidates {
        let status = support_status(mainstream, extended, on);
        let ends = extended.or(mainstream);
        if status == SupportStatus::Unsupported
            || (within_months > 0 && ends.is_some_and(|end| end <= horizon))
        {
            let label = products::label(&name, &edition, &version);
            risky.insert(id, (label, status, ends));
        }
    }
    let ids: Vec<i64> = risky.keys().copied().collect();
    let superseded = crate::purchases::superseded_ids(conn)?;
    let mut holdings: BTreeMap<(String, i64), (i64, i64)> = BTreeMap::new();
    // The latest acceptance of each holding: the one that runs longest (then the last recorded).
    let mut latest: BTreeMap<(String, i64), (NaiveDate, i64)> = BTreeMap::new();
    for ids in ids.chunks(BINDS_PER_QUERY) {
        let mut held = allocations::table
            .inner_join(entitlements::table)
            .filter(entitlements::product_id.eq_any(ids))
            .filter(allocations::created_at.le(end_of_day))
            .filter(allocations::status.eq("live").or(allocations::updated_at.gt(end_of_day)))
            .select((allocations::organisation_code, entitlements::product_id, allocations::quantity))
            .into_boxed();
        let mut bought = purchases::table
            .filter(purchases::product_id.eq_any(ids))
            .filter(purchases::purchased_on.le(on))
            .filter(purchases::id.ne_all(&superseded))
            .select((purchases::organisation_code, purchases::product_id, purchases::quantity))
            .into_boxed();
        let mut accepted = risk_acceptances::table
            .filter(risk_acceptances::product_id.eq_any(ids))
            .filter(risk_acceptances::created_at.le(end_of_day))
            .select((
                risk_acceptances::organisation_code,
                risk_acceptances::product_id,
                risk_acceptances::id,
                risk_acceptances::expires_on,
            ))
            .into_boxed();
        if let Some(code) = organisation {
            held = held.filter(allocations::organisation_code.eq(code.to_owned()));
            bought = bought.filter(purchases::organisation_code.eq(code.to_owned()));
            accepted = accepted.filter(risk_acceptances::organisation_code.eq(code.to_owned()));
        }
        for (code, product, quantity) in held.load::<(String, i64, i64)>(conn)? {
            holdings.entry((code, product)).or_default().0 += quantity;
        }
        for (code, product, quantity) in bought.load::<(String, Option<i64>, i64)>(conn)? {
            if let Some(product) = product {
                holdings.entry((code, product)).or_default().1 += quantity;
            }
        }
        for (code, product_id, id, expires_on) in accepted.load::<(String, i64, i64, NaiveDate)>(conn)? {
            let entry = latest.entry((code, product_id)).or_insert((expires_on, id));
            *entry = (*entry).max((expires_on, id));
        }
    }
    let mut report = UnsupportedReport {
        on,
        within_months,
        at_risk: Vec::new(),
        accepted: Vec::new(),
        organisations_at_risk: 0,
        expired_acceptances: 0,
    };
    // Names for every holding at once: a national report has a holding per organisation and
    // product, far too many for a query each.
    let codes: Vec<&str> = {
        let mut codes: Vec<&str> = holdings.keys().map(|(code, _)| code.as_str()).collect();
        codes.dedup();
        codes
    };
    let mut names: BTreeMap<String, (String, Option<String>)> = BTreeMap::new();
    for chunk in codes.chunks(BINDS_PER_QUERY) {
        let rows: Vec<(String, String, Option<String>)> = orgs::table
            .filter(orgs::code.eq_any(chunk))
            .select((orgs::code, orgs::name, orgs::region))
            .load(conn)?;
        names.extend(rows.into_iter().map(|(code, name, region)| (code, (name, region))));
    }
    for ((code, product_id), (seats, purchased)) in holdings {
        let Some((product, support_status, support_ends_on)) = risky.get(&product_id).cloned() else {
            continue;
        };
        let (organisation_name, region) =
            names.get(&code).cloned().ok_or(DbError::NotFound("organisation"))?;
        let acceptance = latest.get(&(code.clone(), product_id)).map(|&(expires_on, id)| AcceptanceState {
            risk_acceptance_id: id,
            expires_on,
            expired: expires_on < on,
        });
        let holding = RiskyHolding {
            organisation_code: code,
            organisation_name,
            region,
            product_id,
            product,
            support_status,
            support_ends_on,
            seats,
            purchased,
            acceptance,
        };
        match &holding.acceptance {
            Some(state) if !state.expired => report.accepted.push(holding),
            state => {
                if state.as_ref().is_some_and(|s| s.expired) {
                    report.expired_acceptances += 1;
                }
                report.at_risk.push(holding);
            }
        }
    }
    let mut at_risk_codes: Vec<&str> = report.at_risk.iter().map(|h| h.organisation_code.as_str()).collect();
    at_risk_codes.dedup();
    report.organisations_at_risk = at_risk_codes.len();
    Ok(report)
}
