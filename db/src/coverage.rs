//! The central question: for an organisation and a product (or a category), is it licensed
//! nationally, is there a standard to buy against, or is there no guidance, and what warnings
//! apply (lifecycle, eligibility)?

use chrono::{Months, NaiveDate};
use serde::Serialize;

use diesel::prelude::*;

pub use crate::action::Action;
use crate::action::{
    ActionFacts, AskedProduct, LifecycleFacts, ProvisionAnswer, StandardAnswer, SuccessorAnswer,
};
use crate::agreements::{self, Agreement, Entitlement, Obligation};
use crate::connection::DbConnection;
use crate::error::{DbError, DbResult};
use crate::guidance::{self, StandardGuidance};
use crate::nhsmail::{self, ServicePeriod};
use crate::organisations::{self, Organisation};
use crate::products::{self, Product, support_status};
use crate::releases::{self, Release};
use crate::schema::products as products_table;
use crate::vocabulary::{AgreementStatus, NhsmailService, OrganisationKind, SupportStatus, Tier};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Licensed nationally, on behalf of the NHS: claim seats, do not buy.
    NationallyLicensed,
    /// Not licensed nationally: buy locally against the published standard.
    BuyLocally,
    /// Neither a national licence nor a standard applies.
    NoGuidance,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum WarningCode {
    /// The product no longer receives security updates.
    Unsupported,
    /// Support ends within 12 months.
    SupportEnding,
    /// National entitlements exist for the product but not for this kind of organisation.
    NotEligible,
    /// The product was licensed nationally, but that entitlement or agreement has ended.
    EntitlementEnded,
    /// The organisation has closed; its successor acts for it.
    OrganisationClosed,
    /// The national entitlement has no seats left under its cap.
    NoSeatsRemaining,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Warning {
    pub code: WarningCode,
    pub message: String,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NationalLicence {
    pub agreement_id: i64,
    pub agreement_reference: String,
    pub agreement_title: String,
    pub framework_reference: Option<String>,
    pub entitlement_id: i64,
    pub product_id: i64,
    pub product: String,
    pub tier: Tier,
    pub seat_cap: Option<i64>,
    /// Null when the entitlement is uncapped.
    pub seats_remaining: Option<i64>,
    pub ends_on: Option<NaiveDate>,
    pub how_to_claim: Option<String>,
    /// A claim is held as a seat request until the national team approves it.
    pub requires_approval: bool,
    /// The most seats one organisation may hold of the line; null when only the cap applies.
    pub per_organisation_cap: Option<i64>,
    /// Taken on by an organisation that claims seats.
    pub obligations: Vec<Obligation>,
}

/// The organisation a coverage question is asked for.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct AskingOrganisation {
    pub code: String,
    pub name: String,
    pub kind: OrganisationKind,
    pub closed: bool,
    pub successor_code: Option<String>,
    /// The NHSmail service it takes on the day asked about (recorded, or by its kind).
    pub nhsmail_service: Option<NhsmailService>,
}

impl AskingOrganisation {
    /// The organisation as asked about on `on`, with its recorded NHSmail service periods.
    pub fn new(organisation: &Organisation, recorded: &[ServicePeriod], on: NaiveDate) -> AskingOrganisation {
        AskingOrganisation {
            code: organisation.code.clone(),
            name: organisation.name.clone(),
            kind: organisation.kind,
            closed: organisation.closed,
            successor_code: organisation.successor_code.clone(),
            nhsmail_service: nhsmail::service_on(recorded, organisation.kind, on).map(|(service, _)| service),
        }
    }
}

/// The product a coverage question is about, with its support status at the date asked.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CoveredProduct {
    pub id: i64,
    pub supplier_id: i64,
    pub name: String,
    pub edition: String,
    pub version: String,
    pub sku: Option<String>,
    pub category: String,
    pub mainstream_support_ends_on: Option<NaiveDate>,
    pub extended_support_ends_on: Option<NaiveDate>,
    /// Support status at the date asked about.
    pub support_status: SupportStatus,
}

impl CoveredProduct {
    pub fn from_product(product: &Product) -> CoveredProduct {
        CoveredProduct {
            id: product.id,
            supplier_id: product.supplier_id,
            name: product.name.clone(),
            edition: product.edition.clone(),
            version: product.version.clone(),
            sku: product.sku.clone(),
            category: product.category.clone(),
            mainstream_support_ends_on: product.mainstream_support_ends_on,
            extended_support_ends_on: product.extended_support_ends_on,
            support_status: product.support_status,
        }
    }

