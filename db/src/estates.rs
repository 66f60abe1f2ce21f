//! Estates: what an organisation actually runs, from the inventory exports it already has.
//!
//! An import reads one file of one source (the catalogue's own CSV, a Microsoft Defender for
//! Endpoint software inventory, an Intune discovered-apps export), matches each row to a product
//! (and, where its version names one, a release), and replaces the organisation's snapshot of
//! that source whole, in one transaction: a file with an invalid row is refused and the previous
//! snapshot stays. A dry run reports the same per-row outcomes and writes nothing.
//!
//! Rows are aggregated as they are read (per product, release and site; per unmatched name and
//! version), so memory grows with the number of distinct names, not of rows: a Defender export has
//! one row per device and program. Names that match no product wait in the national team's
//! queue; a mapping made once (vendor and name to a product) is used by every later import and
//! moves the rows already waiting.
//!
//! Sources overlap (Defender and Intune both see a managed Windows laptop), so what an
//! organisation runs of a product is the largest count any one of its current snapshots gives,
//! never their sum.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use serde::Serialize;

use crate::audit::{Actor, Audited, Change, now};
use crate::connection::{Database, DbConnection};
use crate::error::{DbError, DbResult};
use crate::page::{Page, PageRequest};
use crate::schema::{
    estate_items, estate_snapshots, estate_unmatched, organisations, products, releases,
    software_name_mappings, suppliers,
};
use crate::vocabulary::{EstateSource, RowStatus};

/// The most devices (or users) one row, or one product's total, may count.
pub const MAX_COUNT: i64 = 100_000_000;
/// A name, vendor, version or site longer than this is an invalid row.
pub const MAX_FIELD_CHARS: usize = 500;
/// Per-row outcomes a report lists; the counts cover every row.
pub const MAX_REPORTED_ROWS: usize = 1000;

/// `name`, lower case, with every run of characters other than letters and digits as one space:
/// "Windows 10 Enterprise", "windows_10_enterprise" and "WINDOWS-10  Enterprise" are one name.
pub fn normalise(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for word in name.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(word.chars().flat_map(char::to_lowercase));
    }
    out
}

/// The key a mapping is remembered by: vendor and name, each normalised.
pub fn name_key(vendor: &str, name: &str) -> String {
    format!("{}|{}", normalise(vendor), normalise(name))
}

/// One row of a file, as read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InventoryRow {
    /// The line in the file (the header is line 1).
    pub line: u64,
    pub vendor: String,
    pub name: String,
    pub version: String,
    pub site: String,
    /// The catalogue's CSV names a release directly.
    pub release: Option<String>,
    pub devices: i64,
    pub users: i64,
    /// Defender lists one row per device: the device's id, so that a device is counted once.
    pub device_id: Option<String>,
}

/// What became of one row.
#[derive(Clone, Debug, PartialEq)]
pub enum RowOutcome {
    /// Matched to a product, and to a release when the version names one.
    Matched { product_id: i64, product: String, release_id: Option<i64>, release: Option<String> },
    /// No product has this name: it waits in the national team's queue.
    Unmatched,
    /// The row cannot be used; the import is refused while any row is invalid.
    Invalid { reason: String },
}

/// One row's outcome, as the report gives it (flat, so that every client can read it).
#[derive(Clone, Debug, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RowReport {
    pub line: u64,
    pub name: String,
    pub version: String,
    pub outcome: RowStatus,
    pub product_id: Option<i64>,
    pub product: Option<String>,
    pub release_id: Option<i64>,
    pub release: Option<String>,
    pub reason: Option<String>,
    #[serde(skip)]
    #[cfg_attr(feature = "openapi", schema(ignore))]
    pub detail: RowOutcome,
}

impl RowReport {
    fn new(line: u64, name: String, version: String, outcome: RowOutcome) -> RowReport {
        let mut report = RowReport {
            line,
            name,
            version,
            outcome: RowStatus::Unmatched,
            product_id: None,
            product: None,
            release_id: None,
            release: None,
            reason: None,
            detail: outcome.clone(),
        };
        match outcome {
            RowOutcome::Matched { product_id, product, release_id, release } => {
                report.outcome = RowStatus::Matched;
                (report.product_id, report.product) = (Some(product_id), Some(product));
                (report.release_id, report.release) = (release_id, release);
            }
            RowOutcome::Unmatched => {}
            RowOutcome::Invalid { reason } => {
                report.outcome = RowStatus::Invalid;
                report.reason = Some(reason);
            }
        }
        report
    }
}

/// What an import did, or on a dry run would do.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImportReport {
    pub organisation_code: String,
    pub source: EstateSource,
    pub taken_on: NaiveDate,
    /// True when nothing was written.
    pub dry_run: bool,
    pub rows_read: i64,
    pub rows_matched: i64,
    pub rows_unmatched: i64,
    pub rows_invalid: i64,
    /// Distinct products matched.
    pub products: i64,
    /// The first 1,000 rows' outcomes, and every invalid row's up to 1,000 more; the counts
    /// above cover every row.
    pub rows: Vec<RowReport>,
}

