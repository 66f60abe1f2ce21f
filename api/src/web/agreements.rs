//! Agreements: the list, and one agreement with its entitlement lines. The national team and
//! auditors also see a utilisation chart per entitlement, from `db::reports::utilisation` (the
//! API's `AdminOrAuditor` report).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use db::PageRequest;
use db::agreements::AgreementFilter;

use crate::auth::extractors::AdminOrAuditor;
use crate::state::AppState;
use crate::web::chart::utilisation_svg;
use crate::web::start::{kind_words, words};
use crate::web::{Chrome, Session, WebResult, count, long_date, render, today};

pub struct AgreementRow {
    pub id: i64,
    pub reference: String,
    pub title: String,
    pub supplier: String,
    pub status: String,
    pub dates: String,
}

#[derive(Template)]
#[template(path = "agreements.html")]
struct AgreementsPage {
    chrome: Chrome,
    agreements: Vec<AgreementRow>,
}

fn dates(starts_on: chrono::NaiveDate, ends_on: Option<chrono::NaiveDate>) -> String {
    match ends_on {
        Some(end) => format!("{} to {}", long_date(starts_on), long_date(end)),
        None => format!("From {}", long_date(starts_on)),
    }
}

/// Every agreement, ended ones included (they are kept for history).
pub async fn agreements_page(state: web::Data<AppState>, session: Session) -> WebResult<HttpResponse> {
    let filter = AgreementFilter { include_ended: true, ..Default::default() };
    let page = PageRequest { limit: Some(db::page::MAX_LIMIT), cursor: None };
    let found = state.run(move |db| db.read(|conn| db::agreements::list(conn, &filter, &page))).await?;
    let page = AgreementsPage {
        chrome: Chrome::for_session("Agreements", &session, "/agreements"),
        agreements: found
            .items
            .into_iter()
            .map(|a| AgreementRow {
                dates: dates(a.starts_on, a.ends_on),
                id: a.id,
                reference: a.reference,
                title: a.title,
                supplier: a.supplier,
                status: words(a.status.as_str()),
            })
            .collect(),
    };
    render(StatusCode::OK, &page)
}

pub struct EntitlementRow {
    pub id: i64,
    pub product_id: i64,
    pub product: String,
    pub tier: String,
    pub metric: String,
    pub cap: String,
    pub allocated: String,
    pub remaining: String,
    pub over_cap: String,
    pub dates: String,
    pub obligations: Vec<String>,
}

pub struct ChartView {
    pub entitlement_id: i64,
    pub product: String,
    pub svg: String,
    pub by_kind: Vec<(String, String, String)>,
}

#[derive(Template)]
#[template(path = "agreement.html")]
struct AgreementPage {
    chrome: Chrome,
    reference: String,
    title: String,
    supplier: String,
    framework_reference: Option<String>,
    status: String,
    dates: String,
    funding_model: String,
    eligible: String,
    entitlements: Vec<EntitlementRow>,
    charts: Option<Vec<ChartView>>,
    on: String,
}

pub async fn agreement_page(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<i64>,
) -> WebResult<HttpResponse> {
    let id = id.into_inner();
    let sees_report = session.require::<AdminOrAuditor>().is_ok();
    let on = today();
    let (agreement, entitlements, report) = state
        .run(move |db| {
            db.read(|conn| {
                let agreement = db::agreements::get(conn, id)?;
                let page = PageRequest { limit: Some(db::page::MAX_LIMIT), cursor: None };
                let entitlements = db::agreements::entitlements_of(conn, id, &page)?;
                let report = if sees_report {
                    Some(db::reports::utilisation(conn, Some(id), true, on)?)
                } else {
                    None
                };
                Ok((agreement, entitlements.items, report))
            })
        })
        .await?;
    let charts = report.map(|report| {
        report
            .agreements
            .into_iter()
            .flat_map(|a| a.entitlements)
            .map(|line| ChartView {
                svg: utilisation_svg(&line),
                entitlement_id: line.entitlement_id,
                product: line.product.clone(),
                by_kind: line
                    .by_kind
                    .iter()
                    .map(|g| (kind_words(&g.key), count(g.seats), count(g.organisations)))
                    .collect(),
            })
            .collect()
    });
    let page = AgreementPage {
        chrome: Chrome::for_session(agreement.title.clone(), &session, ""),
        dates: dates(agreement.starts_on, agreement.ends_on),
        reference: agreement.reference,
        title: agreement.title,
        supplier: agreement.supplier,
        framework_reference: agreement.framework_reference,
        status: words(agreement.status.as_str()),
        funding_model: words(agreement.funding_model.as_str()),
        eligible: agreement
            .eligible_kinds
            .iter()
            .map(|k| kind_words(k.as_str()))
            .collect::<Vec<_>>()
            .join(", "),
        entitlements: entitlements
            .into_iter()
            .map(|e| EntitlementRow {
                dates: dates(e.starts_on, e.ends_on),
                id: e.id,
                product_id: e.product_id,
                product: e.product,
                tier: words(e.tier.as_str()),
                metric: words(e.metric.as_str()),
                cap: e.seat_cap.map(count).unwrap_or_else(|| "No cap".into()),
                allocated: count(e.seats_allocated),
                remaining: e.seats_remaining.map(count).unwrap_or_else(|| "Unlimited".into()),
                over_cap: count(e.seats_over_cap),
                obligations: e
                    .obligations
                    .into_iter()
                    .map(|o| match o.due_on {
                        Some(due) => format!("{} (by {})", o.description, long_date(due)),
                        None => o.description,
                    })
                    .collect(),
            })
            .collect(),
        charts,
        on: long_date(on),
    };
    render(StatusCode::OK, &page)
}
