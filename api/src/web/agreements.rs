//! Agreements: the list, and one agreement with its entitlement lines. The national team and
//! auditors also see a utilisation chart per entitlement, from `db::reports::utilisation` (the
//! API's `AdminOrAuditor` report).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use db::PageRequest;
use db::agreements::AgreementFilter;

use crate::auth::extractors::AdminOrAuditor;
use crate::spreadsheet::{self, PageDownload};
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
pub async fn agreements_page(
    state: web::Data<AppState>,
    session: Session,
    download: web::Query<PageDownload>,
) -> WebResult<HttpResponse> {
    let filter = AgreementFilter { include_ended: true, ..Default::default() };
    if download.wanted() {
        let every = PageRequest::default();
        return Ok(spreadsheet::list(&state, true, "agreements", every, move |conn, page| {
            db::agreements::list(conn, &filter, page)
        })
        .await?);
    }
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
    commercial: Commercial,
}

/// The commercial record as the page shows it: each fact in words, or `None` to leave its row out.
struct Commercial {
    value: Option<String>,
    buyer: Option<String>,
    reseller: Option<String>,
    framework_lot: Option<String>,
    initial_term: Option<String>,
    notices: Vec<String>,
    source: Option<String>,
    /// Undecided options, the soonest first: (what, decide by, how soon).
    coming_up: Vec<(String, String, String, bool)>,
    /// Decided options: (what, decision).
    decided: Vec<(String, String)>,
}

/// A value in its currency's major units with thousands separators: £774,500,000, or
/// EUR 1,250.50 (pence shown only when there are some).
pub fn money(value_minor: i64, currency: &str) -> String {
    let (major, rest) = db::agreements::major_units(value_minor, currency);
    let digits = db::agreements::minor_unit_digits(currency) as usize;
    let amount = if rest == 0 { count(major) } else { format!("{}.{rest:0digits$}", count(major)) };
    match currency {
        "GBP" => format!("£{amount}"),
        other => format!("{other} {amount}"),
    }
}

fn months(n: i32) -> String {
    if n == 1 { "1 month".into() } else { format!("{n} months") }
}

fn commercial(agreement: &db::agreements::Agreement, on: chrono::NaiveDate) -> Commercial {
    use db::vocabulary::ExtensionDecision;
    let mut coming_up = Vec::new();
    let mut decided = Vec::new();
    for option in &agreement.extension_options {
        let what = format!("Extend by {}", months(option.months));
        match option.decision {
            None => {
                let days = (option.decide_by - on).num_days();
                let when = match days {
                    d if d < 0 => format!("Overdue by {} days: no decision recorded", -d),
                    0 => "Due today".into(),
                    1 => "Due tomorrow".into(),
                    d => format!("Due in {d} days"),
                };
                coming_up.push((what, long_date(option.decide_by), when, days < 0));
            }
            Some(decision) => {
                let verb = match decision {
                    ExtensionDecision::Taken => "Taken",
                    ExtensionDecision::Declined => "Declined",
                };
                let when = match option.decided_on {
                    Some(date) => format!("{verb} on {}", long_date(date)),
                    None => format!("{verb} (date not published)"),
                };
                decided.push((what, when));
            }
        }
    }
    Commercial {
        value: agreement.value_minor.map(|v| money(v, &agreement.currency)),
        buyer: agreement.buyer.clone(),
        reseller: agreement.reseller.clone(),
        framework_lot: agreement.framework_lot.clone(),
        initial_term: agreement.initial_term_months.map(months),
        notices: agreement.notice_urls.clone(),
        source: agreement.commercial_source.clone(),
        coming_up,
        decided,
    }
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
        commercial: commercial(&agreement, on),
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
