//! The unsupported-software report at a chosen date, for the national team and auditors (the
//! API's `AdminOrAuditor` report, from `db::risk`). Like the API it shows one page of holdings
//! at a time, with the whole report's totals: the page rendered every holding in the country at
//! once, 81 MB of HTML at national scale.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use db::PageRequest;
use db::risk::{RiskyHolding, UnsupportedFilter, UnsupportedTotals};
use db::vocabulary::{RiskStatus, SupportStatus};
use serde::Deserialize;

use crate::auth::extractors::AdminOrAuditor;
use crate::preconditions::page_request;
use crate::spreadsheet;
use crate::state::AppState;
use crate::web::date_input::{DateField, DateInput, date_field};
use crate::web::start::words;
use crate::web::{
    Chrome, FieldError, Session, WebResult, count, counted, long_date, optional_text, query_value, render,
    today,
};
use db::risk::MAX_WITHIN_MONTHS;

/// The day the report is for: today unless another is typed.
const ON: DateField = date_field!("on", "date");

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
        held: held_in_words(holding.seats, holding.purchased, holding.running),
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

/// "3 seats, 2 bought locally, running on 40 by its estate": what makes it a holding.
fn held_in_words(seats: i64, bought: i64, running: i64) -> String {
    let mut parts = Vec::new();
    if seats > 0 || (bought == 0 && running == 0) {
        parts.push(format!("{} seats", count(seats)));
    }
    if bought > 0 {
        parts.push(format!("{} bought locally", count(bought)));
    }
    if running > 0 {
        parts.push(format!("running on {} by its estate", count(running)));
    }
    parts.join(", ")
}

/// The sentences that sum up the whole report.
fn summary(totals: &UnsupportedTotals) -> Vec<String> {
    let mut lines = vec![match totals.organisations_at_risk {
        1 => "1 organisation held unsupported software with no risk acceptance in force.".to_owned(),
        n => {
            format!("{} organisations held unsupported software with no risk acceptance in force.", count(n))
        }
    }];
    lines.push(format!(
        "{} at risk, {} covered by a risk acceptance.",
        counted(totals.holdings_at_risk, "holding", "holdings"),
        count(totals.holdings_accepted)
    ));
    if totals.expired_acceptances > 0 {
        lines.push(format!(
            "{} at risk had a risk acceptance that has expired.",
            counted(totals.expired_acceptances, "holding", "holdings")
        ));
    }
    lines
}

#[derive(Template)]
#[template(path = "reports.html")]
struct ReportsPage {
    chrome: Chrome,
}

/// The national reports, each with what it answers: one header item leads to them all, so that
/// the header has room for the organisations list.
pub async fn reports_page(session: Session) -> WebResult<HttpResponse> {
    session.require::<AdminOrAuditor>()?;
    render(StatusCode::OK, &ReportsPage { chrome: Chrome::for_session("Reports", &session, "/reports") })
}

#[derive(Template)]
#[template(path = "unsupported.html")]
struct UnsupportedPage {
    chrome: Chrome,
    on: DateInput,
    on_words: String,
    within_months: String,
    /// `at_risk` or `accepted`.
    status: &'static str,
    organisation: String,
    region: String,
    /// What to correct, each against the id of its field.
    errors: Vec<FieldError>,
    caption: &'static str,
    holdings: Vec<HoldingRow>,
    summary: Vec<String>,
    /// The link to the first page, when this is a later one.
    first_page: Option<String>,
    next_page: Option<String>,
    /// The whole report (every page) as a CSV file.
    download: String,
}

#[derive(Deserialize)]
pub struct UnsupportedQuery {
    /// The day, from the form's three boxes.
    #[serde(default, rename = "on-day")]
    on_day: String,
    #[serde(default, rename = "on-month")]
    on_month: String,
    #[serde(default, rename = "on-year")]
    on_year: String,
    /// The day as the report's own links (and the API) write it, `2020-01-14`, when the boxes are
    /// empty.
    on: Option<String>,
    within_months: Option<String>,
    status: Option<String>,
    organisation: Option<String>,
    region: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
    /// `csv`: the whole report as a file (the page's "Download CSV").
    format: Option<String>,
}

