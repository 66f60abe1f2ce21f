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
//!
//! A page is found by walking the organisations with a snapshot in code order from the cursor's,
//! a chunk at a time, and reading only those organisations' estates, seats, purchases and NHSmail
//! services (`organisation_code IN` the chunk), until the page is full. So a page costs the same
//! few queries whether the country has 25,000 organisations or 250,000; the first chunk is small
//! (a page of 50 rows is two or three organisations' products), and the chunks grow when a flag
//! filter skips most rows. The export streams the same walk ([`Walk`]) to the end. Measured with
//! `tests/bench/reconciliation.py` (release build, 2 shared cores): the national first page at
//! 10x (250,000 organisations, 25,000 with estates, 790,000 estate items) takes 6 ms on SQLite
//! and 18 ms on PostgreSQL, 12 and 35 times `/healthz`. Reading every organisation, allocation,
//! purchase and estate item of the country for every page, as it did before, took 0.5 s at 1x
//! and 8.7 s at 10x on PostgreSQL, with 1.2 GB of server memory, and failed at 10x on SQLite
//! (more product ids in one `IN` list than SQLite binds).

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::NaiveDate;
use diesel::dsl::{exists, not};
use diesel::prelude::*;
use serde::Serialize;

use crate::agreements::{self, Agreement, Entitlement};
use crate::connection::{BINDS_PER_QUERY, DbConnection};
use crate::coverage::{AskingOrganisation, usable};
use crate::error::DbResult;
use crate::estates;
use crate::nhsmail;
use crate::organisations;
use crate::page::{Page, PageRequest};
use crate::releases::Release;
use crate::schema::{
    allocations, entitlements, estate_items, estate_snapshots, organisations as orgs, products, purchases,
    releases,
};
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

diesel::alias! {
    const REPLACEMENTS: Alias<Replacements> = purchases as replacements;
}

/// Organisations in a page's first chunk: a page of 50 rows is two or three organisations'.
const FIRST_CHUNK: i64 = 8;
/// The most organisations in a chunk (their codes are bound in `IN` lists).
const LARGEST_CHUNK: i64 = 1024;

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
    let take = limit as usize + 1;
    let mut walk = Walk::starting(filter.clone(), on, after, FIRST_CHUNK);
    let mut rows = Vec::with_capacity(take);
    while let Some(chunk) = walk.next(conn)? {
        rows.extend(chunk.into_iter().take(take - rows.len()));
        if rows.len() == take {
            break;
        }
    }
    Ok(Page::from_rows(rows, limit, |row| format!("{}:{}", row.organisation_code, row.product_id)))
}

/// Every row of the report, in the same order (the export streams [`Walk`] instead).
pub fn all_rows(
    conn: &mut DbConnection,
    filter: &ReconciliationFilter,
    on: NaiveDate,
) -> DbResult<Vec<ReconciliationRow>> {
    let mut walk = Walk::new(filter.clone(), on);
    let mut rows = Vec::new();
    while let Some(chunk) = walk.next(conn)? {
        rows.extend(chunk);
    }
    Ok(rows)
}

/// The report's rows a chunk of organisations at a time, in order: the organisations with a
/// snapshot in code order, from the cursor's. The export sends each chunk as it is read, so that
/// what it holds follows a chunk, not the country (each chunk is read on its own connection).
pub struct Walk {
    filter: ReconciliationFilter,
    on: NaiveDate,
    /// Rows up to this key are left out (the cursor's organisation may have rows after it).
    after: Option<(String, i64)>,
    from: Option<Start>,
    chunk: i64,
    lines: NationalLines,
    finished: bool,
}

impl Walk {
    /// The whole report, in chunks of the largest size.
    pub fn new(filter: ReconciliationFilter, on: NaiveDate) -> Walk {
        Walk::starting(filter, on, None, LARGEST_CHUNK)
    }

    fn starting(
        filter: ReconciliationFilter,
        on: NaiveDate,
        after: Option<(String, i64)>,
        chunk: i64,
    ) -> Walk {
        let from = after.as_ref().map(|(code, _)| Start::Including(code.clone()));
        Walk { filter, on, after, from, chunk, lines: NationalLines::default(), finished: false }
    }

