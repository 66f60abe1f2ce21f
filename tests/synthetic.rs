//! The synthetic national-scale data set: reproducible from its seed, true to the ledger, and
//! with estates that give the reconciliation report every flag.

use std::collections::BTreeSet;

use catalogue_tests::{TestDatabase, on_both_databases};
use chrono::NaiveDate;
use db::PageRequest;
use db::reconciliation::ReconciliationFilter;
use db::schema::{allocations, entitlements, estate_items, estate_snapshots, organisations};
use db::synthetic::{SyntheticSize, generate};
use db::vocabulary::ReconciliationFlag;
use diesel::prelude::*;

const SIZE: SyntheticSize = SyntheticSize {
    organisations: 300,
    products: 250,
    entitlements: 20,
    allocations: 2_000,
    estates: 30,
    seed: 7,
};

/// (organisation code, source, product's SKU, release's name, site, devices, users) of every
/// synthetic estate item, in order.
type ItemPrint = (String, String, Option<String>, Option<String>, String, i64, i64);

fn estate_fingerprint(test_db: &TestDatabase) -> Vec<ItemPrint> {
    use db::schema::{products, releases};
    test_db
        .db
        .read(|conn| {
            Ok(estate_items::table
                .inner_join(estate_snapshots::table)
                .inner_join(products::table)
                .left_join(releases::table.on(estate_items::release_id.eq(releases::id.nullable())))
                .order(estate_items::id)
                .select((
                    estate_snapshots::organisation_code,
                    estate_snapshots::source,
                    products::sku,
                    releases::name.nullable(),
                    estate_items::site,
                    estate_items::devices,
                    estate_items::users,
                ))
                .load(conn)?)
        })
        .unwrap()
}

/// (organisation code, entitlement's product, quantity) of every synthetic allocation, in order.
fn fingerprint(test_db: &TestDatabase) -> Vec<(String, i64, i64)> {
    test_db
        .db
        .read(|conn| {
            Ok(allocations::table
                .inner_join(entitlements::table)
                .filter(allocations::reference.eq("synthetic"))
                .order(allocations::id)
                .select((allocations::organisation_code, entitlements::product_id, allocations::quantity))
                .load(conn)?)
        })
        .unwrap()
}

fn the_same_seed_gives_the_same_data_and_a_true_ledger(test_db: TestDatabase) {
    let mut calls = 0;
    generate(&test_db.db, SIZE, &mut |done, total| {
        calls += 1;
        assert!(done <= total);
    })
    .unwrap();
    assert!(calls > 0, "progress is reported");
    let organisations_count: i64 = test_db
        .db
        .read(|conn| {
            Ok(organisations::table.filter(organisations::source.eq("synthetic")).count().get_result(conn)?)
        })
        .unwrap();
    assert_eq!(organisations_count, 300);
    let first = fingerprint(&test_db);
    assert_eq!(first.len(), 2_000);

    // The ledger's totals equal the live allocations, within every cap.
    let lines: Vec<(i64, Option<i64>, i64)> = test_db
        .db
        .read(|conn| {
            Ok(entitlements::table
                .filter(entitlements::source.eq("synthetic"))
                .select((entitlements::id, entitlements::seat_cap, entitlements::seats_allocated))
                .load(conn)?)
        })
        .unwrap();
    assert_eq!(lines.len(), 20);
    for (id, cap, allocated) in lines {
        let live = test_db.db.read(|conn| db::ledger::live_total(conn, id)).unwrap();
        assert_eq!(live, allocated, "entitlement {id}");
        assert!(cap.is_none_or(|cap| allocated <= cap));
    }

    // A tenth of the organisations have estates, of one source or two, and the reconciliation
    // of them meets every flag.
    let with_estate: BTreeSet<String> = test_db
        .db
        .read(|conn| Ok(estate_snapshots::table.select(estate_snapshots::organisation_code).load(conn)?))
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(with_estate.len(), 30);
    let items = estate_fingerprint(&test_db);
    assert!((30 * 15..=30 * 60).contains(&items.len()), "{} items", items.len());
    let on = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
    let rows = test_db.db.read(|conn| db::reconciliation::all_rows(conn, &Default::default(), on)).unwrap();
    let flags: BTreeSet<&str> = rows.iter().flat_map(|row| row.flags.iter().map(|f| f.as_str())).collect();
    assert_eq!(flags, BTreeSet::from(["running_unsupported", "under_claimed", "unlicensed", "unused"]));
    // Page by page (the report walks the organisations in chunks) it is the same rows, also where
    // a flag leaves most of them out.
    for flag in [None, Some(ReconciliationFlag::RunningUnsupported)] {
        let filter = ReconciliationFilter { flag, ..Default::default() };
        let whole = test_db.db.read(|conn| db::reconciliation::all_rows(conn, &filter, on)).unwrap();
        let mut paged = Vec::new();
        let mut cursor = None;
        loop {
            let page = PageRequest { limit: Some(13), cursor };
            let found = test_db.db.read(|conn| db::reconciliation::report(conn, &filter, on, &page)).unwrap();
            paged.extend(found.items);
            cursor = found.next_cursor;
            if cursor.is_none() {
                break;
            }
        }
        assert!(paged == whole, "{filter:?}: {} rows paged, {} in all", paged.len(), whole.len());
        assert!(flag.is_none() || whole.len() < rows.len());
    }

    // A second run is refused; another database with the same seed gets the same data.
    assert!(generate(&test_db.db, SIZE, &mut |_, _| {}).is_err());
    let other = catalogue_tests::seeded_database(test_db_engine(&test_db)).unwrap();
    generate(&other.db, SIZE, &mut |_, _| {}).unwrap();
    let ids_differ_only_by_offset = fingerprint(&other);
    assert_eq!(
        first.iter().map(|(code, _, q)| (code.clone(), *q)).collect::<Vec<_>>(),
        ids_differ_only_by_offset.iter().map(|(code, _, q)| (code.clone(), *q)).collect::<Vec<_>>()
    );
    assert_eq!(estate_fingerprint(&other), items);
}

fn test_db_engine(test_db: &TestDatabase) -> catalogue_tests::Engine {
    test_db.db.engine()
}

on_both_databases!(the_same_seed_gives_the_same_data_and_a_true_ledger);
