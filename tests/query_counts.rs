//! Lists are read in a fixed number of SQL statements, however many rows they hold: each row's
//! related records come from a join or from one batched read, never from a query per row. Each
//! test counts the statements diesel starts (`InstrumentationEvent::StartQuery`) for a small
//! list and for a larger one, on both engines. A page of the reconciliation report takes the same
//! statements for a country ten times the size, none of them reading every organisation's rows
//! (a guard on its cost that needs no clock).

use std::sync::{Arc, Mutex};

use catalogue_tests::{TestDatabase, on_both_databases};
use chrono::{NaiveDate, NaiveDateTime};
use db::advisories::{AdvisoryFields, Severity};
use db::agreements::{AgreementFields, EntitlementFields};
use db::coverage::Subject;
use db::purchases::NewPurchase;
use db::standards::Outcome;
use db::vocabulary::{AgreementStatus, FundingModel, Metric, OrganisationKind, OverAllocationPolicy, Tier};
use db::{Actor, Database, DbConnection, PageRequest};
use diesel::connection::{Connection, InstrumentationEvent};
use diesel::prelude::*;

/// Runs `work` on one connection and counts the SQL statements it starts.
fn count_statements<T>(db: &Database, work: impl FnOnce(&mut DbConnection) -> T) -> (T, usize) {
    let (result, statements) = statements_of(db, work);
    (result, statements.len())
}

/// Runs `work` on one connection and answers the SQL of the statements it starts.
fn statements_of<T>(db: &Database, work: impl FnOnce(&mut DbConnection) -> T) -> (T, Vec<String>) {
    let mut conn = db.connection().unwrap_or_else(|e| panic!("connection: {e}"));
    let started = Arc::new(Mutex::new(Vec::new()));
    let log = started.clone();
    conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
        if let InstrumentationEvent::StartQuery { query, .. } = event
            && let Ok(mut log) = log.lock()
        {
            log.push(query.to_string());
        }
    });
    let result = work(&mut conn);
    // The connection goes back to the pool: leave it as it was.
    conn.set_instrumentation(|_: InstrumentationEvent<'_>| {});
    let statements = started.lock().map(|s| s.clone()).unwrap_or_default();
    (result, statements)
}

fn actor() -> Actor {
    Actor::system("query-count test")
}

fn today() -> NaiveDate {
    chrono::Utc::now().date_naive()
}

fn big_page() -> PageRequest {
    PageRequest { limit: Some(db::page::MAX_LIMIT), cursor: None }
}

const ORGANISATION: &str = "RR8";

/// A purchase for `organisation` against the first published standard, declaring every MUST
/// met: of `product` when given, else of a described item.
fn purchase(db: &Database, organisation: &str, product: Option<i64>, serial: usize) -> NewPurchase {
    let guidance = db
        .read(|conn| db::guidance::published(conn, None, today()))
        .unwrap_or_else(|e| panic!("published standards: {e}"));
    let standard = guidance.first().unwrap_or_else(|| panic!("the seeds publish a standard"));
    let declarations: Vec<Outcome> = standard
        .requirements
        .iter()
        .filter(|r| r.level == "MUST")
        .map(|r| Outcome { requirement: r.code.clone(), met: true, evaluated: None, note: None })
        .collect();
    let evidence = declarations.iter().map(|_| Some("https://example.nhs.uk/evidence".to_owned())).collect();
    NewPurchase {
        organisation_code: organisation.into(),
        product_id: product,
        description: product.is_none().then(|| format!("Test item {serial}")),
        category: standard.category.clone(),
        standard_id: standard.standard_id,
        version: standard.version,
        purchased_on: today(),
        quantity: 1 + serial as i64,
        unit_cost_pence: 100,
        order_reference: format!("PO-{organisation}-{serial}"),
        declarations,
        evidence,
        supersedes_id: None,
    }
}

/// Records a purchase for [`ORGANISATION`]; every third one corrects the one before it.
fn buy(db: &Database, serial: usize, supersedes_id: Option<i64>) -> i64 {
    let new = NewPurchase { supersedes_id, ..purchase(db, ORGANISATION, None, serial) };
    db::purchases::record(db, &actor(), new).unwrap_or_else(|e| panic!("purchase {serial}: {e}")).id
}

/// Records a purchase of `product` for `organisation`: what exposes the organisation to an
/// advisory about the product.
fn buy_product(db: &Database, organisation: &str, product: i64, serial: usize) {
    let new = purchase(db, organisation, Some(product), serial);
    db::purchases::record(db, &actor(), new).unwrap_or_else(|e| panic!("purchase by {organisation}: {e}"));
}