    /// The product as of `on` (its support status depends on the date).
    pub fn at(mut self, on: NaiveDate) -> CoveredProduct {
        self.support_status =
            support_status(self.mainstream_support_ends_on, self.extended_support_ends_on, on);
        self
    }

    pub fn label(&self) -> String {
        products::label(&self.name, &self.edition, &self.version)
    }

    pub fn support_ends_on(&self) -> Option<NaiveDate> {
        self.extended_support_ends_on.or(self.mainstream_support_ends_on)
    }
}

#[derive(Clone, Debug, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Coverage {
    /// What the officer should do, with the reason and the date it rests on: read this first.
    pub action: Action,
    pub decision: Decision,
    pub organisation_code: String,
    pub organisation_name: String,
    /// The product asked about (null when a category was asked about).
    pub product: Option<CoveredProduct>,
    pub category: String,
    /// The date the answer is for.
    pub on: NaiveDate,
    /// For `nationally_licensed`: the entitlements that cover it, best first.
    pub licences: Vec<NationalLicence>,
    /// For `buy_locally`: the published standards for the category, newest first.
    pub standards: Vec<StandardGuidance>,
    pub warnings: Vec<Warning>,
}

pub enum Subject {
    /// A product, and optionally one of its releases by name (else the best one held).
    Product(i64, Option<String>),
    Category(String),
}

/// An agreement was in force on a date within its dates unless it is a draft; an ended one
/// (expired, terminated) only up to its recorded end date, so history questions get true answers.
pub fn agreement_in_force(agreement: &Agreement, on: NaiveDate) -> bool {
    agreement_dates_in_force(agreement.status, agreement.starts_on, agreement.ends_on, on)
}

/// [`agreement_in_force`] from the agreement's status and dates alone (what a seat claim reads).
pub fn agreement_dates_in_force(
    status: AgreementStatus,
    starts_on: NaiveDate,
    ends_on: Option<NaiveDate>,
    on: NaiveDate,
) -> bool {
    let within_dates = crate::agreements::within_dates(starts_on, ends_on, on);
    match status {
        AgreementStatus::Draft => false,
        AgreementStatus::Active => within_dates,
        AgreementStatus::Expired | AgreementStatus::Terminated => ends_on.is_some() && within_dates,
    }
}

fn lifecycle_warnings(product: &CoveredProduct, on: NaiveDate, warnings: &mut Vec<Warning>) {
    let label = product.label();
    match product.support_status {
        SupportStatus::Unsupported => warnings.push(Warning {
            code: WarningCode::Unsupported,
            message: format!(
                "{label} has been unsupported since {}: it receives no security updates",
                product.support_ends_on().map(|d| d.to_string()).unwrap_or_default()
            ),
        }),
        _ => {
            if let Some(end) = product.support_ends_on()
                && on.checked_add_months(Months::new(12)).is_some_and(|horizon| end <= horizon)
            {
                warnings.push(Warning {
                    code: WarningCode::SupportEnding,
                    message: format!("support for {label} ends on {end}, within 12 months"),
                });
            }
        }
    }
}

/// Everything a coverage answer is decided from, however it was gathered (from the database,
/// or from the in-memory read model).
pub struct Question<'a> {
    pub organisation: AskingOrganisation,
    pub product: Option<CoveredProduct>,
    pub category: String,
    /// Every entitlement line for the product (or the category's products), with its agreement.
    pub lines: Vec<Line<'a>>,
    /// For a product: the lines of the other products in its category (a national provision
    /// there comes before any local purchase).
    pub category_lines: Vec<Line<'a>>,
    /// For a product: its releases and successor.
    pub lifecycle: Option<LifecycleFacts>,
    pub on: NaiveDate,
}

/// An entitlement line as a coverage question sees it: borrowed from wherever it was gathered,
/// with the seats left under its cap (the read model keeps seat totals apart from the lines).
pub struct Line<'a> {
    pub agreement: &'a Agreement,
    pub entitlement: &'a Entitlement,
    /// Null when the line is uncapped.
    pub seats_remaining: Option<i64>,
}