    /// The next chunk's rows (none, when the flag filter leaves none of them), or `None` once
    /// every organisation has been read. Chunks grow fourfold up to the largest.
    pub fn next(&mut self, conn: &mut DbConnection) -> DbResult<Option<Vec<ReconciliationRow>>> {
        if self.finished {
            return Ok(None);
        }
        let codes = with_estate(conn, &self.filter, self.from.as_ref(), self.chunk)?;
        let Some(last) = codes.last().cloned() else {
            self.finished = true;
            return Ok(None);
        };
        let mut rows = chunk_rows(conn, &codes, self.on, &mut self.lines)?;
        rows.retain(|row| {
            self.after
                .as_ref()
                .is_none_or(|(code, product)| (&row.organisation_code, &row.product_id) > (code, product))
                && self.filter.flag.is_none_or(|wanted| row.flags.contains(&wanted))
        });
        self.finished = (codes.len() as i64) < self.chunk;
        self.from = Some(Start::After(last));
        self.chunk = self.chunk.saturating_mul(4).min(LARGEST_CHUNK);
        Ok(Some(rows))
    }
}

/// Where a chunk of organisations starts.
enum Start {
    Including(String),
    After(String),
}

/// The codes of at most `chunk` organisations in the filter that have a snapshot, in code order
/// from `from` (the database's order, which must be the rows' order here: ODS codes are
/// upper-case letters and digits, which the C and English collations put in byte order; `risk`'s
/// pages rely on the same).
fn with_estate(
    conn: &mut DbConnection,
    filter: &ReconciliationFilter,
    from: Option<&Start>,
    chunk: i64,
) -> DbResult<Vec<String>> {
    let mut query = orgs::table
        .filter(exists(estate_snapshots::table.filter(estate_snapshots::organisation_code.eq(orgs::code))))
        .select(orgs::code)
        .order(orgs::code)
        .limit(chunk)
        .into_boxed();
    if let Some(code) = &filter.organisation {
        // Codes are stored in upper case (`vocabulary::is_ods_code`): any case is asked for.
        query = query.filter(orgs::code.eq(code.to_ascii_uppercase()));
    }
    if let Some(region) = &filter.region {
        query = query.filter(orgs::region_code.eq(region.clone()));
    }
    if let Some(parent) = &filter.parent {
        query = query.filter(orgs::parent_code.eq(parent.clone()));
    }
    match from {
        Some(Start::Including(code)) => query = query.filter(orgs::code.ge(code.clone())),
        Some(Start::After(code)) => query = query.filter(orgs::code.gt(code.clone())),
        None => {}
    }
    Ok(query.load(conn)?)
}

/// The national lines of products, with their agreements and the products' names, read as a
/// walk first meets each product (two or three reads a chunk, and none for products met before).
#[derive(Default)]
struct NationalLines {
    known: HashSet<i64>,
    lines_of: HashMap<i64, Vec<Entitlement>>,
    agreements: HashMap<i64, Agreement>,
    names: HashMap<i64, String>,
}

impl NationalLines {
    fn learn(&mut self, conn: &mut DbConnection, product_ids: impl IntoIterator<Item = i64>) -> DbResult<()> {
        let mut new: Vec<i64> = product_ids.into_iter().filter(|id| !self.known.contains(id)).collect();
        new.sort_unstable();
        new.dedup();
        for batch in new.chunks(BINDS_PER_QUERY) {
            let lines = agreements::entitlements_for_products(conn, batch)?;
            let mut agreement_ids: Vec<i64> =
                lines.iter().map(|l| l.agreement_id).filter(|id| !self.agreements.contains_key(id)).collect();
            agreement_ids.sort_unstable();
            agreement_ids.dedup();
            if !agreement_ids.is_empty() {
                self.agreements
                    .extend(agreements::get_many(conn, &agreement_ids)?.into_iter().map(|a| (a.id, a)));
            }
            for line in lines {
                self.lines_of.entry(line.product_id).or_default().push(line);
            }
            self.names.extend(
                products::table
                    .filter(products::id.eq_any(batch))
                    .select((products::id, products::name, products::edition))
                    .load::<(i64, String, String)>(conn)?
                    .into_iter()
                    .map(|(id, name, edition)| {
                        (id, if edition.is_empty() { name } else { format!("{name} {edition}") })
                    }),
            );
            self.known.extend(batch);
        }
        Ok(())
    }