/// A product as the matcher knows it.
struct Candidate {
    id: i64,
    label: String,
    releases: Vec<(i64, String)>,
}

/// Names to products: the national team's mappings first, then a product's name with its
/// edition, its name alone when only one product has it, or its SKU.
pub struct Matcher {
    products: HashMap<i64, Candidate>,
    by_name: HashMap<String, Option<i64>>,
    mappings: HashMap<String, i64>,
}

impl Matcher {
    pub fn load(conn: &mut DbConnection) -> DbResult<Matcher> {
        let rows: Vec<(i64, String, String, Option<String>, String)> = products::table
            .inner_join(suppliers::table)
            .select((products::id, products::name, products::edition, products::sku, suppliers::name))
            .load(conn)?;
        let mut releases_of: HashMap<i64, Vec<(i64, String)>> = HashMap::new();
        for (id, product_id, name) in releases::table
            .select((releases::id, releases::product_id, releases::name))
            .load::<(i64, i64, String)>(conn)?
        {
            releases_of.entry(product_id).or_default().push((id, name));
        }
        let mut products = HashMap::new();
        let mut by_name: HashMap<String, Option<i64>> = HashMap::new();
        let mut add = |key: String, id: i64| {
            if key.is_empty() {
                return;
            }
            by_name
                .entry(key)
                .and_modify(|known| {
                    if *known != Some(id) {
                        *known = None; // two products answer to it: ambiguous, so unmatched
                    }
                })
                .or_insert(Some(id));
        };
        for (id, name, edition, sku, supplier) in rows {
            let full = format!("{name} {edition}");
            add(normalise(&full), id);
            add(normalise(&name), id);
            add(normalise(&format!("{supplier} {full}")), id);
            add(normalise(&format!("{supplier} {name}")), id);
            if let Some(sku) = &sku {
                add(normalise(sku), id);
            }
            let label = if edition.is_empty() { name } else { full };
            products
                .insert(id, Candidate { id, label, releases: releases_of.remove(&id).unwrap_or_default() });
        }
        let mappings = software_name_mappings::table
            .select((software_name_mappings::name_key, software_name_mappings::product_id))
            .load::<(String, i64)>(conn)?
            .into_iter()
            .collect();
        Ok(Matcher { products, by_name, mappings })
    }

    fn product_for(&self, vendor: &str, name: &str) -> Option<&Candidate> {
        let id = self.mappings.get(&name_key(vendor, name)).copied().or_else(|| {
            let name = normalise(name);
            self.by_name
                .get(&name)
                .copied()
                .flatten()
                .or_else(|| self.by_name.get(&format!("{} {name}", normalise(vendor))).copied().flatten())
        })?;
        self.products.get(&id)
    }

    /// The row's outcome: its product and release, unmatched, or why it is invalid.
    pub fn outcome(&self, row: &InventoryRow) -> RowOutcome {
        if let Some(reason) = invalid_reason(row) {
            return RowOutcome::Invalid { reason };
        }
        let Some(product) = self.product_for(&row.vendor, &row.name) else {
            return RowOutcome::Unmatched;
        };
        let release = match &row.release {
            Some(named) => match product.releases.iter().find(|(_, r)| normalise(r) == normalise(named)) {
                Some(found) => Some(found),
                None => {
                    return RowOutcome::Invalid {
                        reason: format!("{named} is not a release of {} in the catalogue", product.label),
                    };
                }
            },
            None => release_for_version(&product.releases, &row.version),
        };
        RowOutcome::Matched {
            product_id: product.id,
            product: product.label.clone(),
            release_id: release.map(|(id, _)| *id),
            release: release.map(|(_, name)| name.clone()),
        }
    }
}

/// The release a version string names: the release's own name ("22H2", "LTSC 2024"), or a
/// version that starts with it and a dot ("7.1.3" is release "7.1"). Build numbers that name no
/// release leave the row at product level.
fn release_for_version<'a>(releases: &'a [(i64, String)], version: &str) -> Option<&'a (i64, String)> {
    let version = version.trim();
    if version.is_empty() {
        return None;
    }
    let wanted = normalise(version);
    releases.iter().find(|(_, name)| normalise(name) == wanted).or_else(|| {
        releases
            .iter()
            .filter(|(_, name)| version.strip_prefix(name.as_str()).is_some_and(|rest| rest.starts_with('.')))
            .max_by_key(|(_, name)| name.len())
    })
}

fn invalid_reason(row: &InventoryRow) -> Option<String> {
    if row.name.trim().is_empty() {
        return Some("the software name is empty".into());
    }
    for (field, value) in
        [("name", &row.name), ("vendor", &row.vendor), ("version", &row.version), ("site", &row.site)]
    {
        if value.chars().count() > MAX_FIELD_CHARS {
            return Some(format!("the {field} is longer than {MAX_FIELD_CHARS} characters"));
        }
    }
    if !(0..=MAX_COUNT).contains(&row.devices) || !(0..=MAX_COUNT).contains(&row.users) {
        return Some(format!("counts must be whole numbers from 0 to {MAX_COUNT}"));
    }
    if row.devices == 0 && row.users == 0 {
        return Some("the row counts no devices and no users".into());
    }
    None
}