/// Decides the answer. `standards` is asked only when nothing is licensed nationally.
pub fn decide(
    question: Question<'_>,
    standards: impl FnOnce(&str) -> DbResult<Vec<StandardGuidance>>,
) -> DbResult<Coverage> {
    let Question { organisation, product, category, lines, category_lines, lifecycle, on } = question;
    let provision = category_lines
        .iter()
        .filter(|l| {
            l.entitlement.tier == Tier::NationalProvision
                && usable(&organisation, l.agreement, l.entitlement, on)
        })
        .filter(|l| l.seats_remaining.is_none_or(|left| left > 0))
        .map(|l| ProvisionAnswer {
            product_id: l.entitlement.product_id,
            product: l.entitlement.product.clone(),
            entitlement_id: l.entitlement.id,
            agreement_reference: l.agreement.reference.clone(),
        })
        .next();
    let mut warnings = Vec::new();
    if organisation.closed {
        warnings.push(Warning {
            code: WarningCode::OrganisationClosed,
            message: match &organisation.successor_code {
                Some(successor) => format!("{} has closed; its successor is {successor}", organisation.code),
                None => format!("{} has closed", organisation.code),
            },
        });
    }
    if let Some(product) = &product {
        lifecycle_warnings(product, on, &mut warnings);
    }
    let mut licences: Vec<(NationalLicence, bool)> = Vec::new();
    let (mut ineligible, mut ended) = (false, false);
    // A line refused only for the organisation's NHSmail service: the warning names the service.
    let mut other_service: Option<NhsmailService> = None;
    for Line { agreement, entitlement: line, seats_remaining } in lines {
        if !(agreement_in_force(agreement, on) && line.in_force_on(on)) {
            ended |= agreement.status != AgreementStatus::Draft && line.starts_on <= on;
            continue;
        }
        if !eligible(&organisation, agreement, line) {
            ineligible = true;
            if !offered_for_service(&organisation, line) {
                other_service = other_service.or(line.nhsmail_service);
            }
            continue;
        }
        let has_seats = seats_remaining.is_none_or(|left| left > 0);
        licences.push((licence(agreement, line, seats_remaining), has_seats));
    }
    // Best first: lines with seats left, national provision before top-ups and add-ons, then the most seats.
    licences.sort_by_key(|(licence, has_seats)| {
        (
            !has_seats,
            licence.tier != Tier::NationalProvision,
            std::cmp::Reverse(licence.seats_remaining.unwrap_or(i64::MAX)),
        )
    });
    if licences.is_empty() {
        if ineligible {
            warnings.push(Warning {
                code: WarningCode::NotEligible,
                message: match other_service {
                    Some(service) => format!(
                        "national entitlements exist for this, but only for NHSmail {} Service organisations; {} takes the {} Service",
                        capitalised(service),
                        organisation.code,
                        organisation.nhsmail_service.map_or("no NHSmail", capitalised),
                    ),
                    None => format!(
                        "national entitlements exist for this, but not for {} organisations",
                        organisation.kind.as_str()
                    ),
                },
            });
        }
        if ended {
            warnings.push(Warning {
                code: WarningCode::EntitlementEnded,
                message: "it was licensed nationally, but that entitlement has ended".into(),
            });
        }
    } else if licences.iter().all(|(_, has_seats)| !has_seats) {
        warnings.push(Warning {
            code: WarningCode::NoSeatsRemaining,
            message: "licensed nationally, but no seats remain under the cap".into(),
        });
    }
    let licences: Vec<NationalLicence> = licences.into_iter().map(|(licence, _)| licence).collect();
    let (decision, standards) = if !licences.is_empty() {
        (Decision::NationallyLicensed, Vec::new())
    } else {
        let standards = standards(&category)?;
        if standards.is_empty() {
            (Decision::NoGuidance, standards)
        } else {
            (Decision::BuyLocally, standards)
        }
    };
    let action = ActionFacts {
        product: product.as_ref().map(|p| AskedProduct {
            // With releases, the release names the version ("Windows 10 Enterprise 22H2"), so the
            // product's own version would only confuse.
            label: match lifecycle.as_ref() {
                Some(facts) if !facts.releases.is_empty() => products::label(&p.name, &p.edition, ""),
                _ => p.label(),
            },
            status: p.support_status,
            support_ends_on: p.support_ends_on(),
            lifecycle: lifecycle.as_ref(),
        }),
        licensed: !licences.is_empty(),
        seats_left: licences.iter().any(|l| l.seats_remaining.is_none_or(|left| left > 0)),
        provision,
        standard: standards.first().map(|s| StandardAnswer {
            standard_id: s.standard_id,
            title: s.title.clone(),
            version: s.version,
        }),
        category: &category,
        organisation_code: &organisation.code,
        on,
    }
    .action();
    Ok(Coverage {
        action,
        decision,
        organisation_code: organisation.code,
        organisation_name: organisation.name,
        product,
        category,
        on,
        licences,
        standards,
        warnings,
    })
}