    /// A national line that `asking` may use covers the product on the day.
    fn cover(&self, asking: &AskingOrganisation, product_id: i64, on: NaiveDate) -> bool {
        self.lines_of.get(&product_id).is_some_and(|lines| {
            lines.iter().any(|line| {
                self.agreements.get(&line.agreement_id).is_some_and(|a| usable(asking, a, line, on))
            })
        })
    }
}

/// Every row of the organisations of `codes` (each with a snapshot), by code then product id.
fn chunk_rows(
    conn: &mut DbConnection,
    codes: &[String],
    on: NaiveDate,
    lines: &mut NationalLines,
) -> DbResult<Vec<ReconciliationRow>> {
    // Each organisation as a coverage question asks for it, with its NHSmail service on the day.
    let recorded = nhsmail::periods_of_each(conn, codes)?;
    let asking: HashMap<String, AskingOrganisation> = organisations::by_codes(conn, codes)?
        .iter()
        .map(|o| {
            let periods = recorded.get(&o.code).map_or(&[][..], Vec::as_slice);
            (o.code.clone(), AskingOrganisation::new(o, periods, on))
        })
        .collect();

    // What each organisation runs (estates' rule: each source added up, then the largest), and
    // which of the releases it runs are past support on the day.
    let run_releases = estate_items::table
        .inner_join(estate_snapshots::table)
        .filter(estate_snapshots::organisation_code.eq_any(codes))
        .filter(estate_items::release_id.is_not_null())
        .select(estate_items::release_id.assume_not_null());
    let past_support: HashSet<i64> = releases::table
        .filter(releases::id.eq_any(run_releases))
        .select(Release::as_select())
        .load::<Release>(conn)?
        .into_iter()
        .filter(|release| {
            matches!(release.status(on), ReleaseStatus::Unsupported | ReleaseStatus::ExtendedUpdatesOnly)
        })
        .map(|release| release.id)
        .collect();
    let running =
        estates::running_by_product(conn, None, Some(codes), |release| past_support.contains(&release))?;

    // What each organisation holds: live national seats, and current local purchases (those no
    // later purchase supersedes).
    let mut claimed: BTreeMap<(String, i64), i64> = BTreeMap::new();
    let live: Vec<(String, i64, i64)> = allocations::table
        .inner_join(entitlements::table)
        .filter(allocations::status.eq("live"))
        .filter(allocations::organisation_code.eq_any(codes))
        .select((allocations::organisation_code, entitlements::product_id, allocations::quantity))
        .load(conn)?;
    for (code, product, quantity) in live {
        let held = claimed.entry((code, product)).or_default();
        *held = held.saturating_add(quantity);
    }
    let superseding = REPLACEMENTS.field(purchases::supersedes_id);
    let bought: Vec<(String, i64, i64)> = purchases::table
        .filter(purchases::organisation_code.eq_any(codes))
        .filter(purchases::product_id.is_not_null())
        .filter(not(exists(REPLACEMENTS.filter(superseding.eq(purchases::id.nullable())))))
        .select((purchases::organisation_code, purchases::product_id.assume_not_null(), purchases::quantity))
        .load(conn)?;
    let mut purchased: BTreeMap<(String, i64), i64> = BTreeMap::new();
    for (code, product, quantity) in bought {
        let held = purchased.entry((code, product)).or_default();
        *held = held.saturating_add(quantity);
    }

    let mut keys: Vec<(String, i64)> =
        running.keys().chain(claimed.keys()).chain(purchased.keys()).cloned().collect();
    keys.sort_unstable();
    keys.dedup();
    lines.learn(conn, keys.iter().map(|(_, product)| *product))?;

    let mut rows = Vec::with_capacity(keys.len());
    for key in keys {
        let (code, product_id) = &key;
        let Some(asking) = asking.get(code) else { continue };
        let (devices, users, unsupported) =
            running.get(&key).map_or((0, 0, 0), |ran| (ran.devices, ran.users, ran.past_support));
        let claimed = claimed.get(&key).copied().unwrap_or(0);
        let purchased = purchased.get(&key).copied().unwrap_or(0);
        let held = claimed.saturating_add(purchased);
        let running_count = devices.max(users);
        let licensed_nationally = lines.cover(asking, *product_id, on);
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
        rows.push(ReconciliationRow {
            organisation_code: code.clone(),
            organisation_name: asking.name.clone(),
            product_id: *product_id,
            product: lines.names.get(product_id).cloned().unwrap_or_default(),
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
    }
    Ok(rows)
}