/// An advisory's exposure reads the organisations it exposes, their names and their responses
/// in the same statements for one organisation or many; one organisation's standing (the start
/// page's) is the national exposure's line for it, read without the others' holdings.
fn an_exposure_takes_the_same_statements_for_one_organisation_or_many(test_db: TestDatabase) {
    let db = &test_db.db;
    // A product the first published standard may be bought for: its category.
    let category = db
        .read(|conn| db::guidance::published(conn, None, today()))
        .unwrap_or_else(|e| panic!("published standards: {e}"))
        .first()
        .map(|standard| standard.category.clone())
        .unwrap_or_else(|| panic!("the seeds publish a standard"));
    let product = db
        .read(|conn| {
            Ok(db::schema::products::table
                .filter(db::schema::products::category.eq(&category))
                .select(db::schema::products::id)
                .order(db::schema::products::id)
                .first::<i64>(conn)?)
        })
        .unwrap_or_else(|e| panic!("a product in {category}: {e}"));
    let published_at = chrono::Utc::now().naive_utc() - chrono::Duration::days(3);
    let fields = AdvisoryFields {
        reference: "TEST-EXPOSURE".into(),
        title: "Exposure test".into(),
        severity: Severity::High,
        published_at,
        remediation: "Patch.".into(),
        links: Vec::new(),
        affected_product_ids: vec![product],
        source: None,
    };
    let advisory =
        db::advisories::create(db, &actor(), fields).unwrap_or_else(|e| panic!("advisory: {e}")).id;
    let trusts: Vec<String> = db
        .read(|conn| {
            Ok(db::schema::organisations::table
                .filter(db::schema::organisations::kind.eq(OrganisationKind::Trust))
                .filter(db::schema::organisations::closed_on.is_null())
                .select(db::schema::organisations::code)
                .order(db::schema::organisations::code)
                .limit(25)
                .load(conn)?)
        })
        .unwrap_or_else(|e| panic!("trusts: {e}"));
    assert_eq!(trusts.len(), 25, "the seeds hold the country's trusts");
    let now = chrono::Utc::now().naive_utc();
    let mut counts = Vec::new();
    for exposed in [1, 5, 25] {
        while counts.len() < exposed && counts.len() < trusts.len() {
            let serial = counts.len();
            buy_product(db, &trusts[serial], product, serial);
            counts.push(0);
        }
        let (exposure, statements) =
            count_statements(db, |conn| db::advisories::exposure(conn, advisory, now));
        let exposure = exposure.unwrap_or_else(|e| panic!("exposure: {e}"));
        assert_eq!(exposure.organisations.len(), exposed);
        counts[exposed - 1] = statements;
        let last = &trusts[exposed - 1];
        let national = exposure
            .organisations
            .iter()
            .find(|o| &o.organisation_code == last)
            .map(|o| (o.status, o.acknowledge_by));
        let standing = db
            .read(|conn| db::advisories::report_since(conn, Some(&last.to_lowercase()), None, now))
            .unwrap_or_else(|e| panic!("report: {e}"));
        let own: Vec<_> = standing
            .iter()
            .filter(|s| s.advisory_id == advisory)
            .map(|s| (s.status, s.acknowledge_by))
            .collect();
        assert_eq!(
            own,
            national.into_iter().collect::<Vec<_>>(),
            "{last}'s standing is its line of the exposure"
        );
        assert!(standing.iter().all(|s| &s.organisation_code == last), "only {last}'s standing");
    }
    let measured = [counts[0], counts[4], counts[24]];
    assert!(
        measured.iter().all(|count| *count == measured[0]),
        "statements for 1, 5 and 25 exposed: {measured:?}"
    );
}

/// Grows the organisation's purchases to `total`, and answers the rows and statements of its
/// list with superseded purchases and without.
fn purchases_grown_to(db: &Database, total: usize, made: &mut Vec<i64>) -> [(usize, usize); 2] {
    while made.len() < total {
        let serial = made.len();
        let supersedes = (serial % 3 == 2).then(|| made[serial - 1]);
        made.push(buy(db, serial, supersedes));
    }
    [true, false].map(|include_superseded| {
        let (page, statements) = count_statements(db, |conn| {
            db::purchases::list(conn, ORGANISATION, include_superseded, &big_page())
        });
        let page = page.unwrap_or_else(|e| panic!("list purchases: {e}"));
        // The batched list answers exactly what reading each purchase alone does.
        for purchase in &page.items {
            let alone = db.read(|conn| db::purchases::get(conn, purchase.id));
            assert_eq!(alone.as_ref().ok(), Some(purchase));
        }
        (page.items.len(), statements)
    })
}