/// The columns each source's file must have (by header name, in any order, any case), from the
/// published layouts: the catalogue's own (README), Defender's `DeviceTvmSoftwareInventory`
/// (Microsoft Learn, advanced hunting schema), Intune's `AppInvAggregate` discovered-apps report
/// (Microsoft Learn, "Intune reports and properties available using Graph API").
pub fn required_columns(source: EstateSource) -> &'static [&'static str] {
    match source {
        EstateSource::Catalogue => &["product"],
        EstateSource::Defender => &["DeviceId", "SoftwareVendor", "SoftwareName", "SoftwareVersion"],
        EstateSource::Intune => {
            &["ApplicationName", "ApplicationPublisher", "ApplicationVersion", "DeviceCount"]
        }
    }
}

/// A count cell: digits, with thousands separators (commas, spaces) allowed; empty is 0.
fn count(cell: &str) -> Result<i64, String> {
    let digits: String = cell.chars().filter(|c| !matches!(c, ',' | ' ' | '_')).collect();
    if digits.is_empty() {
        return Ok(0);
    }
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{cell:?} is not a whole number"));
    }
    digits.parse::<i64>().map_err(|_| format!("{cell:?} is too large"))
}

/// Reads a file of `source` row by row, calling `each` with every row (or the reason a row's
/// cells cannot be read, which makes it invalid). A file without the source's columns is refused
/// whole, naming what is missing.
pub fn read_rows(
    source: EstateSource,
    bytes: impl std::io::Read,
    mut each: impl FnMut(Result<InventoryRow, (u64, String)>) -> DbResult<()>,
) -> DbResult<()> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).trim(csv::Trim::All).from_reader(bytes);
    let headers = reader
        .headers()
        .map_err(|e| DbError::Invalid(format!("the file's header row cannot be read: {e}")))?
        .clone();
    let column =
        |name: &str| headers.iter().position(|h| h.trim_start_matches('\u{feff}').eq_ignore_ascii_case(name));
    let missing: Vec<&str> =
        required_columns(source).iter().copied().filter(|c| column(c).is_none()).collect();
    if !missing.is_empty() {
        return Err(DbError::Invalid(format!(
            "a {} file needs the columns {}; missing: {}",
            source.as_str(),
            required_columns(source).join(", "),
            missing.join(", ")
        )));
    }
    let at = |name: &str| column(name);
    let (product, release, devices, users, site) =
        (at("product"), at("release"), at("devices"), at("users"), at("site"));
    let (vendor, name, version, device) =
        (at("SoftwareVendor"), at("SoftwareName"), at("SoftwareVersion"), at("DeviceId"));
    let (app, publisher, app_version, device_count) =
        (at("ApplicationName"), at("ApplicationPublisher"), at("ApplicationVersion"), at("DeviceCount"));
    let mut record = csv::StringRecord::new();
    loop {
        let line = reader.position().line();
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(error) => {
                each(Err((line, format!("the row cannot be read: {error}"))))?;
                continue;
            }
        }
        let cell = |index: Option<usize>| index.and_then(|i| record.get(i)).unwrap_or("").to_owned();
        let counted = |index: Option<usize>| count(&cell(index));
        let row = match source {
            EstateSource::Catalogue => counted(devices).and_then(|devices| {
                Ok(InventoryRow {
                    line,
                    name: cell(product),
                    release: Some(cell(release)).filter(|r| !r.is_empty()),
                    site: cell(site),
                    devices,
                    users: counted(users)?,
                    ..InventoryRow::default()
                })
            }),
            EstateSource::Defender => Ok(InventoryRow {
                line,
                vendor: cell(vendor),
                name: cell(name),
                version: cell(version),
                devices: 1,
                device_id: Some(cell(device)),
                ..InventoryRow::default()
            }),
            EstateSource::Intune => counted(device_count).map(|devices| InventoryRow {
                line,
                vendor: cell(publisher),
                name: cell(app),
                version: cell(app_version),
                devices,
                ..InventoryRow::default()
            }),
        };
        each(row.map_err(|reason| (line, reason)))?;
    }
    Ok(())
}

#[derive(Default)]
struct Totals {
    devices: i64,
    users: i64,
    /// Defender: the devices already counted (hashed ids: 8 bytes each, not the id's text).
    seen: HashSet<u64>,
}

impl Totals {
    fn add(&mut self, row: &InventoryRow) -> Result<(), String> {
        let new_device = match &row.device_id {
            Some(id) if !id.is_empty() => {
                let mut hasher = DefaultHasher::new();
                id.hash(&mut hasher);
                self.seen.insert(hasher.finish())
            }
            _ => true,
        };
        if new_device {
            self.devices =
                self.devices.checked_add(row.devices).filter(|d| *d <= MAX_COUNT).ok_or_else(too_many)?;
        }
        self.users = self.users.checked_add(row.users).filter(|u| *u <= MAX_COUNT).ok_or_else(too_many)?;
        Ok(())
    }
}

