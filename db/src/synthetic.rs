//! A national-scale synthetic data set for benchmarks: organisations, suppliers, products,
//! agreements, entitlements and live allocations, reproducible from a seed. Rows are written as
//! multi-row INSERTs (values generated here, never from input), and the ledger's totals are set
//! from the allocations written, so the ledger invariant holds on the result.

use chrono::NaiveDate;
use diesel::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::audit::{Actor, Audited, Change};
use crate::connection::{Database, DbConnection};
use crate::error::{DbError, DbResult};
use crate::schema::organisations;

#[derive(Clone, Copy, Debug, Serialize)]
pub struct SyntheticSize {
    pub organisations: usize,
    pub products: usize,
    pub entitlements: usize,
    pub allocations: usize,
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
    let suppliers = (size.products / 50).max(1);
    let agreements = size.entitlements.div_ceil(20);
    let total =
        size.organisations + suppliers + size.products + agreements + size.entitlements + size.allocations;
    let mut random = StdRng::seed_from_u64(size.seed);
    let stamp = "2026-01-01 00:00:00";
    db.write(&Actor::system("seed"), |conn| {
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
        let kinds: Vec<&str> = (0..size.organisations).map(|_| pick_kind(&mut random)).collect();
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
        let lifecycle: Vec<(i64, i64)> = (0..size.products)
            .map(|_| {
                let mainstream = random.random_range(3_000..12_000);
                (mainstream, mainstream + random.random_range(0..2_000))
            })
            .collect();
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
        // Each entitlement covers a distinct product, spread over the whole product range.
        let stride = size.products / size.entitlements;
        let mut seats = vec![0i64; size.entitlements];
        let allocation_rows: Vec<(usize, usize, i64)> = (0..size.allocations)
            .map(|_| {
                let entitlement = random.random_range(0..size.entitlements);
                let quantity = random.random_range(1..=50);
                seats[entitlement] += quantity;
                (random.random_range(0..size.organisations), entitlement, quantity)
            })
            .collect();
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
        let change = Change::new("seed.synthetic", "seed", "synthetic").after(&size);
        Ok(Audited::one(size, change))
    })
}

#[derive(QueryableByName)]
struct MaxId {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    max: i64,
}