/// The report's address for these answers, at `cursor` (the first page without one).
fn link(filter: &UnsupportedFilter, limit: Option<i64>, cursor: Option<&str>) -> String {
    let mut href = format!(
        "/reports/unsupported?on={}&within_months={}&status={}",
        filter.on,
        filter.within_months,
        filter.status.unwrap_or(RiskStatus::AtRisk)
    );
    for (name, value) in [("organisation", &filter.organisation), ("region", &filter.region)] {
        if let Some(value) = value {
            href.push_str(&format!("&{name}={}", query_value(value)));
        }
    }
    if let Some(limit) = limit {
        href.push_str(&format!("&limit={limit}"));
    }
    if let Some(cursor) = cursor {
        href.push_str(&format!("&cursor={}", query_value(cursor)));
    }
    href
}

pub async fn unsupported_page(
    state: web::Data<AppState>,
    session: Session,
    query: web::Query<UnsupportedQuery>,
) -> WebResult<HttpResponse> {
    session.require::<AdminOrAuditor>()?;
    let query = query.into_inner();
    let typed = |text: &Option<String>| text.as_deref().and_then(optional_text);
    let mut errors = Vec::new();
    let old_on = query.on.as_deref().unwrap_or_default();
    let mut on_boxes = DateInput::typed_or_iso(ON, &query.on_day, &query.on_month, &query.on_year, old_on);
    if on_boxes.is_blank() {
        on_boxes = DateInput::showing(ON, today());
    }
    // A date that is not one is shown back with why; the report meanwhile is today's.
    let on = on_boxes.read(&mut errors).unwrap_or_else(today);
    let within_months = match typed(&query.within_months) {
        None => 0,
        Some(text) => match text.parse::<u32>() {
            Ok(months) if months <= MAX_WITHIN_MONTHS => months,
            _ => {
                errors.push(FieldError::new(
                    "within_months",
                    &format!("Enter a whole number of months, from 0 to {MAX_WITHIN_MONTHS}"),
                ));
                0
            }
        },
    };
    let status = match typed(&query.status) {
        None => RiskStatus::AtRisk,
        Some(text) => RiskStatus::parse(&text).unwrap_or_else(|| {
            errors.push(FieldError::new("status-at_risk", "Choose at risk or covered by a risk acceptance"));
            RiskStatus::AtRisk
        }),
    };
    // A page of answers that were not understood would not be the page asked for: start again.
    let cursor = if errors.is_empty() { query.cursor } else { None };
    let page: PageRequest = page_request(query.limit, cursor)?;
    let filter = UnsupportedFilter {
        on,
        within_months,
        status: Some(status),
        organisation: typed(&query.organisation).map(|code| code.to_uppercase()),
        region: typed(&query.region),
        only_ending: false,
    };
    if query.format.as_deref() == Some("csv") && errors.is_empty() {
        let filter = filter.clone();
        let rows = PageRequest::default();
        return Ok(spreadsheet::list(&state, true, "unsupported", rows, move |conn, page| {
            db::risk::unsupported_holdings(conn, &filter, page)
        })
        .await?);
    }
    let (found, totals) = {
        let (filter, page) = (filter.clone(), page.clone());
        state
            .run(move |db| {
                db.read(|conn| {
                    let found = db::risk::unsupported_holdings(conn, &filter, &page)?;
                    Ok((found, db::risk::unsupported_totals(conn, &filter)?))
                })
            })
            .await?
    };
    let view = UnsupportedPage {
        chrome: Chrome::for_session("Unsupported software", &session, "/reports"),
        on: on_boxes,
        on_words: long_date(on),
        within_months: within_months.to_string(),
        status: status.as_str(),
        organisation: filter.organisation.clone().unwrap_or_default(),
        region: filter.region.clone().unwrap_or_default(),
        errors,
        caption: match status {
            RiskStatus::AtRisk => "At risk: no risk acceptance in force",
            RiskStatus::Accepted => "Covered by a risk acceptance",
        },
        holdings: found.items.into_iter().map(row).collect(),
        summary: summary(&totals),
        first_page: page.cursor.is_some().then(|| link(&filter, query.limit, None)),
        next_page: found.next_cursor.map(|cursor| link(&filter, query.limit, Some(&cursor))),
        download: format!("{}&format=csv", link(&filter, None, None)),
    };
    let status = if view.errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    render(status, &view)
}

/// One row of the reconciliation page, in words.
pub struct ReconciliationLine {
    pub code: String,
    pub name: String,
    pub product_id: i64,
    pub product: String,
    pub running: String,
    pub held: String,
    pub findings: Vec<String>,
}