fn too_many() -> String {
    format!("the total for this product passes {MAX_COUNT}")
}

/// A file read and matched: what a snapshot would hold.
pub struct Plan {
    pub report: ImportReport,
    items: BTreeMap<(i64, Option<i64>, String), Totals>,
    unmatched: BTreeMap<(String, String, String, String, String), Totals>,
}

/// Reads and matches a file without writing: the dry run, and the first half of an import.
/// `progress` is called with the rows read so far.
pub fn plan(
    conn: &mut DbConnection,
    organisation: &str,
    source: EstateSource,
    taken_on: NaiveDate,
    bytes: impl std::io::Read,
    progress: &mut dyn FnMut(i64),
) -> DbResult<Plan> {
    let code = organisation.to_uppercase();
    let known: i64 = organisations::table.filter(organisations::code.eq(&code)).count().get_result(conn)?;
    if known == 0 {
        return Err(DbError::NotFound("organisation"));
    }
    if taken_on > now().date() {
        return Err(DbError::Invalid("taken_on is in the future".into()));
    }
    let matcher = Matcher::load(conn)?;
    let mut report = ImportReport {
        organisation_code: code,
        source,
        taken_on,
        dry_run: true,
        rows_read: 0,
        rows_matched: 0,
        rows_unmatched: 0,
        rows_invalid: 0,
        products: 0,
        rows: Vec::new(),
    };
    let mut items: BTreeMap<(i64, Option<i64>, String), Totals> = BTreeMap::new();
    let mut unmatched: BTreeMap<(String, String, String, String, String), Totals> = BTreeMap::new();
    read_rows(source, bytes, |row| {
        report.rows_read += 1;
        if report.rows_read % 10_000 == 0 {
            progress(report.rows_read);
        }
        let (line, name, version, mut outcome) = match row {
            Ok(row) => {
                let outcome = matcher.outcome(&row);
                let added = match &outcome {
                    RowOutcome::Matched { product_id, release_id, .. } => {
                        items.entry((*product_id, *release_id, row.site.clone())).or_default().add(&row)
                    }
                    RowOutcome::Unmatched => unmatched
                        .entry((
                            name_key(&row.vendor, &row.name),
                            row.vendor.clone(),
                            row.name.clone(),
                            row.version.clone(),
                            row.site.clone(),
                        ))
                        .or_default()
                        .add(&row),
                    RowOutcome::Invalid { .. } => Ok(()),
                };
                let outcome = match added {
                    Ok(()) => outcome,
                    Err(reason) => RowOutcome::Invalid { reason },
                };
                (row.line, row.name, row.version, outcome)
            }
            Err((line, reason)) => (line, String::new(), String::new(), RowOutcome::Invalid { reason }),
        };
        match &mut outcome {
            RowOutcome::Matched { .. } => report.rows_matched += 1,
            RowOutcome::Unmatched => report.rows_unmatched += 1,
            RowOutcome::Invalid { .. } => report.rows_invalid += 1,
        }
        // Invalid rows are listed wherever they are (up to the limit), so that a refused file
        // can be mended in one go; the others only while there is room.
        let invalid = matches!(outcome, RowOutcome::Invalid { .. });
        if report.rows.len() < MAX_REPORTED_ROWS
            || (invalid && report.rows_invalid <= MAX_REPORTED_ROWS as i64)
        {
            report.rows.push(RowReport::new(line, name, version, outcome));
        }
        Ok(())
    })?;
    progress(report.rows_read);
    report.products = items.keys().map(|(product, _, _)| *product).collect::<HashSet<_>>().len() as i64;
    Ok(Plan { report, items, unmatched })
}

/// A snapshot as stored.
#[derive(Clone, Debug, Serialize, Queryable, Selectable, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[diesel(table_name = estate_snapshots)]
pub struct Snapshot {
    pub id: i64,
    pub organisation_code: String,
    pub source: EstateSource,
    pub taken_on: NaiveDate,
    pub rows_read: i64,
    pub rows_matched: i64,
    pub rows_unmatched: i64,
    pub imported_by: Option<i64>,
    #[serde(serialize_with = "crate::time::utc")]
    pub imported_at: NaiveDateTime,
}