fn listing_purchases_takes_the_same_statements_for_few_rows_or_many(test_db: TestDatabase) {
    let db = &test_db.db;
    let mut made = Vec::new();
    let counts: Vec<[(usize, usize); 2]> = [1, 5, 30].map(|n| purchases_grown_to(db, n, &mut made)).to_vec();
    assert_eq!(counts.iter().map(|[all, _]| all.0).collect::<Vec<_>>(), [1, 5, 30]);
    let superseded =
        db.read(|conn| db::purchases::get(conn, made[1])).unwrap_or_else(|e| panic!("{e}")).superseded_by_id;
    assert_eq!(superseded, Some(made[2]), "the list shows corrections");
    for series in [0, 1] {
        let statements: Vec<(usize, usize)> = counts.iter().map(|pair| pair[series]).collect();
        assert!(
            statements.iter().all(|(_, count)| *count == statements[0].1),
            "(purchases, statements) with superseded ones {}: {statements:?}",
            if series == 0 { "listed" } else { "left out" }
        );
    }
}

fn any_product_ids(db: &Database, how_many: i64) -> Vec<i64> {
    db.read(|conn| {
        Ok(db::schema::products::table
            .select(db::schema::products::id)
            .order(db::schema::products::id)
            .limit(how_many)
            .load(conn)?)
    })
    .unwrap_or_else(|e| panic!("products: {e}"))
}

fn listing_advisories_takes_the_same_statements_for_few_rows_or_many(test_db: TestDatabase) {
    let db = &test_db.db;
    let products = any_product_ids(db, 3);
    let seeded = db
        .read(|conn| db::advisories::list(conn, None, db::AddedOrder::OldestFirst, &big_page()))
        .unwrap_or_else(|e| panic!("{e}"))
        .items
        .len();
    let published_at: NaiveDateTime =
        NaiveDate::from_ymd_opt(2026, 1, 5).and_then(|d| d.and_hms_opt(9, 0, 0)).unwrap_or_default();
    let mut counts = Vec::new();
    let mut made = 0;
    for added in [0, 5, 25] {
        while made < added {
            let fields = AdvisoryFields {
                reference: format!("TEST-{made:04}"),
                title: format!("Test advisory {made}"),
                severity: Severity::High,
                published_at,
                remediation: "Patch.".into(),
                links: vec![format!("https://example.nhs.uk/advisories/{made}")],
                affected_product_ids: products[..1 + made % products.len()].to_vec(),
                source: None,
            };
            db::advisories::create(db, &actor(), fields).unwrap_or_else(|e| panic!("advisory: {e}"));
            made += 1;
        }
        let (page, statements) = count_statements(db, |conn| {
            db::advisories::list(conn, None, db::AddedOrder::OldestFirst, &big_page())
        });
        let page = page.unwrap_or_else(|e| panic!("list advisories: {e}"));
        assert_eq!(page.items.len(), seeded + added);
        for advisory in &page.items {
            let alone = db.read(|conn| db::advisories::get(conn, advisory.id));
            assert_eq!(alone.as_ref().ok(), Some(advisory));
        }
        counts.push((page.items.len(), statements));
    }
    assert!(
        counts.iter().all(|(_, count)| *count == counts[0].1),
        "(advisories listed, statements): {counts:?}"
    );
}

