//! A national-scale synthetic data set for benchmarks: organisations, suppliers, products (a few
//! with releases), agreements, entitlements, live allocations and estate snapshots, reproducible
//! from a seed. Rows are written as multi-row INSERTs (values generated here, never from input),
//! and the ledger's totals are set from the allocations written, so the ledger invariant holds on
//! the result.
//!
//! Estates: a share of the organisations (a tenth unless asked) have a snapshot of one source,
//! and a quarter of those a second, overlapping one, as an export of Defender beside Intune's
//! would. Each runs 15 to 30 products on one or two sites (about 20 to 40 items): most of what
//! it claimed, at half to one and a half times the seats (under-claimed or unused), other
//! nationally licensed products it has not claimed (under-claimed), products with releases,
//! some of them past support (running unsupported), and products from anywhere in the catalogue
//! (mostly unlicensed), so that the reconciliation report meets every flag. The estates are
//! drawn after the allocations, so a seed gives the same allocations as before they existed.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::audit::{Actor, Audited, Change};
use crate::connection::{Database, DbConnection, Engine};
use crate::error::{DbError, DbResult};
use crate::schema::{estate_snapshots, organisations, products, releases};

#[derive(Clone, Copy, Debug, Serialize)]
pub struct SyntheticSize {
    pub organisations: usize,
    pub products: usize,
    pub entitlements: usize,
    pub allocations: usize,
    /// Organisations with an estate snapshot (a random sample of them).
    pub estates: usize,
    pub seed: u64,
}

const KINDS: [(&str, u32); 6] =
    [("gp_practice", 80), ("trust", 8), ("icb", 2), ("csu", 2), ("arms_length_body", 4), ("other", 4)];
const REGIONS: [&str; 7] = [
    "London",
    "South East",
    "South West",
    "Midlands",
    "East of England",
    "North West",
    "North East and Yorkshire",
];
const CATEGORIES: [&str; 10] = [
    "operating-system",
    "server-operating-system",
    "endpoint-protection",
    "office-productivity",
    "email",
    "identity",
    "database",
    "medical-device-software",
    "clinical-system",
    "security-compliance",
];
const BATCH: usize = 1000;
/// One product in this many has releases (endoflife.date names a few hundred products).
const RELEASES_EVERY: usize = 100;
/// The releases such a product has: name, released, end of active support, of security support
/// (included in the licence), of paid extended updates. On any day from 2025-10-15 to 2028-10-10
/// the first is unsupported, the second on extended updates only and the third supported.
const RELEASES: [(&str, &str, &str, &str, &str); 3] = [
    ("1", "'2015-01-01'", "'2018-01-01'", "'2020-01-14'", "NULL"),
    ("2", "'2019-06-01'", "'2023-06-01'", "'2025-10-14'", "'2028-10-10'"),
    ("3", "'2024-10-01'", "'2030-10-01'", "'2033-10-01'", "NULL"),
];
/// Categories licensed per user: an export counts their users, not only devices.
const PER_USER_CATEGORIES: [&str; 3] = ["office-productivity", "email", "identity"];

/// The ODS-like code of synthetic organisation `i`: `S` and six base-36 digits.
pub fn organisation_code(i: usize) -> String {
    const DIGITS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut code = [b'0'; 6];
    let mut n = i;
    for slot in code.iter_mut().rev() {
        *slot = DIGITS[n % 36];
        n /= 36;
    }
    format!("S{}", String::from_utf8_lossy(&code))
}

/// The SKU of synthetic product `i`.
pub fn product_sku(i: usize) -> String {
    format!("SYN-{i:07}")
}

fn pick_kind(random: &mut StdRng) -> &'static str {
    let total: u32 = KINDS.iter().map(|(_, weight)| weight).sum();
    let mut roll = random.random_range(0..total);
    for (kind, weight) in KINDS {
        if roll < weight {
            return kind;
        }
        roll -= weight;
    }
    "other"
}

fn date(days_after_2000: i64) -> String {
    (NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or_default() + chrono::Duration::days(days_after_2000))
        .to_string()
}