/// Reads, matches and stores a file as the organisation's snapshot of `source`, replacing the
/// previous one in the same transaction. Any invalid row refuses the whole file (the previous
/// snapshot stays); the error names the first few.
pub fn import(
    db: &Database,
    actor: &Actor,
    organisation: &str,
    source: EstateSource,
    taken_on: NaiveDate,
    bytes: impl std::io::Read,
    progress: &mut dyn FnMut(i64),
) -> DbResult<ImportReport> {
    // Read and matched outside the write transaction: a large file does not hold the writer.
    let plan = db.read(|conn| plan(conn, organisation, source, taken_on, bytes, progress))?;
    if plan.report.rows_invalid > 0 {
        let first: Vec<String> = plan
            .report
            .rows
            .iter()
            .filter_map(|r| match &r.detail {
                RowOutcome::Invalid { reason } => Some(format!("line {}: {reason}", r.line)),
                _ => None,
            })
            .take(5)
            .collect();
        return Err(DbError::Invalid(format!(
            "{} of {} rows are invalid, so nothing was imported ({}); a dry run lists them all",
            plan.report.rows_invalid,
            plan.report.rows_read,
            first.join("; ")
        )));
    }
    db.write(actor, |conn| {
        let code = &plan.report.organisation_code;
        let before: Option<Snapshot> = estate_snapshots::table
            .filter(estate_snapshots::organisation_code.eq(code))
            .filter(estate_snapshots::source.eq(source))
            .select(Snapshot::as_select())
            .first(conn)
            .optional()?;
        // When each product was first seen by this source: carried over from the snapshot replaced.
        let mut first_seen: HashMap<i64, NaiveDateTime> = HashMap::new();
        if let Some(old) = &before {
            let seen: Vec<(i64, NaiveDateTime)> = estate_items::table
                .filter(estate_items::snapshot_id.eq(old.id))
                .select((estate_items::product_id, estate_items::first_seen_at))
                .load(conn)?;
            for (product, at) in seen {
                first_seen.entry(product).and_modify(|known| *known = (*known).min(at)).or_insert(at);
            }
        }
        let imported_at = now();
        if let Some(old) = &before {
            // Children first: SQLite's cascade needs its foreign-key pragma, and this does not.
            diesel::delete(estate_items::table.filter(estate_items::snapshot_id.eq(old.id))).execute(conn)?;
            diesel::delete(estate_unmatched::table.filter(estate_unmatched::snapshot_id.eq(old.id)))
                .execute(conn)?;
            diesel::delete(estate_snapshots::table.find(old.id)).execute(conn)?;
        }
        let id: i64 = diesel::insert_into(estate_snapshots::table)
            .values((
                estate_snapshots::organisation_code.eq(code),
                estate_snapshots::source.eq(source),
                estate_snapshots::taken_on.eq(taken_on),
                estate_snapshots::rows_read.eq(plan.report.rows_read),
                estate_snapshots::rows_matched.eq(plan.report.rows_matched),
                estate_snapshots::rows_unmatched.eq(plan.report.rows_unmatched),
                estate_snapshots::imported_by.eq(actor.user_id),
                estate_snapshots::imported_at.eq(imported_at),
            ))
            .returning(estate_snapshots::id)
            .get_result(conn)?;
        let items: Vec<_> = plan
            .items
            .iter()
            .map(|((product, release, site), totals)| {
                (
                    estate_items::snapshot_id.eq(id),
                    estate_items::product_id.eq(*product),
                    estate_items::release_id.eq(*release),
                    estate_items::site.eq(site.as_str()),
                    estate_items::devices.eq(totals.devices),
                    estate_items::users.eq(totals.users),
                    estate_items::first_seen_at.eq(first_seen.get(product).copied().unwrap_or(imported_at)),
                )
            })
            .collect();
        // Row by row: diesel's batch insert is not offered across both engines, and the rows are
        // aggregated already (one per product, release and site).
        for item in items {
            diesel::insert_into(estate_items::table).values(item).execute(conn)?;
        }
        let waiting: Vec<_> = plan
            .unmatched
            .iter()
            .map(|((key, vendor, name, version, site), totals)| {
                (
                    estate_unmatched::snapshot_id.eq(id),
                    estate_unmatched::name_key.eq(key.as_str()),
                    estate_unmatched::vendor.eq(vendor.as_str()),
                    estate_unmatched::name.eq(name.as_str()),
                    estate_unmatched::version.eq(version.as_str()),
                    estate_unmatched::site.eq(site.as_str()),
                    estate_unmatched::devices.eq(totals.devices),
                    estate_unmatched::users.eq(totals.users),
                )
            })
            .collect();
        for name in waiting {
            diesel::insert_into(estate_unmatched::table).values(name).execute(conn)?;
        }
        let after = estate_snapshots::table.find(id).select(Snapshot::as_select()).first(conn)?;
        let mut change =
            Change::new("estate.import", "estate_snapshot", id).organisation(Some(code)).after(&after);
        if let Some(old) = &before {
            change = change.before(old);
        }
        let mut report = plan.report.clone();
        report.dry_run = false;
        Ok(Audited::one(report, change))
    })
}

/// One product (and release) an organisation runs, as its current snapshots count it.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Running {
    pub product_id: i64,
    pub product: String,
    pub release_id: Option<i64>,
    pub release: Option<String>,
    /// The largest count of any one source (sources overlap, so they are not added up).
    pub devices: i64,
    pub users: i64,
    /// The sources that count it.
    pub sources: Vec<EstateSource>,
}

/// An organisation's estate: its current snapshots and what they say it runs.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Estate {
    pub organisation_code: String,
    pub snapshots: Vec<Snapshot>,
    pub running: Vec<Running>,
}

