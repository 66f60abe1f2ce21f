//! Loading the shipped seed data in `seeds/` (embedded in the binary, so it works from any
//! directory). Idempotent: each record is found by its natural key and only inserted when absent.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::audit::{Actor, Audited, Change, now};
use crate::connection::{Database, DbConnection};
use crate::error::{DbError, DbResult};
use crate::lifecycle;
use crate::schema::*;

const ORGANISATIONS: &str = include_str!("../../seeds/organisations.json");
const PRODUCTS: &str = include_str!("../../seeds/products.json");
const AGREEMENTS: &str = include_str!("../../seeds/agreements.json");
const STANDARDS: &str = include_str!("../../seeds/standards.json");
const ADVISORIES: &str = include_str!("../../seeds/advisories.json");
const LIFECYCLE: &str = include_str!("../../seeds/lifecycle.json");
/// endoflife.date API v1 product documents (MIT), as shipped in `seeds/endoflife/`, with the date
/// the copy was generated: the releases of the embedded default are synced from these.
const ENDOFLIFE_DOCUMENTS: [(&str, &str); 4] = [
    ("windows", include_str!("../../seeds/endoflife/windows.json")),
    ("windows-server", include_str!("../../seeds/endoflife/windows-server.json")),
    ("mssqlserver", include_str!("../../seeds/endoflife/mssqlserver.json")),
    ("office", include_str!("../../seeds/endoflife/office.json")),
];
const ENDOFLIFE_GENERATED: &str = "2026-11-30T00:00:00Z";
/// ODS's national file of NHS trusts, as published in 2026 (see seeds/README.md).
const ODS_TRUSTS: &[u8] = include_bytes!("../../seeds/ods/etr.csv");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedOrganisation {
    code: String,
    name: String,
    kind: String,
    region: Option<String>,
    exemplar: bool,
    closed_on: Option<NaiveDate>,
    successor: Option<String>,
    source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedProduct {
    supplier: String,
    name: String,
    edition: Option<String>,
    version: Option<String>,
    sku: String,
    category: String,
    released_on: Option<NaiveDate>,
    mainstream_support_ends_on: Option<NaiveDate>,
    extended_support_ends_on: Option<NaiveDate>,
    #[serde(default)]
    dtac_passed: bool,
    #[serde(default)]
    mds2_supplied: bool,
    source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedAgreement {
    reference: String,
    supplier: String,
    title: String,
    framework_reference: Option<String>,
    starts_on: NaiveDate,
    ends_on: Option<NaiveDate>,
    funding_model: String,
    status: String,
    eligible_kinds: Vec<String>,
    source: String,
    /// The commercial record (issue 16; `seeds/commercial.md` holds the table behind each fact).
    #[serde(default)]
    value_minor: Option<i64>,
    #[serde(default = "default_currency")]
    currency: String,
    #[serde(default)]
    reseller: Option<String>,
    #[serde(default)]
    framework_lot: Option<String>,
    #[serde(default)]
    initial_term_months: Option<i32>,
    #[serde(default)]
    notice_urls: Vec<String>,
    /// Required whenever any commercial fact is given.
    #[serde(default)]
    commercial_source: Option<String>,
    #[serde(default)]
    extension_options: Vec<SeedExtension>,
    /// The contracting authority, as the agreement's `source` names it.
    #[serde(default)]
    buyer: Option<String>,
    entitlements: Vec<SeedEntitlement>,
}

fn default_currency() -> String {
    "GBP".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedExtension {
    months: i32,
    decide_by: NaiveDate,
    decision: Option<String>,
    decided_on: Option<NaiveDate>,
    source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedEntitlement {
    product_sku: String,
    tier: String,
    metric: String,
    seat_cap: Option<i64>,
    over_allocation_policy: String,
    eligible_kinds: Vec<String>,
    starts_on: NaiveDate,
    ends_on: Option<NaiveDate>,
    how_to_claim: Option<String>,
    source: String,
    obligations: Vec<SeedObligation>,
    #[serde(default)]
    requires_approval: bool,
    #[serde(default)]
    per_organisation_cap: Option<i64>,
    /// `standard` or `enhanced`: the line is that NHSmail service's national provision.
    #[serde(default)]
    nhsmail_service: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedObligation {
    description: String,
    due_on: Option<NaiveDate>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedStandard {
    publisher: String,
    category: String,
    title: String,
    source: String,
    versions: Vec<SeedVersion>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedVersion {
    number: i32,
    status: String,
    summary: Option<String>,
    published_at: Option<DateTime<Utc>>,
    requirements: Vec<SeedRequirement>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedRequirement {
    code: String,
    text: String,
    level: String,
    criterion: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedAdvisory {
    reference: String,
    title: String,
    severity: String,
    published_at: DateTime<Utc>,
    remediation: String,
    links: Vec<String>,
    affected_skus: Vec<String>,
    source: String,
}

/// A product's lifecycle: where its releases come from, and its successor.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedLifecycle {
    sku: String,
    eol_product: String,
    /// Catalogue release name -> endoflife.date release cycle.
    releases: std::collections::BTreeMap<String, String>,
    successor_sku: Option<String>,
    successor_source: Option<String>,
}

/// How many records of each kind a load inserted.
#[derive(Debug, Default, Serialize, PartialEq, Eq, Clone, Copy)]
pub struct SeedCounts {
    pub organisations: usize,
    pub products: usize,
    pub agreements: usize,
    pub entitlements: usize,
    pub standards: usize,
    pub advisories: usize,
    pub releases: usize,
}

impl SeedCounts {
    pub fn total(&self) -> usize {
        self.organisations
            + self.products
            + self.agreements
            + self.entitlements
            + self.standards
            + self.advisories
            + self.releases
    }
}

fn parse<T: for<'de> Deserialize<'de>>(name: &str, text: &str) -> DbResult<Vec<T>> {
    serde_json::from_str(text).map_err(|e| DbError::Invalid(format!("seeds/{name}.json: {e}")))
}

/// Loads the shipped seeds in one transaction, reporting progress as (records done, total).
pub fn load_shipped(db: &Database, progress: &mut dyn FnMut(usize, usize)) -> DbResult<SeedCounts> {
    let organisations: Vec<SeedOrganisation> = parse("organisations", ORGANISATIONS)?;
    let products: Vec<SeedProduct> = parse("products", PRODUCTS)?;
    let agreements: Vec<SeedAgreement> = parse("agreements", AGREEMENTS)?;
    let standards: Vec<SeedStandard> = parse("standards", STANDARDS)?;
    let advisories: Vec<SeedAdvisory> = parse("advisories", ADVISORIES)?;
    let lifecycles: Vec<SeedLifecycle> = parse("lifecycle", LIFECYCLE)?;
    let total = organisations.len()
        + products.len()
        + agreements.len()
        + standards.len()
        + advisories.len()
        + lifecycles.len();
    let trusts = crate::ods::parse(crate::ods::OdsFileKind::Etr, ODS_TRUSTS)?;

    db.write(&Actor::system("seed"), |conn| {
        let mut counts = SeedCounts::default();
        let mut done = 0;
        let mut step = |done: &mut usize| {
            *done += 1;
            progress(*done, total);
        };
        for organisation in &organisations {
            counts.organisations += insert_organisation(conn, organisation)?;
            step(&mut done);
        }
        counts.organisations += crate::ods::seed(conn, crate::ods::OdsFileKind::Etr, &trusts)?;
        for product in &products {
            counts.products += insert_product(conn, product)?;
            step(&mut done);
        }
        for agreement in &agreements {
            let (agreements, entitlements) = insert_agreement(conn, agreement)?;
            counts.agreements += agreements;
            counts.entitlements += entitlements;
            step(&mut done);
        }
        for standard in &standards {
            counts.standards += insert_standard(conn, standard)?;
            step(&mut done);
        }
        for advisory in &advisories {
            counts.advisories += insert_advisory(conn, advisory)?;
            step(&mut done);
        }
        // Releases go through the same sync as `catalogue lifecycle sync`, from the shipped
        // documents, so the embedded default and a synced catalogue hold the same dates.
        for lifecycle in &lifecycles {
            insert_lifecycle(conn, lifecycle)?;
            step(&mut done);
        }
        let documents = shipped_documents()?;
        let mut plan = lifecycle::plan(conn, &documents)?;
        // Seeding only adds what is missing: dates already held may be newer than the shipped copy.
        plan.changes.retain(|change| matches!(change, lifecycle::PlannedChange::Add { .. }));
        counts.releases += plan.changes.len();
        lifecycle::apply_plan(conn, &plan)?;
        if counts.total() == 0 {
            return Ok(Audited::unchanged(counts));
        }
        Ok(Audited::one(counts, Change::new("seed.load", "seed", "shipped").after(&counts)))
    })
}

fn shipped_documents() -> DbResult<Vec<lifecycle::Fetched>> {
    let fetched_at = chrono::DateTime::parse_from_rfc3339(ENDOFLIFE_GENERATED)
        .map_err(|e| DbError::Internal(format!("seed document date: {e}")))?
        .with_timezone(&Utc);
    ENDOFLIFE_DOCUMENTS
        .iter()
        .map(|(product, text)| {
            Ok(lifecycle::Fetched {
                document: lifecycle::EolDocument::parse(product, text)?,
                location: format!("seeds/endoflife/{product}.json (endoflife.date API v1)"),
                fetched_at,
            })
        })
        .collect()
}

fn insert_lifecycle(conn: &mut DbConnection, seed: &SeedLifecycle) -> DbResult<()> {
    let product = product_id(conn, &seed.sku)?;
    // Like every seed record, found by its key and left alone when present (an admin may have
    // edited the mapping or the successor since).
    if !lifecycle::sources(conn, Some(product))?.is_empty() {
        return Ok(());
    }
    if let Some(successor) = &seed.successor_sku {
        if seed.successor_source.is_none() {
            return Err(DbError::Invalid(format!(
                "seeds/lifecycle.json: {}'s successor names no source",
                seed.sku
            )));
        }
        let successor = product_id(conn, successor)?;
        diesel::update(products::table.find(product))
            .set(products::successor_id.eq(successor))
            .execute(conn)?;
    }
    let sources: Vec<lifecycle::LifecycleSource> = seed
        .releases
        .iter()
        .map(|(release_name, eol_release)| lifecycle::LifecycleSource {
            id: 0,
            product_id: product,
            release_name: release_name.clone(),
            eol_product: seed.eol_product.clone(),
            eol_release: eol_release.clone(),
        })
        .collect();
    lifecycle::replace_sources(conn, product, &sources)?;
    Ok(())
}

/// True when the catalogue holds no organisations yet: a fresh database to seed.
pub fn is_empty(conn: &mut DbConnection) -> DbResult<bool> {
    let count: i64 = organisations::table.count().get_result(conn)?;
    Ok(count == 0)
}

fn insert_organisation(conn: &mut DbConnection, seed: &SeedOrganisation) -> DbResult<usize> {
    let exists: i64 =
        organisations::table.filter(organisations::code.eq(&seed.code)).count().get_result(conn)?;
    if exists > 0 {
        return Ok(0);
    }
    let stamp = now();
    diesel::insert_into(organisations::table)
        .values((
            organisations::code.eq(&seed.code),
            organisations::name.eq(&seed.name),
            organisations::kind.eq(&seed.kind),
            organisations::region.eq(&seed.region),
            organisations::exemplar.eq(seed.exemplar),
            organisations::closed_on.eq(seed.closed_on),
            organisations::successor_code.eq(&seed.successor),
            organisations::source.eq(&seed.source),
            organisations::created_at.eq(stamp),
            organisations::updated_at.eq(stamp),
        ))
        .execute(conn)
        .map_err(|e| seed_error("organisation", &seed.code, e))
}

fn supplier_id(conn: &mut DbConnection, name: &str) -> DbResult<i64> {
    if let Some(id) =
        suppliers::table.filter(suppliers::name.eq(name)).select(suppliers::id).first(conn).optional()?
    {
        return Ok(id);
    }
    Ok(diesel::insert_into(suppliers::table)
        .values(suppliers::name.eq(name))
        .returning(suppliers::id)
        .get_result(conn)?)
}

fn product_id(conn: &mut DbConnection, sku: &str) -> DbResult<i64> {
    products::table
        .filter(products::sku.eq(sku))
        .select(products::id)
        .first(conn)
        .optional()?
        .ok_or_else(|| DbError::Invalid(format!("seeds: no product with sku {sku}")))
}

fn insert_product(conn: &mut DbConnection, seed: &SeedProduct) -> DbResult<usize> {
    let exists: i64 = products::table.filter(products::sku.eq(&seed.sku)).count().get_result(conn)?;
    if exists > 0 {
        return Ok(0);
    }
    let fields = crate::products::ProductFields {
        supplier_id: supplier_id(conn, &seed.supplier)?,
        name: seed.name.clone(),
        edition: seed.edition.clone().unwrap_or_default(),
        version: seed.version.clone().unwrap_or_default(),
        sku: Some(seed.sku.clone()),
        category: seed.category.clone(),
        released_on: seed.released_on,
        mainstream_support_ends_on: seed.mainstream_support_ends_on,
        extended_support_ends_on: seed.extended_support_ends_on,
        dtac_passed: seed.dtac_passed,
        mds2_supplied: seed.mds2_supplied,
        successor_id: None,
        source: Some(seed.source.clone()),
    };
    // The create an admin's product goes through, with its checks (a name, a category slug,
    // mainstream support ending no later than extended): a seed that breaks one stops the load.
    let today = chrono::Utc::now().date_naive();
    crate::products::create_in(conn, fields, today).map_err(|e| match e {
        DbError::Invalid(reason) | DbError::Conflict(reason) => {
            DbError::Invalid(format!("seed product {}: {reason}", seed.sku))
        }
        other => other,
    })?;
    Ok(1)
}

fn insert_agreement(conn: &mut DbConnection, seed: &SeedAgreement) -> DbResult<(usize, usize)> {
    let existing: Option<i64> = agreements::table
        .filter(agreements::reference.eq(&seed.reference))
        .select(agreements::id)
        .first(conn)
        .optional()?;
    let (agreement_id, inserted) = match existing {
        Some(id) => (id, 0),
        None => {
            let supplier = supplier_id(conn, &seed.supplier)?;
            let stamp = now();
            let id = diesel::insert_into(agreements::table)
                .values((
                    agreements::supplier_id.eq(supplier),
                    agreements::reference.eq(&seed.reference),
                    agreements::title.eq(&seed.title),
                    agreements::framework_reference.eq(&seed.framework_reference),
                    agreements::starts_on.eq(seed.starts_on),
                    agreements::ends_on.eq(seed.ends_on),
                    agreements::funding_model.eq(&seed.funding_model),
                    agreements::status.eq(&seed.status),
                    agreements::eligible_kinds.eq(seed.eligible_kinds.join(",")),
                    agreements::source.eq(&seed.source),
                    agreements::created_at.eq(stamp),
                    agreements::updated_at.eq(stamp),
                ))
                .returning(agreements::id)
                .get_result(conn)
                .map_err(|e| seed_error("agreement", &seed.reference, e))?;
            insert_commercial(conn, id, seed)?;
            (id, 1)
        }
    };
    let mut entitlements_inserted = 0;
    for line in &seed.entitlements {
        let product = product_id(conn, &line.product_sku)?;
        let exists: i64 = entitlements::table
            .filter(entitlements::agreement_id.eq(agreement_id))
            .filter(entitlements::product_id.eq(product))
            .filter(entitlements::tier.eq(&line.tier))
            .count()
            .get_result(conn)?;
        if exists > 0 {
            continue;
        }
        let stamp = now();
        let entitlement_id: i64 = diesel::insert_into(entitlements::table)
            .values((
                entitlements::agreement_id.eq(agreement_id),
                entitlements::product_id.eq(product),
                entitlements::tier.eq(&line.tier),
                entitlements::metric.eq(&line.metric),
                entitlements::seat_cap.eq(line.seat_cap),
                entitlements::over_allocation_policy.eq(&line.over_allocation_policy),
                entitlements::eligible_kinds.eq(line.eligible_kinds.join(",")),
                entitlements::starts_on.eq(line.starts_on),
                entitlements::ends_on.eq(line.ends_on),
                entitlements::how_to_claim.eq(&line.how_to_claim),
                entitlements::requires_approval.eq(line.requires_approval),
                entitlements::per_organisation_cap.eq(line.per_organisation_cap),
                entitlements::nhsmail_service.eq(&line.nhsmail_service),
                entitlements::source.eq(&line.source),
                entitlements::created_at.eq(stamp),
                entitlements::updated_at.eq(stamp),
            ))
            .returning(entitlements::id)
            .get_result(conn)
            .map_err(|e| seed_error("entitlement", &format!("{} {}", seed.reference, line.product_sku), e))?;
        for obligation in &line.obligations {
            diesel::insert_into(obligations::table)
                .values((
                    obligations::entitlement_id.eq(entitlement_id),
                    obligations::description.eq(&obligation.description),
                    obligations::due_on.eq(obligation.due_on),
                ))
                .execute(conn)?;
        }
        entitlements_inserted += 1;
    }
    Ok((inserted, entitlements_inserted))
}

fn insert_commercial(conn: &mut DbConnection, agreement_id: i64, seed: &SeedAgreement) -> DbResult<()> {
    let has_facts = seed.value_minor.is_some()
        || seed.reseller.is_some()
        || seed.framework_lot.is_some()
        || seed.initial_term_months.is_some()
        || !seed.notice_urls.is_empty()
        || !seed.extension_options.is_empty();
    if has_facts && seed.commercial_source.is_none() {
        return Err(DbError::Invalid(format!(
            "seeds/agreements.json: {}'s commercial record names no commercial_source",
            seed.reference
        )));
    }
    let reseller = seed.reseller.as_deref().map(|name| supplier_id(conn, name)).transpose()?;
    let notices = serde_json::to_string(&seed.notice_urls)
        .map_err(|e| DbError::Internal(format!("notice_urls: {e}")))?;
    diesel::update(agreements::table.find(agreement_id))
        .set((
            agreements::value_minor.eq(seed.value_minor),
            agreements::currency.eq(&seed.currency),
            agreements::reseller_id.eq(reseller),
            agreements::framework_lot.eq(&seed.framework_lot),
            agreements::initial_term_months.eq(seed.initial_term_months),
            agreements::notice_urls.eq(notices),
            agreements::commercial_source.eq(&seed.commercial_source),
            agreements::buyer.eq(&seed.buyer),
        ))
        .execute(conn)
        .map_err(|e| seed_error("agreement", &seed.reference, e))?;
    for option in &seed.extension_options {
        diesel::insert_into(agreement_extensions::table)
            .values((
                agreement_extensions::agreement_id.eq(agreement_id),
                agreement_extensions::months.eq(option.months),
                agreement_extensions::decide_by.eq(option.decide_by),
                agreement_extensions::decision.eq(&option.decision),
                agreement_extensions::decided_on.eq(option.decided_on),
                agreement_extensions::source.eq(&option.source),
            ))
            .execute(conn)
            .map_err(|e| seed_error("extension option", &seed.reference, e))?;
    }
    Ok(())
}

fn insert_standard(conn: &mut DbConnection, seed: &SeedStandard) -> DbResult<usize> {
    let exists: i64 = standards::table
        .filter(standards::publisher_code.eq(&seed.publisher))
        .filter(standards::title.eq(&seed.title))
        .count()
        .get_result(conn)?;
    if exists > 0 {
        return Ok(0);
    }
    let stamp = now();
    let standard_id: i64 = diesel::insert_into(standards::table)
        .values((
            standards::publisher_code.eq(&seed.publisher),
            standards::category.eq(&seed.category),
            standards::title.eq(&seed.title),
            standards::source.eq(&seed.source),
            standards::created_at.eq(stamp),
            standards::updated_at.eq(stamp),
        ))
        .returning(standards::id)
        .get_result(conn)
        .map_err(|e| seed_error("standard", &seed.title, e))?;
    // Each version is written as a draft (only drafts take requirements), then moved to its
    // status; a superseded version ends when the next version was published.
    for (index, version) in seed.versions.iter().enumerate() {
        let published_at = version.published_at.map(|t| t.naive_utc());
        let superseded_at =
            seed.versions[index + 1..].iter().find_map(|later| later.published_at).map(|t| t.naive_utc());
        let version_id: i64 = diesel::insert_into(standard_versions::table)
            .values((
                standard_versions::standard_id.eq(standard_id),
                standard_versions::number.eq(version.number),
                standard_versions::status.eq("draft"),
                standard_versions::summary.eq(&version.summary),
                standard_versions::created_at.eq(stamp),
                standard_versions::updated_at.eq(stamp),
            ))
            .returning(standard_versions::id)
            .get_result(conn)
            .map_err(|e| seed_error("standard version", &format!("{} v{}", seed.title, version.number), e))?;
        for (position, requirement) in version.requirements.iter().enumerate() {
            diesel::insert_into(requirements::table)
                .values((
                    requirements::version_id.eq(version_id),
                    requirements::code.eq(&requirement.code),
                    requirements::text.eq(&requirement.text),
                    requirements::level.eq(&requirement.level),
                    requirements::criterion.eq(requirement.criterion.as_ref().map(|c| c.to_string())),
                    requirements::position.eq(position as i32),
                ))
                .execute(conn)
                .map_err(|e| seed_error("requirement", &requirement.code, e))?;
        }
        diesel::update(standard_versions::table.find(version_id))
            .set((
                standard_versions::status.eq(&version.status),
                standard_versions::published_at.eq(published_at),
                standard_versions::superseded_at.eq(if version.status == "superseded" {
                    superseded_at
                } else {
                    None
                }),
            ))
            .execute(conn)
            .map_err(|e| seed_error("standard version", &format!("{} v{}", seed.title, version.number), e))?;
    }
    Ok(1)
}

fn insert_advisory(conn: &mut DbConnection, seed: &SeedAdvisory) -> DbResult<usize> {
    let exists: i64 =
        advisories::table.filter(advisories::reference.eq(&seed.reference)).count().get_result(conn)?;
    if exists > 0 {
        return Ok(0);
    }
    let stamp = now();
    let advisory_id: i64 = diesel::insert_into(advisories::table)
        .values((
            advisories::reference.eq(&seed.reference),
            advisories::title.eq(&seed.title),
            advisories::severity.eq(&seed.severity),
            advisories::published_at.eq(seed.published_at.naive_utc()),
            advisories::remediation.eq(&seed.remediation),
            advisories::links.eq(serde_json::to_string(&seed.links).unwrap_or_else(|_| "[]".into())),
            advisories::source.eq(&seed.source),
            advisories::created_at.eq(stamp),
            advisories::updated_at.eq(stamp),
        ))
        .returning(advisories::id)
        .get_result(conn)
        .map_err(|e| seed_error("advisory", &seed.reference, e))?;
    for sku in &seed.affected_skus {
        let product = product_id(conn, sku)?;
        diesel::insert_into(advisory_products::table)
            .values((
                advisory_products::advisory_id.eq(advisory_id),
                advisory_products::product_id.eq(product),
            ))
            .execute(conn)?;
    }
    Ok(1)
}

/// Names the seed record a database refusal came from, so a bad seed file is easy to fix.
fn seed_error(kind: &str, key: &str, error: diesel::result::Error) -> DbError {
    match DbError::from(error) {
        DbError::Invalid(detail) | DbError::Conflict(detail) => {
            DbError::Invalid(format!("seeds: {kind} {key}: {detail}"))
        }
        other => other,
    }
}
