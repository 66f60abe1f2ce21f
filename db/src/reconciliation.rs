//! Reconciliation: what each organisation runs (its estate snapshots, `estates`) beside what it
//! holds (seats claimed on national lines, and local purchases), per organisation and product.
//!
//! The figures, and why:
//! - `running` is the larger of devices and users: a per-device line is measured in devices, a
//!   per-user one (Office 365, Microsoft 365) in users, and an export counts one or the other.
//!   Per source the releases and sites are added up; across sources the largest count is taken,
//!   as sources overlap (Defender and Intune both see a managed laptop).
//! - `held` is the live seats claimed on national lines of the product plus the quantities of
//!   the organisation's current local purchases of it (a superseded purchase no longer counts).
//! - Flags: `under_claimed` when it runs more than it holds and a national line it may use
//!   covers the product (claim the difference); `unlicensed` when it runs the product, holds
//!   none of it and no national line it may use covers it (a compliance risk to resolve);
//!   `unused` when it holds more than it runs (seats to release); `running_unsupported` when
//!   devices run a release past the security support its licence includes. Organisations with no
//!   snapshot are left out: the catalogue cannot say what they run, so it says nothing.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::NaiveDate;
use diesel::prelude::*;
use serde::Serialize;

use crate::agreements::{self, Agreement, Entitlement};
use crate::connection::DbConnection;
use crate::coverage::{AskingOrganisation, usable};
use crate::error::DbResult;
use crate::estates::{self, RunningTotals};
use crate::nhsmail;
use crate::organisations::{self, Organisation};
use crate::page::{Page, PageRequest};
use crate::releases;
use crate::schema::{allocations, entitlements, estate_snapshots, products, purchases};
use crate::vocabulary::{ReconciliationFlag, ReleaseStatus};

/// Which organisations a report covers: any combination narrows it.
#[derive(Clone, Debug, Default)]
pub struct ReconciliationFilter {
    pub organisation: Option<String>,
    /// NHS England region code (for example `Y63`).
    pub region: Option<String>,
    /// ODS code of the parent (the commissioning ICB).
    pub parent: Option<String>,
    /// Only rows with this flag.
    pub flag: Option<ReconciliationFlag>,
}

/// One organisation and product.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReconciliationRow {
    pub organisation_code: String,
    pub organisation_name: String,
    pub product_id: i64,
    pub product: String,
    /// Devices or users running it, whichever is larger (see the report's description).
    pub running: i64,
    pub running_devices: i64,
    pub running_users: i64,
    /// Devices on a release past the security support its licence includes.
    pub unsupported_devices: i64,
    /// Live seats claimed on national lines of the product.
    pub claimed: i64,
    /// Quantities of current local purchases of the product.
    pub purchased: i64,
    /// A national line the organisation may use covers the product on the date.
    pub licensed_nationally: bool,
    /// Running more than held: seats to claim or buy.
    pub shortfall: i64,
    /// Held more than running: seats to release.
    pub surplus: i64,
    pub flags: Vec<ReconciliationFlag>,
}

#[derive(Queryable)]
struct PurchaseRow {
    id: i64,
    organisation_code: String,
    product_id: Option<i64>,
    quantity: i64,
    supersedes_id: Option<i64>,
}

/// The report, by organisation code then product id, a page at a time (the cursor is the last
/// row's `CODE:PRODUCT`).
pub fn report(
    conn: &mut DbConnection,
    filter: &ReconciliationFilter,
    on: NaiveDate,
    page: &PageRequest,
) -> DbResult<Page<ReconciliationRow>> {
    let after = match page.cursor.as_deref() {
        None => None,
        Some(cursor) => {
            let (code, product) = cursor.split_once(':').ok_or(crate::DbError::InvalidCursor)?;
            Some((code.to_owned(), product.parse::<i64>().map_err(|_| crate::DbError::InvalidCursor)?))
        }
    };
    let limit = page.limit();
    let rows = rows(conn, filter, on, after, Some(limit as usize + 1))?;
    Ok(Page::from_rows(rows, limit, |row| format!("{}:{}", row.organisation_code, row.product_id)))
}

/// Every row of the report (its CSV export), in the same order.
pub fn all_rows(
    conn: &mut DbConnection,
    filter: &ReconciliationFilter,
    on: NaiveDate,
) -> DbResult<Vec<ReconciliationRow>> {
    rows(conn, filter, on, None, None)
}