/// A stored item with its product's and release's names.
#[derive(Queryable)]
struct ItemRow {
    snapshot_id: i64,
    product_id: i64,
    name: String,
    edition: String,
    release_id: Option<i64>,
    release: Option<String>,
    devices: i64,
    users: i64,
}

/// A product's (and release's) names, and its devices and users per source.
type Counted = (String, Option<String>, BTreeMap<&'static str, (i64, i64)>);

pub fn estate(conn: &mut DbConnection, organisation: &str) -> DbResult<Estate> {
    let code = organisation.to_uppercase();
    let snapshots: Vec<Snapshot> = estate_snapshots::table
        .filter(estate_snapshots::organisation_code.eq(&code))
        .order(estate_snapshots::source)
        .select(Snapshot::as_select())
        .load(conn)?;
    let source_of: HashMap<i64, EstateSource> = snapshots.iter().map(|s| (s.id, s.source)).collect();
    let rows: Vec<ItemRow> = estate_items::table
        .inner_join(products::table)
        .left_join(releases::table.on(estate_items::release_id.eq(releases::id.nullable())))
        .filter(estate_items::snapshot_id.eq_any(source_of.keys().copied().collect::<Vec<_>>()))
        .select((
            estate_items::snapshot_id,
            products::id,
            products::name,
            products::edition,
            estate_items::release_id,
            releases::name.nullable(),
            estate_items::devices,
            estate_items::users,
        ))
        .load(conn)?;
    // Per product and release: each source's total over its sites, then the largest source.
    let mut per_source: BTreeMap<(i64, Option<i64>), Counted> = BTreeMap::new();
    for row in rows {
        let label = if row.edition.is_empty() { row.name } else { format!("{} {}", row.name, row.edition) };
        let source = source_of.get(&row.snapshot_id).map_or("catalogue", |s| s.as_str());
        let entry = per_source
            .entry((row.product_id, row.release_id))
            .or_insert_with(|| (label, row.release, BTreeMap::new()));
        let totals = entry.2.entry(source).or_default();
        totals.0 = totals.0.saturating_add(row.devices).min(MAX_COUNT);
        totals.1 = totals.1.saturating_add(row.users).min(MAX_COUNT);
    }
    let running = per_source
        .into_iter()
        .map(|((product_id, release_id), (product, release, sources))| Running {
            product_id,
            product,
            release_id,
            release,
            devices: sources.values().map(|t| t.0).max().unwrap_or(0),
            users: sources.values().map(|t| t.1).max().unwrap_or(0),
            sources: sources.keys().filter_map(|s| EstateSource::parse(s)).collect(),
        })
        .collect();
    Ok(Estate { organisation_code: code, snapshots, running })
}

/// What an organisation runs of a product by its current snapshots.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RunningTotals {
    pub devices: i64,
    pub users: i64,
    /// Devices on releases that the caller counts as past their support.
    pub past_support: i64,
    /// When a snapshot first showed the product.
    pub first_seen: NaiveDateTime,
}

impl RunningTotals {
    /// Devices or users, whichever is larger: a per-device licence counts the one, a per-user
    /// licence the other, and an export counts one or the other.
    pub fn count(&self) -> i64 {
        self.devices.max(self.users)
    }
}

/// What organisations run, per organisation and product, from their current snapshots (of
/// `products` only, and of `organisations` only (their codes as stored, upper case), when
/// given): each source's rows added up (releases and sites), then the largest source's figures,
/// as sources overlap. The one rule that reconciliation and advisory exposure both count by.
pub fn running_by_product(
    conn: &mut DbConnection,
    products: Option<&[i64]>,
    organisations: Option<&[String]>,
    past_support: impl Fn(i64) -> bool,
) -> DbResult<BTreeMap<(String, i64), RunningTotals>> {
    let mut query = estate_items::table
        .inner_join(estate_snapshots::table)
        .select((
            estate_snapshots::organisation_code,
            estate_snapshots::id,
            estate_items::product_id,
            estate_items::release_id,
            estate_items::devices,
            estate_items::users,
            estate_items::first_seen_at,
        ))
        .into_boxed();
    if let Some(products) = products {
        query = query.filter(estate_items::product_id.eq_any(products));
    }
    if let Some(codes) = organisations {
        query = query.filter(estate_snapshots::organisation_code.eq_any(codes));
    }
    type Row = (String, i64, i64, Option<i64>, i64, i64, NaiveDateTime);
    let rows: Vec<Row> = query.load(conn)?;
    let mut per_source: HashMap<(String, i64, i64), RunningTotals> = HashMap::new();
    for (code, snapshot, product, release, devices, users, seen) in rows {
        let totals = per_source.entry((code, snapshot, product)).or_insert(RunningTotals {
            devices: 0,
            users: 0,
            past_support: 0,
            first_seen: seen,
        });
        totals.devices = totals.devices.saturating_add(devices).min(MAX_COUNT);
        totals.users = totals.users.saturating_add(users).min(MAX_COUNT);
        if release.is_some_and(&past_support) {
            totals.past_support = totals.past_support.saturating_add(devices).min(MAX_COUNT);
        }
        totals.first_seen = totals.first_seen.min(seen);
    }
    let mut running: BTreeMap<(String, i64), RunningTotals> = BTreeMap::new();
    for ((code, _, product), source) in per_source {
        running
            .entry((code, product))
            .and_modify(|best| {
                best.devices = best.devices.max(source.devices);
                best.users = best.users.max(source.users);
                best.past_support = best.past_support.max(source.past_support);
                best.first_seen = best.first_seen.min(source.first_seen);
            })
            .or_insert(source);
    }
    Ok(running)
}