/// The answer, gathered from the database.
pub fn answer(
    conn: &mut DbConnection,
    organisation_code: &str,
    subject: Subject,
    on: NaiveDate,
) -> DbResult<Coverage> {
    let organisation = organisations::get(conn, organisation_code)?;
    let recorded = nhsmail::periods_of(conn, &organisation.code)?;
    let asking = AskingOrganisation::new(&organisation, &recorded, on);
    let subject_release = match &subject {
        Subject::Product(_, release) => release.clone(),
        Subject::Category(_) => None,
    };
    let (product, category, product_ids) = match subject {
        Subject::Product(id, _) => {
            let product = products::get(conn, id, on)?;
            let category = product.category.clone();
            (Some(CoveredProduct::from_product(&product)), category, vec![id])
        }
        Subject::Category(category) => {
            category_known(conn, &category)?;
            let ids: Vec<i64> = products_table::table
                .filter(products_table::category.eq(&category))
                .select(products_table::id)
                .load(conn)?;
            (None, category, ids)
        }
    };
    // For a product, the other products of its category too: a national provision among them
    // comes before any local purchase.
    let asked_release = subject_release;
    let (entitlements, agreements_by_id) = lines_with_agreements(conn, &product_ids)?;
    let lines: Vec<Line<'_>> = entitlements
        .iter()
        .filter_map(|line| {
            let agreement = agreements_by_id.iter().find(|a| a.id == line.agreement_id)?;
            Some(Line { agreement, entitlement: line, seats_remaining: line.seats_remaining })
        })
        .collect();
    // The category's other lines matter only when the product itself is not licensed for the
    // organisation (a national provision comes before buying).
    let licensed = lines.iter().any(|l| usable(&asking, l.agreement, l.entitlement, on));
    let (other_entitlements, other_agreements) = if product.is_some() && !licensed {
        let others: Vec<i64> = products_table::table
            .filter(products_table::category.eq(&category))
            .filter(products_table::id.ne_all(&product_ids))
            .select(products_table::id)
            .load(conn)?;
        lines_with_agreements(conn, &others)?
    } else {
        (Vec::new(), Vec::new())
    };
    let category_lines = other_entitlements
        .iter()
        .filter_map(|line| {
            let agreement = other_agreements.iter().find(|a| a.id == line.agreement_id)?;
            Some(Line { agreement, entitlement: line, seats_remaining: line.seats_remaining })
        })
        .collect();
    let lifecycle = match &product {
        Some(product) => Some(lifecycle_from_database(conn, &asking, product.id, asked_release, on)?),
        None => None,
    };
    let question = Question { organisation: asking, product, category, lines, category_lines, lifecycle, on };
    decide(question, |category| guidance::published_for_category(conn, category, on))
}

/// The entitlement lines of these products, with their agreements (one batch read each).
fn lines_with_agreements(
    conn: &mut DbConnection,
    product_ids: &[i64],
) -> DbResult<(Vec<Entitlement>, Vec<Agreement>)> {
    if product_ids.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let entitlements = agreements::entitlements_for_products(conn, product_ids)?;
    let mut agreement_ids: Vec<i64> = entitlements.iter().map(|e| e.agreement_id).collect();
    agreement_ids.sort_unstable();
    agreement_ids.dedup();
    let agreements = agreements::get_many(conn, &agreement_ids)?;
    if agreements.len() != agreement_ids.len() {
        return Err(DbError::NotFound("agreement"));
    }
    Ok((entitlements, agreements))
}

/// The asked product's releases and its successor (followed past unsupported ones), from the
/// database.
fn lifecycle_from_database(
    conn: &mut DbConnection,
    organisation: &AskingOrganisation,
    product_id: i64,
    release: Option<String>,
    on: NaiveDate,
) -> DbResult<LifecycleFacts> {
    let releases = releases::for_product(conn, product_id)?;
    check_release(&releases, release.as_deref())?;
    let successors = successor_chain(product_id, |id| {
        let successor: Option<i64> = products_table::table
            .find(id)
            .select(products_table::successor_id)
            .first(conn)
            .optional()?
            .flatten();
        Ok(successor)
    })?;
    let successor = successor_answer(successors, on, |id| {
        let product = CoveredProduct::from_product(&products::get(conn, id, on)?);
        let releases = releases::for_product(conn, id)?;
        let (entitlements, agreements) = lines_with_agreements(conn, &[id])?;
        let licensed = entitlements.iter().any(|line| {
            agreements
                .iter()
                .find(|a| a.id == line.agreement_id)
                .is_some_and(|a| usable(organisation, a, line, on))
        });
        Ok(Some((product, releases, licensed)))
    })?;
    Ok(LifecycleFacts { releases: releases.into(), release, successor })
}

