//! The audit log for auditors and the national team (the API's `AdminOrAuditor` rule): every
//! write, newest last as the log keeps them, filtered on the server by action, organisation and
//! dates, a page at a time, and the same selection as one CSV file.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::NaiveDate;
use db::PageRequest;
use db::audit::AuditFilter;
use serde::Deserialize;

use crate::auth::extractors::AdminOrAuditor;
use crate::spreadsheet;
use crate::state::AppState;
use crate::web::{Chrome, FieldError, Session, WebResult, error_for, query_value, render};

/// Events on one page of the log.
const PAGE_SIZE: i64 = 50;

pub struct EventRow {
    pub when: String,
    pub actor: String,
    pub action: String,
    pub entity: String,
    pub organisation_code: Option<String>,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditLogPage {
    chrome: Chrome,
    action: String,
    organisation: String,
    from: String,
    to: String,
    events: Vec<EventRow>,
    /// The address of the next page, when there is one.
    next: Option<String>,
    /// The address of the CSV file of every event the filters select.
    download: String,
    /// What is wrong with the filters, each against its field.
    errors: Vec<FieldError>,
}

impl AuditLogPage {
    /// The message for the filter `field`, when that is the one to correct.
    fn error_for(&self, field: &str) -> Option<&str> {
        error_for(&self.errors, field)
    }
}

#[derive(Deserialize)]
pub struct AuditLogQuery {
    #[serde(default)]
    action: String,
    #[serde(default)]
    organisation: String,
    /// A day (2026-12-07), inclusive.
    #[serde(default)]
    from: String,
    /// A day, inclusive: events up to the end of it.
    #[serde(default)]
    to: String,
    cursor: Option<String>,
    format: Option<String>,
}

impl AuditLogQuery {
    /// The filters' part of an address, for the next page and the download.
    fn filters(&self) -> String {
        [
            ("action", &self.action),
            ("organisation", &self.organisation),
            ("from", &self.from),
            ("to", &self.to),
        ]
        .iter()
        .filter(|(_, value)| !value.trim().is_empty())
        .map(|(name, value)| format!("{name}={}", query_value(value.trim())))
        .collect::<Vec<_>>()
        .join("&")
    }
}

/// A day typed into a filter: nothing when empty, an error message when it is not a date.
fn day(text: &str, what: &str) -> Result<Option<NaiveDate>, String> {
    match text.trim() {
        "" => Ok(None),
        text => crate::dates::parse(text)
            .map(Some)
            .ok_or_else(|| format!("Enter the {what} date as year-month-day, like 2026-12-07")),
    }
}

pub async fn audit_page(
    state: web::Data<AppState>,
    session: Session,
    query: web::Query<AuditLogQuery>,
) -> WebResult<HttpResponse> {
    session.require::<AdminOrAuditor>()?;
    let query = query.into_inner();
    let (from, to) = (day(&query.from, "from"), day(&query.to, "to"));
    let errors: Vec<FieldError> = [("from", &from), ("to", &to)]
        .into_iter()
        .filter_map(|(field, parsed)| parsed.as_ref().err().map(|message| FieldError::new(field, message)))
        .collect();
    let (Ok(from), Ok(to)) = (from, to) else {
        return render_log(&session, &query, Vec::new(), None, errors);
    };
    let optional = |text: &str| Some(text.trim().to_owned()).filter(|text| !text.is_empty());
    let filter = AuditFilter {
        action: optional(&query.action),
        organisation_code: optional(&query.organisation).map(|code| code.to_uppercase()),
        from: from.and_then(|day| day.and_hms_opt(0, 0, 0)),
        // The whole of the last day: up to the start of the next.
        to: to.and_then(|day| day.succ_opt()).and_then(|day| day.and_hms_opt(0, 0, 0)),
        ..AuditFilter::default()
    };
    if query.format.as_deref() == Some("csv") {
        let every = PageRequest::default();
        return Ok(spreadsheet::list(&state, true, "audit", every, move |conn, page| {
            db::audit::list(conn, &filter, page)
        })
        .await?);
    }
    let page = PageRequest { limit: Some(PAGE_SIZE), cursor: query.cursor.clone() };
    let found = state.read(move |conn| db::audit::list(conn, &filter, &page)).await?;
    let events = found
        .items
        .into_iter()
        .map(|event| EventRow {
            when: event.occurred_at.format("%-d %B %Y, %H:%M:%S UTC").to_string(),
            actor: event.actor,
            action: event.action,
            entity: format!("{} {}", event.entity, event.entity_id),
            organisation_code: event.organisation_code,
        })
        .collect();
    render_log(&session, &query, events, found.next_cursor, Vec::new())
}

fn render_log(
    session: &Session,
    query: &AuditLogQuery,
    events: Vec<EventRow>,
    next_cursor: Option<String>,
    errors: Vec<FieldError>,
) -> WebResult<HttpResponse> {
    let filters = query.filters();
    let joined = |extra: String| match filters.is_empty() {
        true => format!("/audit?{extra}"),
        false => format!("/audit?{filters}&{extra}"),
    };
    let (status, title) = match errors.is_empty() {
        true => (StatusCode::OK, "Audit log"),
        false => (StatusCode::UNPROCESSABLE_ENTITY, "Error: Audit log"),
    };
    let page = AuditLogPage {
        chrome: Chrome::for_session(title, session, ""),
        action: query.action.clone(),
        organisation: query.organisation.clone(),
        from: query.from.clone(),
        to: query.to.clone(),
        events,
        next: next_cursor.map(|cursor| joined(format!("cursor={}", query_value(&cursor)))),
        download: joined("format=csv".into()),
        errors,
    };
    render(status, &page)
}