/// What each organisation runs of each product, as [`RunningTotals::count`] counts it, from rows
/// of (organisation, snapshot, product, devices, users): each snapshot's rows added up, then each
/// of devices and users the largest of any source.
pub fn largest_source(rows: Vec<(String, i64, i64, i64, i64)>) -> BTreeMap<(String, i64), i64> {
    let mut per_source: HashMap<(String, i64, i64), (i64, i64)> = HashMap::new();
    for (code, snapshot, product, devices, users) in rows {
        let totals = per_source.entry((code, snapshot, product)).or_default();
        totals.0 = totals.0.saturating_add(devices).min(MAX_COUNT);
        totals.1 = totals.1.saturating_add(users).min(MAX_COUNT);
    }
    let mut largest: BTreeMap<(String, i64), (i64, i64)> = BTreeMap::new();
    for ((code, _, product), (devices, users)) in per_source {
        let best = largest.entry((code, product)).or_default();
        *best = (best.0.max(devices), best.1.max(users));
    }
    largest.into_iter().map(|(key, (devices, users))| (key, devices.max(users))).collect()
}

/// A name waiting in the national team's queue: every current snapshot's rows of it together.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Unmatched {
    /// Pass it back to map the name (vendor and name, normalised).
    pub name_key: String,
    pub vendor: String,
    pub name: String,
    /// Organisations whose snapshots have it.
    pub organisations: i64,
    pub devices: i64,
}

/// The queue, most devices first (then by key, so that pages are stable). The cursor is the
/// offset into the queue: the queue is an aggregate, with no row key of its own.
pub fn unmatched(conn: &mut DbConnection, page: &PageRequest) -> DbResult<Page<Unmatched>> {
    let offset = page.after_id()?.unwrap_or(0).max(0);
    let rows: Vec<(String, String, String, String, i64)> = estate_unmatched::table
        .inner_join(estate_snapshots::table)
        .select((
            estate_unmatched::name_key,
            estate_unmatched::vendor,
            estate_unmatched::name,
            estate_snapshots::organisation_code,
            estate_unmatched::devices,
        ))
        .load(conn)?;
    let mut grouped: BTreeMap<String, (String, String, HashSet<String>, i64)> = BTreeMap::new();
    for (key, vendor, name, organisation, devices) in rows {
        let entry = grouped.entry(key).or_insert_with(|| (vendor, name, HashSet::new(), 0));
        entry.2.insert(organisation);
        entry.3 = entry.3.saturating_add(devices);
    }
    let mut queue: Vec<Unmatched> = grouped
        .into_iter()
        .map(|(name_key, (vendor, name, organisations, devices))| Unmatched {
            name_key,
            vendor,
            name,
            organisations: organisations.len() as i64,
            devices,
        })
        .collect();
    queue.sort_by(|a, b| b.devices.cmp(&a.devices).then_with(|| a.name_key.cmp(&b.name_key)));
    let limit = page.limit();
    let rows: Vec<Unmatched> = queue.into_iter().skip(offset as usize).take(limit as usize + 1).collect();
    let more = rows.len() as i64 > limit;
    let mut page = Page::from_rows(rows, limit, |_| String::new());
    page.next_cursor = more.then(|| (offset + limit).to_string());
    Ok(page)
}

/// A mapping made by the national team.
#[derive(Clone, Debug, Serialize, Queryable, Selectable, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[diesel(table_name = software_name_mappings)]
pub struct Mapping {
    pub id: i64,
    pub name_key: String,
    pub product_id: i64,
    pub mapped_by: Option<i64>,
    #[serde(serialize_with = "crate::time::utc")]
    pub mapped_at: NaiveDateTime,
}

/// What mapping a name did.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Mapped {
    pub mapping: Mapping,
    /// Rows waiting in current snapshots that the mapping matched and moved.
    pub rows_moved: i64,
}

