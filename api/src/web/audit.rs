//! The audit log for auditors and the national team (the API's `AdminOrAuditor` rule): every
//! write, newest last as the log keeps them, filtered on the server by action, organisation and
//! dates, a page at a time, and the same selection as one CSV file. The form is a GET, so the
//! filters are the address: `/audit?action=allocation.claim&from-day=1&from-month=12&from-year=2026`,
//! which the next page and the download repeat.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use db::PageRequest;
use db::audit::AuditFilter;
use serde::Deserialize;

use crate::auth::extractors::AdminOrAuditor;
use crate::spreadsheet;
use crate::state::AppState;
use crate::web::date_input::{DateField, DateInput, date_field};
use crate::web::{Chrome, FieldError, Session, WebResult, error_for, query_value, render};

/// Events on one page of the log.
const PAGE_SIZE: i64 = 50;

/// The first day of events shown.
const FROM: DateField = date_field!("from", "from date");

/// The last day of events shown, all of it.
const TO: DateField = date_field!("to", "to date");

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
    filters: Filters,
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
    /// The first day, inclusive, in three boxes.
    #[serde(default, rename = "from-day")]
    from_day: String,
    #[serde(default, rename = "from-month")]
    from_month: String,
    #[serde(default, rename = "from-year")]
    from_year: String,
    /// The last day, inclusive (events up to the end of it), in three boxes.
    #[serde(default, rename = "to-day")]
    to_day: String,
    #[serde(default, rename = "to-month")]
    to_month: String,
    #[serde(default, rename = "to-year")]
    to_year: String,
    /// The days as the form sent them before it had three boxes, `2026-12-07`: still read, so an
    /// address kept from then still filters (the pages no longer link with them).
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    cursor: Option<String>,
    format: Option<String>,
}

/// The filters as typed, to show back and to repeat in the next page's and the download's address.
struct Filters {
    action: String,
    organisation: String,
    from: DateInput,
    to: DateInput,
}

impl Filters {
    fn of(query: &AuditLogQuery) -> Filters {
        Filters {
            action: query.action.clone(),
            organisation: query.organisation.clone(),
            from: DateInput::typed_or_iso(
                FROM,
                &query.from_day,
                &query.from_month,
                &query.from_year,
                &query.from,
            ),
            to: DateInput::typed_or_iso(TO, &query.to_day, &query.to_month, &query.to_year, &query.to),
        }
    }

    /// The filters' part of an address: only those typed in.
    fn query(&self) -> String {
        [("action".to_owned(), self.action.clone()), ("organisation".to_owned(), self.organisation.clone())]
            .into_iter()
            .chain(self.from.fields())
            .chain(self.to.fields())
            .filter(|(_, value)| !value.trim().is_empty())
            .map(|(name, value)| format!("{name}={}", query_value(value.trim())))
            .collect::<Vec<_>>()
            .join("&")
    }
}

pub async fn audit_page(
    state: web::Data<AppState>,
    session: Session,
    query: web::Query<AuditLogQuery>,
) -> WebResult<HttpResponse> {
    session.require::<AdminOrAuditor>()?;
    let query = query.into_inner();
    let mut filters = Filters::of(&query);
    // Either day may be left out; every problem with those typed is listed at once.
    let mut errors = Vec::new();
    let from = if filters.from.is_blank() { None } else { filters.from.read(&mut errors) };
    let to = if filters.to.is_blank() { None } else { filters.to.read(&mut errors) };
    if !errors.is_empty() {
        return render_log(&session, filters, Vec::new(), None, errors);
    }
    let optional = |text: &str| Some(text.trim().to_owned()).filter(|text| !text.is_empty());
    let filter = AuditFilter {
        action: optional(&filters.action),
        organisation_code: optional(&filters.organisation).map(|code| code.to_uppercase()),
        from: from.and_then(|day| day.and_hms_opt(0, 0, 0)),
        // The whole of the last day: up to the start of the next. After 31 December 9999 there
        // is no next day the databases compare alike (SQLite compares "+10000-01-01" as text,
        // before every other date), and no bound is needed.
        to: to
            .and_then(|day| day.succ_opt())
            .filter(|next| crate::dates::comparable(*next))
            .and_then(|day| day.and_hms_opt(0, 0, 0)),
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
    render_log(&session, filters, events, found.next_cursor, Vec::new())
}

fn render_log(
    session: &Session,
    filters: Filters,
    events: Vec<EventRow>,
    next_cursor: Option<String>,
    errors: Vec<FieldError>,
) -> WebResult<HttpResponse> {
    let address = filters.query();
    let joined = |extra: String| match address.is_empty() {
        true => format!("/audit?{extra}"),
        false => format!("/audit?{address}&{extra}"),
    };
    let (status, title) = match errors.is_empty() {
        true => (StatusCode::OK, "Audit log"),
        false => (StatusCode::UNPROCESSABLE_ENTITY, "Error: Audit log"),
    };
    let page = AuditLogPage {
        chrome: Chrome::for_session(title, session, ""),
        filters,
        events,
        next: next_cursor.map(|cursor| joined(format!("cursor={}", query_value(&cursor)))),
        download: joined("format=csv".into()),
        errors,
    };
    render(status, &page)
}
