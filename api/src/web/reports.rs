//! The unsupported-software report at a chosen date, for the national team and auditors (the
//! API's `AdminOrAuditor` report, from `db::risk::unsupported_report`).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use db::risk::RiskyHolding;
use db::vocabulary::SupportStatus;
use serde::Deserialize;

use crate::auth::extractors::AdminOrAuditor;
use crate::state::AppState;
use crate::web::start::words;
use crate::web::{Chrome, Session, WebResult, count, long_date, render, today};

/// The longest look-ahead the API allows.
const MAX_MONTHS: u32 = 120;

pub struct HoldingRow {
    pub code: String,
    pub name: String,
    pub product_id: i64,
    pub product: String,
    pub support: String,
    pub held: String,
    pub acceptance: Option<String>,
}

fn row(holding: RiskyHolding) -> HoldingRow {
    HoldingRow {
        held: match (holding.seats, holding.purchased) {
            (seats, 0) => format!("{} seats", count(seats)),
            (0, bought) => format!("{} bought locally", count(bought)),
            (seats, bought) => format!("{} seats, {} bought locally", count(seats), count(bought)),
        },
        acceptance: holding.acceptance.map(|a| match a.expired {
            true => format!("Risk acceptance expired {}", long_date(a.expires_on)),
            false => format!("Risk accepted until {}", long_date(a.expires_on)),
        }),
        code: holding.organisation_code,
        name: holding.organisation_name,
        product_id: holding.product_id,
        product: holding.product,
        support: match (holding.support_status, holding.support_ends_on) {
            (SupportStatus::Unsupported, Some(end)) => format!("Unsupported since {}", long_date(end)),
            (status, Some(end)) => format!("{}; support ends {}", words(status.as_str()), long_date(end)),
            (status, None) => words(status.as_str()),
        },
    }
}

#[derive(Template)]
#[template(path = "unsupported.html")]
struct UnsupportedPage {
    chrome: Chrome,
    on: String,
    on_words: String,
    within_months: u32,
    error: Option<String>,
    at_risk: Vec<HoldingRow>,
    accepted: Vec<HoldingRow>,
    summary: String,
}

#[derive(Deserialize)]
pub struct UnsupportedQuery {
    on: Option<String>,
    within_months: Option<String>,
}

pub async fn unsupported_page(
    state: web::Data<AppState>,
    session: Session,
    query: web::Query<UnsupportedQuery>,
) -> WebResult<HttpResponse> {
    session.require::<AdminOrAuditor>()?;
    let query = query.into_inner();
    let mut error = None;
    let on = match query.on.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        None => today(),
        Some(text) => crate::dates::parse(text).unwrap_or_else(|| {
            error = Some("Enter the date as year-month-day, like 2020-01-14".to_owned());
            today()
        }),
    };
    let within_months = match query.within_months.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        None => 0,
        Some(text) => match text.parse::<u32>() {
            Ok(months) if months <= MAX_MONTHS => months,
            _ => {
                error = Some(format!("Enter a whole number of months, from 0 to {MAX_MONTHS}"));
                0
            }
        },
    };
    let report = state
        .run(move |db| db.read(|conn| db::risk::unsupported_report(conn, on, within_months, None)))
        .await?;
    let page = UnsupportedPage {
        chrome: Chrome::for_session("Unsupported software", &session, "/reports/unsupported"),
        on: on.to_string(),
        on_words: long_date(on),
        within_months,
        error,
        summary: match report.organisations_at_risk {
            1 => "1 organisation held unsupported software with no risk acceptance in force.".to_owned(),
            n => format!("{n} organisations held unsupported software with no risk acceptance in force."),
        },
        at_risk: report.at_risk.into_iter().map(row).collect(),
        accepted: report.accepted.into_iter().map(row).collect(),
    };
    let status = if page.error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    render(status, &page)
}