/// Runs `statement_for(rows)` for every batch of `total` generated rows.
fn insert_batches(
    conn: &mut DbConnection,
    total: usize,
    prefix: &str,
    mut row: impl FnMut(usize) -> String,
    progress: &mut dyn FnMut(usize),
) -> DbResult<()> {
    let mut start = 0;
    while start < total {
        let end = (start + BATCH).min(total);
        let values: Vec<String> = (start..end).map(&mut row).collect();
        diesel::sql_query(format!("{prefix} VALUES {}", values.join(", "))).execute(conn)?;
        progress(end - start);
        start = end;
    }
    Ok(())
}

/// Whether synthetic product `i` has releases: one in [`RELEASES_EVERY`], never a product of a
/// national line (so that the coverage benchmark's answers stay as they were).
fn has_releases(i: usize, stride: usize, entitlements: usize) -> bool {
    i % RELEASES_EVERY == RELEASES_EVERY / 2 && !(i.is_multiple_of(stride) && i / stride < entitlements)
}

/// One estate item: its snapshot (an index into [`Estates::snapshots`]), product, release (an
/// index into [`RELEASES`]), site, devices, users and the day it was first seen.
struct Item {
    snapshot: usize,
    product: usize,
    release: Option<usize>,
    site: usize,
    devices: i64,
    users: i64,
    first_seen: i64,
}

