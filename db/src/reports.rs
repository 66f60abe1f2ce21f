//! Reports for the national team: seat utilisation and open obligations.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use diesel::prelude::*;
use serde::Serialize;

use crate::agreements::{self, Agreement};
use crate::connection::DbConnection;
use crate::coverage::agreement_in_force;
use crate::error::{DbError, DbResult};
use crate::page::{Page, PageRequest};
use crate::schema::{
    agreements as agreements_table, allocations, obligation_acceptances, obligations, organisations,
};
use crate::vocabulary::{OrganisationKind, Tier};

#[derive(Clone, Debug, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SeatsBy {
    /// An organisation kind or a region (`unknown` when none is recorded).
    pub key: String,
    pub seats: i64,
    pub organisations: i64,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EntitlementUtilisation {
    pub entitlement_id: i64,
    pub product: String,
    pub tier: Tier,
    pub seat_cap: Option<i64>,
    pub seats_allocated: i64,
    pub seats_remaining: Option<i64>,
    /// Seats beyond the cap, to be trued up.
    pub seats_over_cap: i64,
    pub by_kind: Vec<SeatsBy>,
    pub by_region: Vec<SeatsBy>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgreementUtilisation {
    pub agreement_id: i64,
    pub reference: String,
    pub title: String,
    pub in_force: bool,
    pub entitlements: Vec<EntitlementUtilisation>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UtilisationReport {
    pub on: NaiveDate,
    pub agreements: Vec<AgreementUtilisation>,
}

fn grouped(
    rows: &[(String, String, i64)],
    key: impl Fn(&(String, String, i64)) -> String,
) -> DbResult<Vec<SeatsBy>> {
    let mut groups: BTreeMap<String, (i64, std::collections::BTreeSet<&str>)> = BTreeMap::new();
    for row in rows {
        let entry = groups.entry(key(row)).or_default();
        // The ledger bounds a line's seats far inside i64; a sum past it means corrupt data.
        entry.0 =
            entry.0.checked_add(row.2).ok_or_else(|| DbError::Internal("seat total overflows".into()))?;
        entry.1.insert(row.0.as_str());
    }
    Ok(groups
        .into_iter()
        .map(|(key, (seats, orgs))| SeatsBy { key, seats, organisations: orgs.len() as i64 })
        .collect())
}

/// Utilisation per agreement and entitlement line; agreements not in force on `on` are left
/// out unless `include_ended`.
pub fn utilisation(
    conn: &mut DbConnection,
    agreement_id: Option<i64>,
    include_ended: bool,
    on: NaiveDate,
) -> DbResult<UtilisationReport> {
    let mut ids_query =
        agreements_table::table.select(agreements_table::id).order(agreements_table::id).into_boxed();
    if let Some(id) = agreement_id {
        ids_query = ids_query.filter(agreements_table::id.eq(id));
    }
    let ids: Vec<i64> = ids_query.load(conn)?;
    let mut report = Vec::new();
    for id in ids {
        let agreement: Agreement = agreements::get(conn, id)?;
        let in_force = agreement_in_force(&agreement, on);
        if !in_force && !include_ended && agreement_id.is_none() {
            continue;
        }
        let lines = agreements::entitlements_of(
            conn,
            id,
            &PageRequest { limit: Some(crate::page::MAX_LIMIT), cursor: None },
        )?;
        let mut entitlement_reports = Vec::new();
        for line in lines.items {
            // (organisation code, kind, region or "unknown", quantity) of every live allocation.
            let rows: Vec<(String, String, Option<String>, i64)> = allocations::table
                .inner_join(organisations::table)
                .filter(allocations::entitlement_id.eq(line.id))
                .filter(allocations::status.eq("live"))
                .select((
                    organisations::code,
                    organisations::kind,
                    organisations::region,
                    allocations::quantity,
                ))
                .load(conn)?;
            let by_kind_rows: Vec<(String, String, i64)> =
                rows.iter().map(|(c, k, _, q)| (c.clone(), k.clone(), *q)).collect();
            let by_region_rows: Vec<(String, String, i64)> = rows
                .iter()
                .map(|(c, _, r, q)| (c.clone(), r.clone().unwrap_or_else(|| "unknown".into()), *q))
                .collect();
            entitlement_reports.push(EntitlementUtilisation {
                entitlement_id: line.id,
                product: line.product,
                tier: line.tier,
                seat_cap: line.seat_cap,
                seats_allocated: line.seats_allocated,
                seats_remaining: line.seats_remaining,
                seats_over_cap: line.seats_over_cap,
                by_kind: grouped(&by_kind_rows, |r| {
                    OrganisationKind::parse(&r.1).map_or(r.1.clone(), |k| k.to_string())
                })?,
                by_region: grouped(&by_region_rows, |r| r.1.clone())?,
            });
        }
        report.push(AgreementUtilisation {
            agreement_id: agreement.id,
            reference: agreement.reference,
            title: agreement.title,
            in_force,
            entitlements: entitlement_reports,
        });
    }
    Ok(UtilisationReport { on, agreements: report })
}

#[derive(Clone, Debug, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OpenObligation {
    pub id: i64,
    pub organisation_code: String,
    pub entitlement_id: i64,
    pub obligation_id: i64,
    pub description: String,
    pub due_on: Option<NaiveDate>,
    /// The deadline has passed.
    pub overdue: bool,
}

/// Open obligations, overdue first, then by deadline (none last). The cursor is an offset.
pub fn open_obligations(
    conn: &mut DbConnection,
    organisation: Option<&str>,
    on: NaiveDate,
    page: &PageRequest,
) -> DbResult<Page<OpenObligation>> {
    let mut query = obligation_acceptances::table
        .inner_join(obligations::table)
        .filter(obligation_acceptances::status.eq("open"))
        .select((
            obligation_acceptances::id,
            obligation_acceptances::organisation_code,
            obligations::entitlement_id,
            obligations::id,
            obligations::description,
            obligation_acceptances::due_on,
        ))
        .into_boxed();
    if let Some(code) = organisation {
        query = query.filter(obligation_acceptances::organisation_code.eq(code.to_uppercase()));
    }
    let rows: Vec<(i64, String, i64, i64, String, Option<NaiveDate>)> = query.load(conn)?;
    let mut items: Vec<OpenObligation> = rows
        .into_iter()
        .map(|(id, organisation_code, entitlement_id, obligation_id, description, due_on)| OpenObligation {
            overdue: due_on.is_some_and(|due| due < on),
            id,
            organisation_code,
            entitlement_id,
            obligation_id,
            description,
            due_on,
        })
        .collect();
    items.sort_by_key(|o| (!o.overdue, o.due_on.is_none(), o.due_on, o.id));
    let offset = page.after_id()?.unwrap_or(0).max(0) as usize;
    let limit = page.limit() as usize;
    let rest: Vec<OpenObligation> = items.into_iter().skip(offset).take(limit + 1).collect();
    let next_offset = offset + limit;
    Ok(Page::from_rows(rest, limit as i64, |_| next_offset.to_string()))
}