/// Maps a name (vendor and name) to a product for every later import, and moves the rows of it
/// that wait in current snapshots (matching their versions to the product's releases). A name
/// already mapped is remapped.
pub fn map_name(db: &Database, actor: &Actor, vendor: &str, name: &str, product_id: i64) -> DbResult<Mapped> {
    let key = name_key(vendor, name);
    // As the API's pattern says: a letter or digit of A-Z, a-z, 0-9 (any software's name has one).
    if !name.chars().any(|c| c.is_ascii_alphanumeric()) {
        return Err(DbError::Invalid("name must have a letter or digit (A-Z, a-z, 0-9)".into()));
    }
    if name.chars().count() > MAX_FIELD_CHARS || vendor.chars().count() > MAX_FIELD_CHARS {
        return Err(DbError::Invalid(format!("name and vendor are at most {MAX_FIELD_CHARS} characters")));
    }
    db.write(actor, |conn| {
        let found: i64 = products::table.filter(products::id.eq(product_id)).count().get_result(conn)?;
        if found == 0 {
            return Err(DbError::Invalid(format!("product {product_id} does not exist")));
        }
        let before: Option<Mapping> = software_name_mappings::table
            .filter(software_name_mappings::name_key.eq(&key))
            .select(Mapping::as_select())
            .first(conn)
            .optional()?;
        match &before {
            Some(old) => {
                diesel::update(software_name_mappings::table.find(old.id))
                    .set((
                        software_name_mappings::product_id.eq(product_id),
                        software_name_mappings::mapped_by.eq(actor.user_id),
                        software_name_mappings::mapped_at.eq(now()),
                    ))
                    .execute(conn)?;
            }
            None => {
                diesel::insert_into(software_name_mappings::table)
                    .values((
                        software_name_mappings::name_key.eq(&key),
                        software_name_mappings::product_id.eq(product_id),
                        software_name_mappings::mapped_by.eq(actor.user_id),
                        software_name_mappings::mapped_at.eq(now()),
                    ))
                    .execute(conn)?;
            }
        }
        let mapping: Mapping = software_name_mappings::table
            .filter(software_name_mappings::name_key.eq(&key))
            .select(Mapping::as_select())
            .first(conn)?;
        let product_releases: Vec<(i64, String)> = releases::table
            .filter(releases::product_id.eq(product_id))
            .select((releases::id, releases::name))
            .load(conn)?;
        let waiting: Vec<(i64, i64, String, String, i64, i64)> = estate_unmatched::table
            .filter(estate_unmatched::name_key.eq(&key))
            .select((
                estate_unmatched::id,
                estate_unmatched::snapshot_id,
                estate_unmatched::version,
                estate_unmatched::site,
                estate_unmatched::devices,
                estate_unmatched::users,
            ))
            .load(conn)?;
        let mut moved: BTreeMap<(i64, Option<i64>, String), (i64, i64)> = BTreeMap::new();
        let mut per_snapshot: HashMap<i64, i64> = HashMap::new();
        for (_, snapshot, version, site, devices, users) in &waiting {
            let release = release_for_version(&product_releases, version).map(|(id, _)| *id);
            let totals = moved.entry((*snapshot, release, site.clone())).or_default();
            totals.0 = totals.0.saturating_add(*devices).min(MAX_COUNT);
            totals.1 = totals.1.saturating_add(*users).min(MAX_COUNT);
            *per_snapshot.entry(*snapshot).or_default() += 1;
        }
        for ((snapshot, release, site), (devices, users)) in &moved {
            diesel::insert_into(estate_items::table)
                .values((
                    estate_items::snapshot_id.eq(snapshot),
                    estate_items::product_id.eq(product_id),
                    estate_items::release_id.eq(release),
                    estate_items::site.eq(site),
                    estate_items::devices.eq(devices),
                    estate_items::users.eq(users),
                    // Known to be this product from now: exposure to an advisory runs from here.
                    estate_items::first_seen_at.eq(now()),
                ))
                .execute(conn)?;
        }
        diesel::delete(estate_unmatched::table.filter(estate_unmatched::name_key.eq(&key))).execute(conn)?;
        let mut change = Change::new("software_mapping.map", "software_mapping", mapping.id).after(&mapping);
        if let Some(old) = &before {
            change = change.before(old);
        }
        Ok(Audited::one(Mapped { mapping, rows_moved: waiting.len() as i64 }, change))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalised_for_matching() {
        assert_eq!(normalise("  Windows_10  Enterprise "), "windows 10 enterprise");
        assert_eq!(normalise("WINDOWS-10 enterprise"), "windows 10 enterprise");
        assert_eq!(name_key("Microsoft Corporation", "windows_10"), "microsoft corporation|windows 10");
    }

    #[test]
    fn versions_name_releases_by_name_or_dotted_prefix() {
        let releases = vec![(1, "22H2".to_owned()), (2, "7".to_owned()), (3, "7.1".to_owned())];
        assert_eq!(release_for_version(&releases, "22h2").map(|r| r.0), Some(1));
        assert_eq!(
            release_for_version(&releases, "7.1.3").map(|r| r.0),
            Some(3),
            "the longest release that fits"
        );
        assert_eq!(release_for_version(&releases, "7.0.2").map(|r| r.0), Some(2));
        assert_eq!(release_for_version(&releases, "10.0.19045.4291"), None, "a build names no release");
        assert_eq!(release_for_version(&releases, ""), None);
    }

    #[test]
    fn counts_take_thousands_separators_and_refuse_the_rest() {
        assert_eq!(count("1,200"), Ok(1200));
        assert_eq!(count(""), Ok(0));
        assert!(count("-3").is_err());
        assert!(count("12 devices").is_err());
    }
}