fn reconciliation_line(row: db::reconciliation::ReconciliationRow) -> ReconciliationLine {
    use db::vocabulary::ReconciliationFlag::*;
    let findings = row
        .flags
        .iter()
        .map(|flag| match flag {
            UnderClaimed => format!("Under-claimed: {} more running than held", count(row.shortfall)),
            Unlicensed => "Unlicensed: running, none held, no national line".to_owned(),
            Unused => format!("Unused: {} held and not running", count(row.surplus)),
            RunningUnsupported => {
                format!("{} devices on an unsupported release", count(row.unsupported_devices))
            }
        })
        .collect();
    ReconciliationLine {
        running: count(row.running),
        held: match (row.claimed, row.purchased) {
            (0, 0) => "None".to_owned(),
            (seats, 0) => format!("{} national seats", count(seats)),
            (0, bought) => format!("{} bought locally", count(bought)),
            (seats, bought) => format!("{} national seats, {} bought locally", count(seats), count(bought)),
        },
        code: row.organisation_code,
        name: row.organisation_name,
        product_id: row.product_id,
        product: row.product,
        findings,
    }
}

#[derive(Template)]
#[template(path = "reconciliation.html")]
struct ReconciliationPage {
    chrome: Chrome,
    on_words: String,
    /// The flag shown, or empty for every row.
    flag: String,
    organisation: String,
    error: Option<(String, &'static str)>,
    lines: Vec<ReconciliationLine>,
    first_page: Option<String>,
    next_page: Option<String>,
    /// The whole report (every page) as a CSV file.
    download: String,
}

#[derive(Deserialize)]
pub struct ReconciliationQuery {
    flag: Option<String>,
    organisation: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
    /// `csv`: the whole report as a file (the page's "Download CSV").
    format: Option<String>,
}

/// What organisations run beside what they hold (`db::reconciliation`), for the national team
/// and auditors, a page at a time, filtered by what was found and by organisation.
pub async fn reconciliation_page(
    state: web::Data<AppState>,
    session: Session,
    query: web::Query<ReconciliationQuery>,
) -> WebResult<HttpResponse> {
    session.require::<AdminOrAuditor>()?;
    let query = query.into_inner();
    let typed = |text: &Option<String>| text.as_deref().and_then(optional_text);
    let mut error = None;
    let flag = match typed(&query.flag) {
        None => None,
        Some(text) => db::vocabulary::ReconciliationFlag::parse(&text).or_else(|| {
            error = Some(("Choose what to show from the list".to_owned(), "flag"));
            None
        }),
    };
    let organisation = typed(&query.organisation).map(|code| code.to_uppercase());
    let cursor = if error.is_some() { None } else { query.cursor };
    let page: PageRequest = page_request(query.limit, cursor)?;
    let filter = db::reconciliation::ReconciliationFilter {
        organisation: organisation.clone(),
        flag,
        ..Default::default()
    };
    let on = today();
    if query.format.as_deref() == Some("csv") && error.is_none() {
        let filter = filter.clone();
        let rows = PageRequest::default();
        return Ok(spreadsheet::list(&state, true, "reconciliation", rows, move |conn, page| {
            db::reconciliation::report(conn, &filter, on, page)
        })
        .await?);
    }
    let found = {
        let (filter, page) = (filter.clone(), page.clone());
        state.run(move |db| db.read(|conn| db::reconciliation::report(conn, &filter, on, &page))).await?
    };
    let link = |cursor: Option<&str>| {
        let mut href = "/reports/reconciliation?".to_owned();
        if let Some(flag) = flag {
            href.push_str(&format!("flag={}&", flag.as_str()));
        }
        if let Some(code) = &organisation {
            href.push_str(&format!("organisation={}&", query_value(code)));
        }
        if let Some(limit) = query.limit {
            href.push_str(&format!("limit={limit}&"));
        }
        if let Some(cursor) = cursor {
            href.push_str(&format!("cursor={}", query_value(cursor)));
        }
        href.trim_end_matches(['&', '?']).to_owned()
    };
    let view = ReconciliationPage {
        chrome: Chrome::for_session("Estates and holdings", &session, "/reports"),
        on_words: long_date(on),
        flag: flag.map(|f| f.as_str().to_owned()).unwrap_or_default(),
        organisation: organisation.clone().unwrap_or_default(),
        error,
        lines: found.items.into_iter().map(reconciliation_line).collect(),
        first_page: page.cursor.is_some().then(|| link(None)),
        next_page: found.next_cursor.as_deref().map(|cursor| link(Some(cursor))),
        download: {
            let first = link(None);
            format!("{first}{}format=csv", if first.contains('?') { '&' } else { '?' })
        },
    };
    let status = if view.error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    render(status, &view)
}