/// The rows after `after` (organisation code, product id), at most `take` of them.
fn rows(
    conn: &mut DbConnection,
    filter: &ReconciliationFilter,
    on: NaiveDate,
    after: Option<(String, i64)>,
    take: Option<usize>,
) -> DbResult<Vec<ReconciliationRow>> {
    let organisations: HashMap<String, Organisation> = organisations::all(conn)?
        .into_iter()
        .filter(|o| filter.organisation.as_deref().is_none_or(|code| o.code.eq_ignore_ascii_case(code)))
        .filter(|o| filter.region.as_deref().is_none_or(|r| o.region_code.as_deref() == Some(r)))
        .filter(|o| filter.parent.as_deref().is_none_or(|p| o.parent_code.as_deref() == Some(p)))
        .map(|o| (o.code.clone(), o))
        .collect();

    // What each organisation runs (estates' rule: each source added up, then the largest).
    let with_estate: HashSet<String> = estate_snapshots::table
        .select(estate_snapshots::organisation_code)
        .distinct()
        .load::<String>(conn)?
        .into_iter()
        .filter(|code| organisations.contains_key(code))
        .collect();
    let release_status: HashMap<i64, ReleaseStatus> = releases::all(conn)?
        .into_values()
        .flatten()
        .map(|release| (release.id, release.status(on)))
        .collect();
    let past_support = |release: i64| {
        release_status.get(&release).is_some_and(|status| {
            matches!(status, ReleaseStatus::Unsupported | ReleaseStatus::ExtendedUpdatesOnly)
        })
    };
    let running: BTreeMap<(String, i64), RunningTotals> =
        estates::running_by_product(conn, None, None, past_support)?
            .into_iter()
            .filter(|((code, _), _)| with_estate.contains(code))
            .collect();

    // What each organisation holds: live national seats, and current local purchases.
    let mut claimed: BTreeMap<(String, i64), i64> = BTreeMap::new();
    let live: Vec<(String, i64, i64)> = allocations::table
        .inner_join(entitlements::table)
        .filter(allocations::status.eq("live"))
        .select((allocations::organisation_code, entitlements::product_id, allocations::quantity))
        .load(conn)?;
    for (code, product, quantity) in live {
        if with_estate.contains(&code) {
            let held = claimed.entry((code, product)).or_default();
            *held = held.saturating_add(quantity);
        }
    }
    let bought: Vec<PurchaseRow> = purchases::table
        .select((
            purchases::id,
            purchases::organisation_code,
            purchases::product_id,
            purchases::quantity,
            purchases::supersedes_id,
        ))
        .load(conn)?;
    let superseded: HashSet<i64> = bought.iter().filter_map(|p| p.supersedes_id).collect();
    let mut purchased: BTreeMap<(String, i64), i64> = BTreeMap::new();
    for PurchaseRow { id, organisation_code: code, product_id: product, quantity, .. } in bought {
        if let Some(product) = product
            && !superseded.contains(&id)
            && with_estate.contains(&code)
        {
            let held = purchased.entry((code, product)).or_default();
            *held = held.saturating_add(quantity);
        }
    }

    let mut keys: Vec<(String, i64)> =
        running.keys().chain(claimed.keys()).chain(purchased.keys()).cloned().collect();
    keys.sort_unstable();
    keys.dedup();
    // The national lines of every product involved, with their agreements (two reads).
    let mut product_ids: Vec<i64> = keys.iter().map(|(_, product)| *product).collect();
    product_ids.sort_unstable();
    product_ids.dedup();
    let lines = agreements::entitlements_for_products(conn, &product_ids)?;
    let mut agreement_ids: Vec<i64> = lines.iter().map(|l| l.agreement_id).collect();
    agreement_ids.sort_unstable();
    agreement_ids.dedup();
    let agreements_by_id: HashMap<i64, Agreement> =
        agreements::get_many(conn, &agreement_ids)?.into_iter().map(|a| (a.id, a)).collect();
    let mut lines_of: HashMap<i64, Vec<&Entitlement>> = HashMap::new();
    for line in &lines {
        lines_of.entry(line.product_id).or_default().push(line);
    }
    let names: HashMap<i64, String> = products::table
        .filter(products::id.eq_any(&product_ids))
        .select((products::id, products::name, products::edition))
        .load::<(i64, String, String)>(conn)?
        .into_iter()
        .map(|(id, name, edition)| (id, if edition.is_empty() { name } else { format!("{name} {edition}") }))
        .collect();

    let mut rows = Vec::new();
    let mut asking: HashMap<String, AskingOrganisation> = HashMap::new();
    for key in keys {
        if after.as_ref().is_some_and(|after| &key <= after) {
            continue;
        }
        let (code, product_id) = &key;
        let Some(organisation) = organisations.get(code) else { continue };
        let (devices, users, unsupported) =
            running.get(&key).map_or((0, 0, 0), |ran| (ran.devices, ran.users, ran.past_support));
        let claimed = claimed.get(&key).copied().unwrap_or(0);
        let purchased = purchased.get(&key).copied().unwrap_or(0);
        let held = claimed.saturating_add(purchased);
        let running_count = devices.max(users);
        let asking = match asking.get(code) {
            Some(found) => found.clone(),
            None => {
                let recorded = nhsmail::periods_of(conn, code)?;
                let made = AskingOrganisation::new(organisation, &recorded, on);
                asking.insert(code.clone(), made.clone());
                made
            }
        };
        let licensed_nationally = lines_of.get(product_id).is_some_and(|lines| {
            lines.iter().any(|line| {
                agreements_by_id.get(&line.agreement_id).is_some_and(|a| usable(&asking, a, line, on))
            })
        });
        let mut flags = Vec::new();
        if running_count > held && (held > 0 || licensed_nationally) {
            flags.push(ReconciliationFlag::UnderClaimed);
        }
        if running_count > 0 && held == 0 && !licensed_nationally {
            flags.push(ReconciliationFlag::Unlicensed);
        }
        if held > running_count {
            flags.push(ReconciliationFlag::Unused);
        }
        if unsupported > 0 {
            flags.push(ReconciliationFlag::RunningUnsupported);
        }
        if filter.flag.is_some_and(|wanted| !flags.contains(&wanted)) {
            continue;
        }
        rows.push(ReconciliationRow {
            organisation_code: code.clone(),
            organisation_name: organisation.name.clone(),
            product_id: *product_id,
            product: names.get(product_id).cloned().unwrap_or_default(),
            running: running_count,
            running_devices: devices,
            running_users: users,
            unsupported_devices: unsupported,
            claimed,
            purchased,
            licensed_nationally,
            shortfall: (running_count - held).max(0),
            surplus: (held - running_count).max(0),
            flags,
        });
        if take.is_some_and(|take| rows.len() >= take) {
            break;
        }
    }
    Ok(rows)
}
