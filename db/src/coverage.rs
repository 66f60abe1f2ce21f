//! The central question: for an organisation and a product (or a category), is it licensed
//! nationally, is there a standard to buy against, or is there no guidance, and what warnings
//! apply (lifecycle, eligibility)?

use chrono::{Months, NaiveDate};
use serde::Serialize;

use crate::agreements::{self, Agreement, Entitlement, Obligation};
use crate::connection::DbConnection;
use crate::error::{DbError, DbResult};
use crate::guidance::{self, StandardGuidance};
use crate::organisations::{self, Organisation};
use crate::products::{self, Product};
use crate::schema::products as products_table;
use crate::vocabulary::{AgreementStatus, SupportStatus, Tier};
use diesel::prelude::*;

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
    /// Taken on by an organisation that claims seats.
    pub obligations: Vec<Obligation>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Coverage {
    pub decision: Decision,
    pub organisation_code: String,
    pub organisation_name: String,
    /// The product asked about (absent when a category was asked about).
    pub product: Option<Product>,
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
    Product(i64),
    Category(String),
}

/// An agreement was in force on a date within its dates unless it is a draft; an ended one
/// (expired, terminated) only up to its recorded end date, so history questions get true answers.
pub fn agreement_in_force(agreement: &Agreement, on: NaiveDate) -> bool {
    let within_dates = agreement.starts_on <= on && agreement.ends_on.is_none_or(|end| on <= end);
    match agreement.status {
        AgreementStatus::Draft => false,
        AgreementStatus::Active => within_dates,
        AgreementStatus::Expired | AgreementStatus::Terminated => agreement.ends_on.is_some() && within_dates,
    }
}

fn lifecycle_warnings(product: &Product, on: NaiveDate, warnings: &mut Vec<Warning>) {
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

pub fn answer(
    conn: &mut DbConnection,
    organisation_code: &str,
    subject: Subject,
    on: NaiveDate,
) -> DbResult<Coverage> {
    let organisation: Organisation = organisations::get(conn, organisation_code)?;
    let (product, category, product_ids) = match subject {
        Subject::Product(id) => {
            let product = products::get(conn, id, on)?;
            let category = product.category.clone();
            (Some(product), category, vec![id])
        }
        Subject::Category(category) => {
            let ids: Vec<i64> = products_table::table
                .filter(products_table::category.eq(&category))
                .select(products_table::id)
                .load(conn)?;
            (None, category, ids)
        }
    };
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

    let lines = agreements::entitlements_for_products(conn, &product_ids)?;
    let mut licences: Vec<(NationalLicence, bool)> = Vec::new();
    let (mut ineligible, mut ended) = (false, false);
    for line in lines {
        let agreement = agreements::get(conn, line.agreement_id)?;
        if !(agreement_in_force(&agreement, on) && line.in_force_on(on)) {
            ended |= agreement.status != AgreementStatus::Draft && line.starts_on <= on;
            continue;
        }
        let kind = organisation.kind;
        if !(line.eligible_kinds.contains(&kind) && agreement.eligible_kinds.contains(&kind))
            || organisation.closed
        {
            ineligible = true;
            continue;
        }
        let has_seats = line.seats_remaining.is_none_or(|left| left > 0);
        licences.push((licence(&agreement, line), has_seats));
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
                message: format!(
                    "national entitlements exist for this, but not for {} organisations",
                    organisation.kind.as_str()
                ),
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
        let standards = guidance::published_for_category(conn, &category, on)?;
        if standards.is_empty() {
            (Decision::NoGuidance, standards)
        } else {
            (Decision::BuyLocally, standards)
        }
    };
    Ok(Coverage {
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

fn licence(agreement: &Agreement, line: Entitlement) -> NationalLicence {
    NationalLicence {
        agreement_id: agreement.id,
        agreement_reference: agreement.reference.clone(),
        agreement_title: agreement.title.clone(),
        framework_reference: agreement.framework_reference.clone(),
        entitlement_id: line.id,
        product_id: line.product_id,
        product: line.product,
        tier: line.tier,
        seat_cap: line.seat_cap,
        seats_remaining: line.seats_remaining,
        ends_on: line.ends_on,
        how_to_claim: line.how_to_claim,
        obligations: line.obligations,
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