/// Follows the successor chain to the first product supported on `on` (else the last one found),
/// wherever its facts are read from: `facts` gives a successor's product, its releases and whether
/// the organisation may claim it nationally, or `None` to stop.
pub fn successor_answer<R: AsRef<[Release]>>(
    chain: Vec<i64>,
    on: NaiveDate,
    mut facts: impl FnMut(i64) -> DbResult<Option<(CoveredProduct, R, bool)>>,
) -> DbResult<Option<SuccessorAnswer>> {
    let mut successor = None;
    for id in chain {
        let Some((product, releases, licensed)) = facts(id)? else { break };
        let releases = releases.as_ref();
        let label = lifecycle_label(&product, releases);
        let answer = SuccessorAnswer::new(id, label, product.support_status, releases, licensed, on);
        let supported = answer.supported;
        successor = Some(answer);
        if supported {
            break;
        }
    }
    Ok(successor)
}

/// A product named beside its releases: the release names the version ("Windows 10 Enterprise
/// 22H2"), so the product's own version would only confuse.
pub fn lifecycle_label(product: &CoveredProduct, releases: &[Release]) -> String {
    if releases.is_empty() { product.label() } else { products::label(&product.name, &product.edition, "") }
}

/// A release asked about by name must be one of the product's.
pub fn check_release(releases: &[Release], asked: Option<&str>) -> DbResult<()> {
    match asked {
        Some(name) if !releases.iter().any(|r| r.name.eq_ignore_ascii_case(name)) => {
            Err(DbError::NotFound("release"))
        }
        _ => Ok(()),
    }
}

/// How many successor links are followed looking for a supported product.
const SUCCESSOR_HOPS: usize = 4;

/// The successors of a product in order (at most [`SUCCESSOR_HOPS`], never looping).
pub fn successor_chain(
    product_id: i64,
    mut successor_of: impl FnMut(i64) -> DbResult<Option<i64>>,
) -> DbResult<Vec<i64>> {
    let mut chain = Vec::new();
    let mut current = product_id;
    while chain.len() < SUCCESSOR_HOPS {
        match successor_of(current)? {
            Some(next) if next != product_id && !chain.contains(&next) => {
                chain.push(next);
                current = next;
            }
            _ => break,
        }
    }
    Ok(chain)
}

/// The organisation may use the line: in force, eligible, open.
pub fn usable(
    organisation: &AskingOrganisation,
    agreement: &Agreement,
    line: &Entitlement,
    on: NaiveDate,
) -> bool {
    agreement_in_force(agreement, on) && line.in_force_on(on) && eligible(organisation, agreement, line)
}

fn eligible(organisation: &AskingOrganisation, agreement: &Agreement, line: &Entitlement) -> bool {
    let kind = organisation.kind;
    line.eligible_kinds.contains(&kind)
        && agreement.eligible_kinds.contains(&kind)
        && !organisation.closed
        && offered_for_service(organisation, line)
}

/// A line that is one NHSmail service's national provision is offered to that service's
/// organisations only.
fn offered_for_service(organisation: &AskingOrganisation, line: &Entitlement) -> bool {
    line.nhsmail_service.is_none_or(|service| organisation.nhsmail_service == Some(service))
}

fn licence(agreement: &Agreement, line: &Entitlement, seats_remaining: Option<i64>) -> NationalLicence {
    NationalLicence {
        agreement_id: agreement.id,
        agreement_reference: agreement.reference.clone(),
        agreement_title: agreement.title.clone(),
        framework_reference: agreement.framework_reference.clone(),
        entitlement_id: line.id,
        product_id: line.product_id,
        product: line.product.clone(),
        tier: line.tier,
        seat_cap: line.seat_cap,
        seats_remaining,
        ends_on: line.ends_on,
        how_to_claim: line.how_to_claim.clone(),
        requires_approval: line.requires_approval,
        per_organisation_cap: line.per_organisation_cap,
        obligations: line.obligations.clone(),
    }
}

fn capitalised(service: NhsmailService) -> &'static str {
    match service {
        NhsmailService::Standard => "Standard",
        NhsmailService::Enhanced => "Enhanced",
    }
}

/// A category slug must name at least one product or standard to be asked about.
pub fn category_known(conn: &mut DbConnection, category: &str) -> DbResult<()> {
    use crate::schema::standards;
    let products: i64 =
        products_table::table.filter(products_table::category.eq(category)).count().get_result(conn)?;
    let standards: i64 =
        standards::table.filter(standards::category.eq(category)).count().get_result(conn)?;
    if products + standards == 0 { Err(DbError::NotFound("category")) } else { Ok(()) }
}