/// The snapshots (organisation, source) and their items.
struct Estates {
    snapshots: Vec<(usize, &'static str)>,
    items: Vec<Item>,
}

/// Draws the estates (see the module's comment) after everything else has been drawn.
fn plan_estates(
    random: &mut StdRng,
    size: &SyntheticSize,
    stride: usize,
    with_releases: &[usize],
    allocation_rows: &[(usize, usize, i64)],
) -> Estates {
    let mut with_estate = rand::seq::index::sample(random, size.organisations, size.estates).into_vec();
    with_estate.sort_unstable();
    let mut held: BTreeMap<usize, BTreeMap<usize, i64>> =
        with_estate.iter().map(|&organisation| (organisation, BTreeMap::new())).collect();
    for &(organisation, entitlement, quantity) in allocation_rows {
        if let Some(products) = held.get_mut(&organisation) {
            *products.entry(entitlement * stride).or_default() += quantity;
        }
    }
    let mut estates = Estates { snapshots: Vec::new(), items: Vec::new() };
    for (organisation, claimed) in held {
        let wanted = random.random_range(15..=30usize);
        let mut running: BTreeMap<usize, i64> = BTreeMap::new();
        for (&product, &seats) in &claimed {
            if running.len() < wanted && random.random_bool(0.8) {
                running.insert(product, (seats * random.random_range(50..=150) / 100).max(1));
            }
        }
        while running.len() < wanted {
            let product = match random.random_range(0..10) {
                0..3 => random.random_range(0..size.entitlements) * stride,
                3..5 if !with_releases.is_empty() => {
                    with_releases[random.random_range(0..with_releases.len())]
                }
                _ => random.random_range(0..size.products),
            };
            let count = random.random_range(1..=500);
            running.entry(product).or_insert(count);
        }
        let first = estates.snapshots.len();
        let source = if random.random_bool(0.5) { "catalogue" } else { "intune" };
        estates.snapshots.push((organisation, source));
        let per_user = |product: usize| PER_USER_CATEGORIES.contains(&CATEGORIES[product % CATEGORIES.len()]);
        for (&product, &count) in &running {
            let sites = if random.random_bool(0.3) { 2 } else { 1 };
            let mut left = count;
            for site in 0..sites {
                let here = if site + 1 == sites { left } else { random.random_range(0..=left) };
                left -= here;
                if here == 0 {
                    continue;
                }
                let release =
                    with_releases.binary_search(&product).is_ok().then(|| random.random_range(0..3));
                let (devices, users) =
                    if per_user(product) { (random.random_range(0..=here), here) } else { (here, 0) };
                let first_seen = random.random_range(8_766..9_800); // 2024-01-01 to 2026-10-30
                estates.items.push(Item {
                    snapshot: first,
                    product,
                    release,
                    site,
                    devices,
                    users,
                    first_seen,
                });
            }
        }
        // A second source sees some of the same products, counting them a little differently.
        if random.random_bool(0.25) {
            let second = estates.snapshots.len();
            estates.snapshots.push((organisation, "defender"));
            for (&product, &count) in &running {
                if random.random_bool(0.5) {
                    let here = (count * random.random_range(80..=120) / 100).max(1);
                    let release =
                        with_releases.binary_search(&product).is_ok().then(|| random.random_range(0..3));
                    let first_seen = random.random_range(8_766..9_800);
                    // Defender has a row per device: it counts devices only.
                    estates.items.push(Item {
                        snapshot: second,
                        product,
                        release,
                        site: 0,
                        devices: here,
                        users: 0,
                        first_seen,
                    });
                }
            }
        }
    }
    estates
}

/// Generates the data set in one transaction. `progress` receives (rows done, rows in all).
pub fn generate(
    db: &Database,
    size: SyntheticSize,
    progress: &mut dyn FnMut(usize, usize),
) -> DbResult<SyntheticSize> {
    if size.organisations == 0 || size.products == 0 || size.entitlements == 0 {
        return Err(DbError::Invalid(
            "organisations, products and entitlements must each be at least 1".into(),
        ));
    }
    if size.entitlements > size.products {
        return Err(DbError::Invalid("there cannot be more entitlements than products".into()));
    }
    if size.estates > size.organisations {
        return Err(DbError::Invalid("there cannot be more estates than organisations".into()));
    }
    let suppliers = (size.products / 50).max(1);
    let agreements = size.entitlements.div_ceil(20);
    // Each entitlement covers a distinct product, spread over the whole product range.
    let stride = size.products / size.entitlements;
    let with_releases: Vec<usize> =
        (0..size.products).filter(|&i| has_releases(i, stride, size.entitlements)).collect();
    let mut random = StdRng::seed_from_u64(size.seed);
    let stamp = "2026-01-01 00:00:00";
    // Drawn in the order they always were: organisations' kinds, products' dates, allocations.
    let kinds: Vec<&str> = (0..size.organisations).map(|_| pick_kind(&mut random)).collect();
    let lifecycle: Vec<(i64, i64)> = (0..size.products)
        .map(|_| {
            let mainstream = random.random_range(3_000..12_000);
            (mainstream, mainstream + random.random_range(0..2_000))
        })
        .collect();
    let mut seats = vec![0i64; size.entitlements];
    let allocation_rows: Vec<(usize, usize, i64)> = (0..size.allocations)
        .map(|_| {
            let entitlement = random.random_range(0..size.entitlements);
            let quantity = random.random_range(1..=50);
            seats[entitlement] += quantity;
            (random.random_range(0..size.organisations), entitlement, quantity)
        })
        .collect();
    let estates = plan_estates(&mut random, &size, stride, &with_releases, &allocation_rows);
    let mut rows_of = vec![0i64; estates.snapshots.len()];
    for item in &estates.items {
        rows_of[item.snapshot] += 1;
    }
    let total = size.organisations
        + suppliers
        + size.products
        + with_releases.len() * RELEASES.len()
        + agreements
        + size.entitlements
        + size.allocations
        + estates.snapshots.len()
        + estates.items.len();
    let generated = db.write(&Actor::system("seed"), |conn| {
        let first = organisation_code(0);
        let exists: i64 = organisations::table.filter(organisations::code.eq(&first)).count().get_result(conn)?;
        if exists > 0 {
            return Err(DbError::Conflict("synthetic data is already loaded in this database".into()));
        }
        let mut done = 0;
        let mut step = |n: usize| {
            done += n;
            progress(done, total);
        };
        insert_batches(
            conn,
            size.organisations,
            "INSERT INTO organisations (code, name, kind, region, exemplar, source, created_at, updated_at)",
            |i| {
                let exemplar = if kinds[i] == "trust" && i % 10 == 0 { "TRUE" } else { "FALSE" };
                format!(
                    "('{}', 'Synthetic {} {i}', '{}', '{}', {exemplar}, 'synthetic', '{stamp}', '{stamp}')",
                    organisation_code(i),
                    kinds[i],
                    kinds[i],
                    REGIONS[i % REGIONS.len()]
                )
            },
            &mut step,
        )?;
        // Supplier ids follow whatever the database already holds.
        let base_supplier: i64 = diesel::sql_query("SELECT COALESCE(MAX(id), 0) AS max FROM suppliers")
            .get_result::<MaxId>(conn)?
            .max;
        insert_batches(
            conn,
            suppliers,
            "INSERT INTO suppliers (name, source)",
            |i| format!("('Synthetic Supplier {i}', 'synthetic')"),
            &mut step,
        )?;
        let base_product: i64 =
            diesel::sql_query("SELECT COALESCE(MAX(id), 0) AS max FROM products").get_result::<MaxId>(conn)?.max;
        insert_batches(
            conn,
            size.products,
            "INSERT INTO products (supplier_id, name, edition, version, sku, category, released_on, \
             mainstream_support_ends_on, extended_support_ends_on, source, created_at, updated_at)",
            |i| {
                let (mainstream, extended) = lifecycle[i];
                format!(
                    "({}, 'Synthetic Product {i}', 'Edition {}', '{}.0', '{}', '{}', '{}', '{}', '{}', 'synthetic', '{stamp}', '{stamp}')",
                    base_supplier + 1 + (i % suppliers) as i64,
                    i % 3,
                    i % 12,
                    product_sku(i),
                    CATEGORIES[i % CATEGORIES.len()],
                    date(mainstream - 3_000),
                    date(mainstream),
                    date(extended)
                )
            },
            &mut step,
        )?;
        insert_batches(
            conn,
            with_releases.len() * RELEASES.len(),
            "INSERT INTO releases (product_id, name, released_on, active_support_ends_on, security_support_ends_on, \
             extended_updates_end_on, source, created_at, updated_at)",
            |i| {
                let product = with_releases[i / RELEASES.len()];
                let (name, released, active, security, extended) = RELEASES[i % RELEASES.len()];
                format!(
                    "({}, '{name}', {released}, {active}, {security}, {extended}, 'synthetic', '{stamp}', '{stamp}')",
                    base_product + 1 + product as i64
                )
            },
            &mut step,
        )?;
        let base_agreement: i64 =
            diesel::sql_query("SELECT COALESCE(MAX(id), 0) AS max FROM agreements").get_result::<MaxId>(conn)?.max;
        let all_kinds = "trust,icb,gp_practice,csu,national_body,arms_length_body,other";
        insert_batches(
            conn,
            agreements,
            "INSERT INTO agreements (supplier_id, reference, title, starts_on, ends_on, funding_model, status, \
             eligible_kinds, source, created_at, updated_at)",
            |i| {
                format!(
                    "({}, 'SYN-AG-{i:05}', 'Synthetic agreement {i}', '2023-01-01', '2035-12-31', 'central', 'active', \
                     '{all_kinds}', 'synthetic', '{stamp}', '{stamp}')",
                    base_supplier + 1 + (i % suppliers) as i64
                )
            },
            &mut step,
        )?;
        let base_entitlement: i64 =
            diesel::sql_query("SELECT COALESCE(MAX(id), 0) AS max FROM entitlements").get_result::<MaxId>(conn)?.max;
        insert_batches(
            conn,
            size.entitlements,
            "INSERT INTO entitlements (agreement_id, product_id, tier, metric, seat_cap, seats_allocated, \
             over_allocation_policy, eligible_kinds, starts_on, ends_on, how_to_claim, source, created_at, updated_at)",
            |i| {
                // Every tenth line is uncapped; the rest have room for three times what is allocated.
                let cap = if i % 10 == 0 { "NULL".to_owned() } else { (seats[i] * 3 + 100).to_string() };
                format!(
                    "({}, {}, 'national_provision', 'per_device', {cap}, {}, 'block', '{all_kinds}', '2023-01-01', \
                     '2035-12-31', 'Claim through the catalogue', 'synthetic', '{stamp}', '{stamp}')",
                    base_agreement + 1 + (i / 20) as i64,
                    base_product + 1 + (i * stride) as i64,
                    seats[i]
                )
            },
            &mut step,
        )?;
        insert_batches(
            conn,
            size.allocations,
            "INSERT INTO allocations (entitlement_id, organisation_code, quantity, claimed_quantity, status, reference, \
             created_at, updated_at)",
            |i| {
                let (organisation, entitlement, quantity) = allocation_rows[i];
                format!(
                    "({}, '{}', {quantity}, {quantity}, 'live', 'synthetic', '{stamp}', '{stamp}')",
                    base_entitlement + 1 + entitlement as i64,
                    organisation_code(organisation)
                )
            },
            &mut step,
        )?;
        insert_batches(
            conn,
            estates.snapshots.len(),
            "INSERT INTO estate_snapshots (organisation_code, source, taken_on, rows_read, rows_matched, \
             rows_unmatched, imported_at)",
            |i| {
                let (organisation, source) = estates.snapshots[i];
                let rows = rows_of[i];
                format!(
                    "('{}', '{source}', '2026-11-02', {rows}, {rows}, 0, '{stamp}')",
                    organisation_code(organisation)
                )
            },
            &mut step,
        )?;
        // The ids the database gave, read back rather than assumed.
        let snapshot_ids: HashMap<(String, String), i64> = estate_snapshots::table
            .inner_join(organisations::table)
            .filter(organisations::source.eq("synthetic"))
            .select((estate_snapshots::organisation_code, estate_snapshots::source, estate_snapshots::id))
            .load::<(String, String, i64)>(conn)?
            .into_iter()
            .map(|(code, source, id)| ((code, source), id))
            .collect();
        let snapshot_id = |snapshot: usize| -> DbResult<i64> {
            let (organisation, source) = estates.snapshots[snapshot];
            snapshot_ids
                .get(&(organisation_code(organisation), source.to_owned()))
                .copied()
                .ok_or_else(|| DbError::Internal(format!("synthetic snapshot {snapshot} was not written")))
        };
        let release_ids: HashMap<(i64, String), i64> = releases::table
            .inner_join(products::table)
            .filter(products::source.eq("synthetic"))
            .select((releases::product_id, releases::name, releases::id))
            .load::<(i64, String, i64)>(conn)?
            .into_iter()
            .map(|(product, name, id)| ((product, name), id))
            .collect();
        let item_values: Vec<String> = estates
            .items
            .iter()
            .map(|item| {
                let product = base_product + 1 + item.product as i64;
                let release = match item.release {
                    None => "NULL".to_owned(),
                    Some(r) => release_ids
                        .get(&(product, RELEASES[r].0.to_owned()))
                        .map(i64::to_string)
                        .ok_or_else(|| DbError::Internal(format!("product {product} has no synthetic releases")))?,
                };
                Ok(format!(
                    "({}, {product}, {release}, 'Site {}', {}, {}, '{} 09:00:00')",
                    snapshot_id(item.snapshot)?,
                    item.site + 1,
                    item.devices,
                    item.users,
                    date(item.first_seen)
                ))
            })
            .collect::<DbResult<_>>()?;
        insert_batches(
            conn,
            item_values.len(),
            "INSERT INTO estate_items (snapshot_id, product_id, release_id, site, devices, users, first_seen_at)",
            |i| item_values[i].clone(),
            &mut step,
        )?;
        let change = Change::new("seed.synthetic", "seed", "synthetic").after(&size);
        Ok(Audited::one(size, change))
    })?;
    // PostgreSQL plans from table statistics, which its autovacuum gathers some time after a bulk
    // load (and never where it is off, as on the machines the benchmarks run on). Without them
    // the planner hash-joins whole tables: a reconciliation page at 10x took 150-180 ms instead
    // of a few. So the load ends as a deployment's would soon be, analysed. SQLite, which keeps no
    // statistics unless asked, is left as a deployment's would be.
    if db.engine() == Engine::Postgres {
        db.read(|conn| Ok(conn.batch_execute("ANALYZE")?))?;
    }
    Ok(generated)
}

#[derive(QueryableByName)]
struct MaxId {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    max: i64,
}