fn coverage_takes_the_same_statements_for_one_agreement_or_many(test_db: TestDatabase) {
    let db = &test_db.db;
    let product = any_product_ids(db, 1)[0];
    let supplier_id: i64 = db
        .read(|conn| {
            Ok(db::schema::products::table
                .find(product)
                .select(db::schema::products::supplier_id)
                .first(conn)?)
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let starts_on = NaiveDate::from_ymd_opt(2020, 1, 1).unwrap_or_default();
    let mut counts = Vec::new();
    let mut made = 0;
    for added in [1, 4, 12] {
        while made < added {
            let agreement = db::agreements::create(
                db,
                &actor(),
                AgreementFields {
                    supplier_id,
                    reference: format!("TEST-AGR-{made}"),
                    title: format!("Test agreement {made}"),
                    framework_reference: None,
                    starts_on,
                    ends_on: None,
                    funding_model: FundingModel::Central,
                    status: AgreementStatus::Active,
                    eligible_kinds: OrganisationKind::ALL.to_vec(),
                    source: None,
                    value_minor: Some(100 * made as i64),
                    currency: "GBP".into(),
                    reseller_id: Some(supplier_id),
                    framework_lot: None,
                    initial_term_months: Some(12),
                    notice_urls: vec![],
                    commercial_source: None,
                    buyer: None,
                    extension_options: vec![db::agreements::NewExtensionOption {
                        months: 12,
                        decide_by: starts_on,
                        decision: None,
                        decided_on: None,
                        source: None,
                    }],
                },
            )
            .unwrap_or_else(|e| panic!("agreement: {e}"));
            let line = EntitlementFields {
                product_id: product,
                tier: Tier::TopUp,
                metric: Metric::PerDevice,
                seat_cap: Some(10 + made as i64),
                over_allocation_policy: OverAllocationPolicy::Block,
                eligible_kinds: OrganisationKind::ALL.to_vec(),
                starts_on,
                ends_on: None,
                how_to_claim: None,
                requires_approval: false,
                per_organisation_cap: None,
                nhsmail_service: None,
                source: None,
            };
            db::agreements::create_entitlement(db, &actor(), agreement.id, line, Vec::new())
                .unwrap_or_else(|e| panic!("entitlement: {e}"));
            made += 1;
        }
        let (coverage, statements) = count_statements(db, |conn| {
            db::coverage::answer(conn, ORGANISATION, Subject::Product(product, None), today())
        });
        let coverage = coverage.unwrap_or_else(|e| panic!("coverage: {e}"));
        assert!(coverage.licences.len() >= added, "{added} agreements: {coverage:?}");
        counts.push((added, statements));
    }
    assert!(
        counts.iter().all(|(_, count)| *count == counts[0].1),
        "(agreements added with a line for the product, statements): {counts:?}"
    );
}

/// Whether a statement reads rows of organisations (theirs, or what they run, hold or take)
/// without naming which (an `IN` list of codes, or `= ANY` on PostgreSQL) or stopping at a
/// `LIMIT`: a read of the whole country.
fn reads_the_whole_country(statement: &str) -> bool {
    let sql = statement.split(" -- binds").next().unwrap_or(statement).replace(['`', '"'], "");
    let per_organisation = [
        "organisations.",
        "estate_snapshots.",
        "estate_items.",
        "allocations.",
        "purchases.",
        "nhsmail_service_periods.",
    ];
    per_organisation.iter().any(|table| sql.contains(table))
        && !(sql.contains(" LIMIT ") || sql.contains(" IN (") || sql.contains("= ANY("))
}

/// The reconciliation's first page, the next one and one organisation's report, on synthetic
/// countries of 300 and 3,000 organisations (a tenth with estates): the same statements for both,
/// none of which reads every organisation's rows (the page used to read the whole country).
fn a_reconciliation_page_takes_the_same_statements_for_a_country_ten_times_the_size(test_db: TestDatabase) {
    use db::reconciliation::{ReconciliationFilter, report};
    use db::synthetic::{SyntheticSize, generate};
    let on = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap_or_default();
    let larger =
        catalogue_tests::seeded_database(test_db.db.engine()).unwrap_or_else(|| panic!("a second database"));
    let mut counts = Vec::new();
    for (db, organisations) in [(&test_db.db, 300), (&larger.db, 3_000)] {
        let size = SyntheticSize {
            organisations,
            products: 250,
            entitlements: 20,
            allocations: organisations * 8,
            estates: organisations / 10,
            seed: 11,
        };
        generate(db, size, &mut |_, _| {}).unwrap_or_else(|e| panic!("synthetic: {e}"));
        let national = ReconciliationFilter::default();
        let first_page = PageRequest { limit: Some(50), cursor: None };
        let (first, first_statements) = statements_of(db, |conn| report(conn, &national, on, &first_page));
        let first = first.unwrap_or_else(|e| panic!("first page: {e}"));
        assert_eq!(first.items.len(), 50);
        let next_page = PageRequest { limit: Some(50), cursor: first.next_cursor.clone() };
        let (next, next_statements) = statements_of(db, |conn| report(conn, &national, on, &next_page));
        assert_eq!(next.unwrap_or_else(|e| panic!("next page: {e}")).items.len(), 50);
        let one = ReconciliationFilter {
            organisation: Some(first.items[0].organisation_code.clone()),
            ..ReconciliationFilter::default()
        };
        let (own, own_statements) = statements_of(db, |conn| report(conn, &one, on, &first_page));
        assert!(!own.unwrap_or_else(|e| panic!("one organisation: {e}")).items.is_empty());
        for statement in first_statements.iter().chain(&next_statements).chain(&own_statements) {
            assert!(!reads_the_whole_country(statement), "{statement}");
        }
        counts.push((organisations, first_statements.len(), next_statements.len(), own_statements.len()));
    }
    assert!(
        counts
            .iter()
            .all(|&(_, first, next, own)| (first, next, own) == (counts[0].1, counts[0].2, counts[0].3)),
        "(organisations, statements for the first page, the next, one organisation's): {counts:?}"
    );
}

on_both_databases!(
    a_reconciliation_page_takes_the_same_statements_for_a_country_ten_times_the_size,
    listing_purchases_takes_the_same_statements_for_few_rows_or_many,
    listing_advisories_takes_the_same_statements_for_few_rows_or_many,
    coverage_takes_the_same_statements_for_one_agreement_or_many,
    an_exposure_takes_the_same_statements_for_one_organisation_or_many,
);
