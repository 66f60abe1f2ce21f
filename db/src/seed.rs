//! Loading the shipped seed data in `seeds/` (embedded in the binary, so it works from any
//! directory). Idempotent: each record is found by its natural key and only inserted when absent.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::advisories::{AdvisoryFields, Severity};
use crate::agreements::{AgreementFields, EntitlementFields, NewExtensionOption, NewObligation};
use crate::audit::{Actor, Audited, Change};
use crate::connection::{Database, DbConnection};
use crate::error::{DbError, DbResult};
use crate::lifecycle;
use crate::organisations::NewOrganisation;
use crate::schema::*;
use crate::standards::{DraftChanges, NewStandard, RequirementInput, VersionStatus};
use crate::vocabulary::{
    AgreementStatus, ExtensionDecision, FundingModel, Metric, NhsmailService, OrganisationKind,
    OverAllocationPolicy, Tier,
};

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
    kind: OrganisationKind,
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
    funding_model: FundingModel,
    status: AgreementStatus,
    eligible_kinds: Vec<OrganisationKind>,
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
    decision: Option<ExtensionDecision>,
    decided_on: Option<NaiveDate>,
    source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedEntitlement {
    product_sku: String,
    tier: Tier,
    metric: Metric,
    seat_cap: Option<i64>,
    over_allocation_policy: OverAllocationPolicy,
    eligible_kinds: Vec<OrganisationKind>,
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
    nhsmail_service: Option<NhsmailService>,
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
    status: VersionStatus,
    summary: Option<String>,
    published_at: Option<DateTime<Utc>>,
    requirements: Vec<RequirementInput>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedAdvisory {
    reference: String,
    title: String,
    severity: Severity,
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
    let new = NewOrganisation {
        code: seed.code.clone(),
        name: seed.name.clone(),
        kind: seed.kind,
        region: seed.region.clone(),
        exemplar: seed.exemplar,
        source: Some(seed.source.clone()),
    };
    crate::organisations::create_in(conn, &new).map_err(|e| seed_refused("organisation", &seed.code, e))?;
    // A closure and its successor are ODS's to say, never an admin's: the few seeded ones (an
    // organisation that merged away, with its source) are written as ODS's import would.
    if seed.closed_on.is_some() || seed.successor.is_some() {
        diesel::update(organisations::table.find(&seed.code))
            .set((
                organisations::closed_on.eq(seed.closed_on),
                organisations::successor_code.eq(&seed.successor),
            ))
            .execute(conn)
            .map_err(|e| seed_error("organisation", &seed.code, e))?;
    }
    Ok(1)
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
    crate::products::create_in(conn, fields, today).map_err(|e| seed_refused("product", &seed.sku, e))?;
    Ok(1)
}

/// An agreement goes through the create an admin's does, then its lines through theirs; one that
/// has ended is created active, given its lines, then ended as an admin would end it (an ended
/// agreement takes no new lines).
fn insert_agreement(conn: &mut DbConnection, seed: &SeedAgreement) -> DbResult<(usize, usize)> {
    let existing: Option<i64> = agreements::table
        .filter(agreements::reference.eq(&seed.reference))
        .select(agreements::id)
        .first(conn)
        .optional()?;
    let refused = |e| seed_refused("agreement", &seed.reference, e);
    let (agreement_id, inserted) = match existing {
        Some(id) => (id, 0),
        None => {
            let fields = agreement_fields(conn, seed)?;
            (crate::agreements::create_in(conn, &fields).map_err(refused)?.id, 1)
        }
    };
    let mut entitlements_inserted = 0;
    for line in &seed.entitlements {
        let product_id = product_id(conn, &line.product_sku)?;
        let exists: i64 = entitlements::table
            .filter(entitlements::agreement_id.eq(agreement_id))
            .filter(entitlements::product_id.eq(product_id))
            .filter(entitlements::tier.eq(line.tier))
            .count()
            .get_result(conn)?;
        if exists > 0 {
            continue;
        }
        let fields = EntitlementFields {
            product_id,
            tier: line.tier,
            metric: line.metric,
            seat_cap: line.seat_cap,
            over_allocation_policy: line.over_allocation_policy,
            eligible_kinds: line.eligible_kinds.clone(),
            starts_on: line.starts_on,
            ends_on: line.ends_on,
            how_to_claim: line.how_to_claim.clone(),
            requires_approval: line.requires_approval,
            per_organisation_cap: line.per_organisation_cap,
            nhsmail_service: line.nhsmail_service,
            source: Some(line.source.clone()),
        };
        let obligations: Vec<NewObligation> = line
            .obligations
            .iter()
            .map(|o| NewObligation { description: o.description.clone(), due_on: o.due_on })
            .collect();
        crate::agreements::create_entitlement_in(conn, agreement_id, &fields, &obligations).map_err(|e| {
            seed_refused("entitlement", &format!("{} {}", seed.reference, line.product_sku), e)
        })?;
        entitlements_inserted += 1;
    }
    let agreement = crate::agreements::get(conn, agreement_id)?;
    if agreement.status != seed.status {
        crate::agreements::update_in(conn, &agreement, |fields| fields.status = seed.status)
            .map_err(refused)?;
    }
    Ok((inserted, entitlements_inserted))
}

/// The fields of a seeded agreement as an admin would send them: active while its lines are
/// added when it has since ended.
fn agreement_fields(conn: &mut DbConnection, seed: &SeedAgreement) -> DbResult<AgreementFields> {
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
    let ended = matches!(seed.status, AgreementStatus::Expired | AgreementStatus::Terminated);
    Ok(AgreementFields {
        supplier_id: supplier_id(conn, &seed.supplier)?,
        reference: seed.reference.clone(),
        title: seed.title.clone(),
        framework_reference: seed.framework_reference.clone(),
        starts_on: seed.starts_on,
        ends_on: seed.ends_on,
        funding_model: seed.funding_model,
        status: if ended { AgreementStatus::Active } else { seed.status },
        eligible_kinds: seed.eligible_kinds.clone(),
        source: Some(seed.source.clone()),
        value_minor: seed.value_minor,
        currency: seed.currency.clone(),
        reseller_id: seed.reseller.as_deref().map(|name| supplier_id(conn, name)).transpose()?,
        framework_lot: seed.framework_lot.clone(),
        initial_term_months: seed.initial_term_months,
        notice_urls: seed.notice_urls.clone(),
        commercial_source: seed.commercial_source.clone(),
        buyer: seed.buyer.clone(),
        extension_options: seed
            .extension_options
            .iter()
            .map(|option| NewExtensionOption {
                months: option.months,
                decide_by: option.decide_by,
                decision: option.decision,
                decided_on: option.decided_on,
                source: Some(option.source.clone()),
            })
            .collect(),
    })
}

/// A standard's history is written as its publisher made it: version 1 created, each later one
/// drafted from the one before and given its requirements, each published version published on
/// the day its source says (which supersedes the one before then), through the functions the
/// API calls, with their checks.
fn insert_standard(conn: &mut DbConnection, seed: &SeedStandard) -> DbResult<usize> {
    let exists: i64 = standards::table
        .filter(standards::publisher_code.eq(&seed.publisher))
        .filter(standards::title.eq(&seed.title))
        .count()
        .get_result(conn)?;
    if exists > 0 {
        return Ok(0);
    }
    let refused = |e| seed_refused("standard", &seed.title, e);
    let Some(first) = seed.versions.first() else {
        return Err(refused(DbError::Invalid("a standard needs at least one version".into())));
    };
    let new = NewStandard {
        publisher_code: seed.publisher.clone(),
        category: seed.category.clone(),
        title: seed.title.clone(),
        source: Some(seed.source.clone()),
        summary: first.summary.clone(),
        requirements: first.requirements.clone(),
    };
    let standard_id = crate::standards::create_in(conn, &new).map_err(refused)?.id;
    for (index, version) in seed.versions.iter().enumerate() {
        let draft = match index {
            0 => crate::standards::get_version(conn, standard_id, 1)?,
            _ => {
                let draft = crate::standards::new_draft_in(conn, standard_id).map_err(refused)?;
                let changes = DraftChanges {
                    summary: Some(version.summary.clone()),
                    requirements: Some(version.requirements.clone()),
                };
                crate::standards::edit_draft_in(conn, &draft, &changes).map_err(refused)?
            }
        };
        if draft.number != version.number {
            return Err(refused(DbError::Invalid(format!(
                "versions must be numbered 1, 2, 3... in order: found {} where {} comes",
                version.number, draft.number
            ))));
        }
        match (version.status, version.published_at) {
            (VersionStatus::Draft, None) => {}
            (VersionStatus::Published | VersionStatus::Superseded, Some(at)) => {
                crate::standards::publish_in(conn, standard_id, draft.number, at.naive_utc())
                    .map_err(refused)?;
            }
            (status, _) => {
                return Err(refused(DbError::Invalid(format!(
                    "version {}: a {status} version needs {}",
                    version.number,
                    match status {
                        VersionStatus::Draft => "no published_at",
                        VersionStatus::Withdrawn => "a date it was withdrawn, which seeds cannot give",
                        _ => "the published_at of its source",
                    }
                ))));
            }
        }
    }
    // Each version must end as the file says: a "superseded" one needs a later version published.
    for version in &seed.versions {
        let held = crate::standards::get_version(conn, standard_id, version.number)?;
        if held.status != version.status {
            return Err(refused(DbError::Invalid(format!(
                "version {} is {} in the file but {} once its history is written",
                version.number, version.status, held.status
            ))));
        }
    }
    Ok(1)
}

fn insert_advisory(conn: &mut DbConnection, seed: &SeedAdvisory) -> DbResult<usize> {
    let exists: i64 =
        advisories::table.filter(advisories::reference.eq(&seed.reference)).count().get_result(conn)?;
    if exists > 0 {
        return Ok(0);
    }
    let fields = AdvisoryFields {
        reference: seed.reference.clone(),
        title: seed.title.clone(),
        severity: seed.severity,
        published_at: seed.published_at.naive_utc(),
        remediation: seed.remediation.clone(),
        links: seed.links.clone(),
        affected_product_ids: seed
            .affected_skus
            .iter()
            .map(|sku| product_id(conn, sku))
            .collect::<DbResult<_>>()?,
        source: Some(seed.source.clone()),
    };
    crate::advisories::create_in(conn, &fields).map_err(|e| seed_refused("advisory", &seed.reference, e))?;
    Ok(1)
}

/// Names the seed record a rule refused, so a bad seed file is easy to fix.
fn seed_refused(kind: &str, key: &str, error: DbError) -> DbError {
    match error {
        DbError::Invalid(detail) | DbError::Conflict(detail) => {
            DbError::Invalid(format!("seeds: {kind} {key}: {detail}"))
        }
        other => other,
    }
}

/// Names the seed record a database refusal came from, so a bad seed file is easy to fix.
fn seed_error(kind: &str, key: &str, error: diesel::result::Error) -> DbError {
    seed_refused(kind, key, DbError::from(error))
}
