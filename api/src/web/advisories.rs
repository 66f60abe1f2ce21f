//! Security advisories: the list; one advisory with its remediation and (for the national team and
//! auditors) its exposure with overdue acknowledgements; one organisation's response to an
//! advisory; and acknowledging an advisory, recording whether it applies and closing it with a
//! remediation note, through `db::advisories::respond` with the API's rules (the `AdminOrOfficer`
//! role set, acting for one's own organisation; the national team for any). Adding and changing
//! an advisory is `advisory_forms`; the list and the advisory's page link to it for the national
//! team.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::NaiveDateTime;
use db::advisories::{Response, ResponseStatus, Severity};
use db::{AddedOrder, PageRequest};
use serde::Deserialize;

use crate::auth::extractors::{AdminOnly, AdminOrAuditor, AdminOrOfficer};
use crate::error::ApiError;
use crate::spreadsheet;
use crate::state::AppState;
use crate::web::start::{ChoiceView, words};
use crate::web::{
    Choice, Chrome, FieldError, Refusal, Session, Submitted, WebResult, added_order, added_order_choices,
    count, date_time, error_for, local_path, long_date, optional_text, query_value, render, see_other,
};

fn now() -> NaiveDateTime {
    chrono::Utc::now().naive_utc()
}

/// The words and the NHS tag colour for a response status.
pub fn status_tag(status: ResponseStatus) -> (&'static str, &'static str) {
    match status {
        ResponseStatus::Overdue => ("Overdue", "red"),
        ResponseStatus::NotAcknowledged => ("Not acknowledged", "orange"),
        ResponseStatus::Acknowledged => ("Acknowledged", "blue"),
        ResponseStatus::Closed => ("Closed", "green"),
    }
}

fn severity_tag(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "red",
        Severity::High => "orange",
        Severity::Medium => "yellow",
        Severity::Low => "grey",
    }
}

pub struct AdvisoryRow {
    pub id: i64,
    pub reference: String,
    pub title: String,
    pub severity: String,
    pub severity_colour: &'static str,
    pub published: String,
}

#[derive(Template)]
#[template(path = "advisories.html")]
struct AdvisoriesPage {
    chrome: Chrome,
    severities: Vec<Choice>,
    /// Latest or earliest added first.
    orders: Vec<Choice>,
    errors: Vec<FieldError>,
    advisories: Vec<AdvisoryRow>,
    first_page: Option<String>,
    next_page: Option<String>,
    /// Every advisory the filter selects, as one CSV file.
    download: String,
    /// Whether the viewer may add advisories (the national team).
    can_add: bool,
}

impl AdvisoriesPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        error_for(&self.errors, field)
    }
}

/// Advisories on one page of the list.
const PAGE_SIZE: i64 = 50;

#[derive(Deserialize)]
pub struct AdvisoriesQuery {
    /// A severity, or empty for every one.
    #[serde(default)]
    severity: String,
    /// `newest` (the default) or `oldest` added first.
    #[serde(default)]
    sort: String,
    cursor: Option<String>,
    /// `csv`: the whole selection as a file (the page's "Download CSV").
    format: Option<String>,
}

/// Every advisory, the latest added first unless the earliest are asked for, filtered by
/// severity, 50 a page; or the selection as one CSV file in the same order.
pub async fn advisories_page(
    state: web::Data<AppState>,
    session: Session,
    query: web::Query<AdvisoriesQuery>,
) -> WebResult<HttpResponse> {
    let query = query.into_inner();
    let typed = query.severity.trim().to_owned();
    let mut errors = Vec::new();
    let severity = match typed.as_str() {
        "" => None,
        text => Severity::parse(text).or_else(|| {
            errors.push(FieldError::new("severity", "Choose a severity from the list"));
            None
        }),
    };
    let order = added_order(&query.sort, AddedOrder::NewestFirst, &mut errors);
    let address = format!("/advisories?severity={}&sort={}", query_value(&typed), order.as_str());
    if query.format.as_deref() == Some("csv") && errors.is_empty() {
        let every = PageRequest::default();
        return Ok(spreadsheet::list(&state, true, "advisories", every, move |conn, page| {
            db::advisories::list(conn, severity, order, page)
        })
        .await?);
    }
    let (advisories, next_cursor) = match errors.is_empty() {
        true => {
            let page = PageRequest { limit: Some(PAGE_SIZE), cursor: query.cursor.clone() };
            let found = state.read(move |conn| db::advisories::list(conn, severity, order, &page)).await?;
            let rows = found
                .items
                .into_iter()
                .map(|a| AdvisoryRow {
                    id: a.id,
                    reference: a.reference,
                    title: a.title,
                    severity: words(a.severity.as_str()),
                    severity_colour: severity_tag(a.severity),
                    published: long_date(a.published_at.date()),
                })
                .collect();
            (rows, found.next_cursor)
        }
        false => (Vec::new(), None),
    };
    let severities = std::iter::once(("", "Any severity".to_owned()))
        .chain(Severity::ALL.iter().rev().map(|s| (s.as_str(), words(s.as_str()))))
        .map(|(value, label)| Choice::new(value, label, &typed))
        .collect();
    let (status, title) = match errors.is_empty() {
        true => (StatusCode::OK, "Advisories"),
        false => (StatusCode::UNPROCESSABLE_ENTITY, "Error: Advisories"),
    };
    let page = AdvisoriesPage {
        chrome: Chrome::for_session(title, &session, "/advisories"),
        severities,
        orders: added_order_choices(order, "Earliest added first", "Latest added first"),
        errors,
        advisories,
        first_page: query.cursor.is_some().then(|| address.clone()),
        next_page: next_cursor.map(|cursor| format!("{address}&cursor={}", query_value(&cursor))),
        download: format!("{address}&format=csv"),
        can_add: session.require::<AdminOnly>().is_ok(),
    };
    render(status, &page)
}

pub struct ExposedRow {
    pub code: String,
    pub name: String,
    pub holdings: String,
    pub status: &'static str,
    pub status_colour: &'static str,
    pub acknowledged: Option<String>,
}

/// The signed-in user's own organisation's standing on the advisory.
pub struct OwnStanding {
    pub code: String,
    pub status: &'static str,
    pub status_colour: &'static str,
    pub acknowledged: Option<String>,
    pub can_acknowledge: bool,
}

#[derive(Template)]
#[template(path = "advisory.html")]
struct AdvisoryPage {
    chrome: Chrome,
    id: i64,
    reference: String,
    title: String,
    severity: String,
    severity_colour: &'static str,
    published: String,
    acknowledge_by: Option<String>,
    remediation: String,
    links: Vec<String>,
    affected: Vec<ChoiceView>,
    own: Option<OwnStanding>,
    exposure: Option<Vec<ExposedRow>>,
    exposure_summary: String,
    notice: Option<String>,
    return_to: String,
    /// Whether the viewer may change the advisory (the national team).
    can_change: bool,
}

#[derive(Deserialize)]
pub struct NoticeQuery {
    notice: Option<String>,
}

pub async fn advisory_page(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<i64>,
    query: web::Query<NoticeQuery>,
) -> WebResult<HttpResponse> {
    let id = id.into_inner();
    let sees_exposure = session.require::<AdminOrAuditor>().is_ok();
    let own_code = session.user.organisation().map(str::to_owned);
    let can_act = own_code.as_deref().is_some_and(|code| crate::web::start::can_act_for(&session, code));
    let (advisory, exposure) = state
        .run(move |db| {
            db.read(|conn| Ok((db::advisories::get(conn, id)?, db::advisories::exposure(conn, id, now())?)))
        })
        .await?;
    let own = own_code.and_then(|code| {
        let exposed =
            exposure.organisations.iter().find(|o| o.organisation_code.eq_ignore_ascii_case(&code))?;
        let (status, status_colour) = status_tag(exposed.status);
        Some(OwnStanding {
            can_acknowledge: can_act && exposed.response.acknowledged_at.is_none(),
            code,
            status,
            status_colour,
            acknowledged: exposed.response.acknowledged_at.map(date_time),
        })
    });
    let overdue = exposure.organisations.iter().filter(|o| o.status == ResponseStatus::Overdue).count();
    let exposure_summary = match exposure.organisations.len() {
        1 => format!(
            "1 organisation holds an affected product; {overdue} of them has not acknowledged it in time."
        ),
        n => format!(
            "{n} organisations hold an affected product; {overdue} of them have not acknowledged it in time."
        ),
    };
    let exposure = sees_exposure.then(|| {
        exposure
            .organisations
            .into_iter()
            .map(|o| {
                let (status, status_colour) = status_tag(o.status);
                ExposedRow {
                    holdings: o
                        .holdings
                        .iter()
                        .map(|h| format!("{} via {}", count(h.quantity), h.via))
                        .collect::<Vec<_>>()
                        .join(", "),
                    code: o.organisation_code,
                    name: o.name,
                    status,
                    status_colour,
                    acknowledged: o.response.acknowledged_at.map(|at| match o.response.acknowledged_late {
                        true => format!("{}, after the deadline", date_time(at)),
                        false => date_time(at),
                    }),
                }
            })
            .collect()
    });
    let notice = match query.notice.as_deref() {
        Some("acknowledged") => Some("The advisory is acknowledged.".to_owned()),
        Some("published") => Some("The advisory is published.".to_owned()),
        Some("changed") => Some("Your changes to the advisory are saved.".to_owned()),
        _ => None,
    };
    let page = AdvisoryPage {
        chrome: Chrome::for_session(advisory.reference.clone(), &session, ""),
        id: advisory.id,
        reference: advisory.reference,
        title: advisory.title,
        severity: words(advisory.severity.as_str()),
        severity_colour: severity_tag(advisory.severity),
        published: date_time(advisory.published_at),
        acknowledge_by: advisory.acknowledge_by.map(date_time),
        remediation: advisory.remediation,
        links: advisory.links,
        affected: advisory
            .affected_products
            .into_iter()
            .map(|p| ChoiceView { product_id: p.product_id, label: p.product })
            .collect(),
        own,
        exposure,
        exposure_summary,
        notice,
        return_to: format!("/advisories/{id}"),
        can_change: session.require::<AdminOnly>().is_ok(),
    };
    render(StatusCode::OK, &page)
}

#[derive(Deserialize)]
pub struct AcknowledgeForm {
    #[serde(default)]
    applicable: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    return_to: String,
}

/// A yes/no radio answer; `None` when neither was chosen.
fn yes_or_no(answer: &str) -> Option<bool> {
    match answer {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    }
}

/// Acknowledges an advisory for an organisation, as `POST /v1/organisations/{code}/advisories/{id}/acknowledge` does.
pub async fn acknowledge(
    state: web::Data<AppState>,
    path: web::Path<(String, i64)>,
    submitted: Submitted<AcknowledgeForm>,
) -> WebResult<HttpResponse> {
    let ((code, id), session, form) = (path.into_inner(), submitted.session, submitted.form);
    let code = code.to_uppercase();
    let user = session.require_acting_for::<AdminOrOfficer>(&code)?;
    let applicable = yes_or_no(&form.applicable);
    let reason = optional_text(&form.reason);
    let actor = user.actor();
    let response = Response::Acknowledge { applicable, reason };
    match state.run(move |db| db::advisories::respond(db, &actor, id, &code, response)).await {
        Ok(_) | Err(ApiError::Conflict(_)) => {
            // Already acknowledged (for instance, the form sent twice) is the outcome asked for.
            let back = local_path(Some(&form.return_to));
            let back = back.split(['?', '#']).next().unwrap_or("/").to_owned();
            Ok(see_other(&format!("{back}?notice=acknowledged")))
        }
        Err(other) => Err(other.into()),
    }
}

/// An organisation's response to an advisory, as its page shows it.
pub struct ResponseView {
    pub status: &'static str,
    pub status_colour: &'static str,
    pub acknowledged: Option<String>,
    pub applies: &'static str,
    pub applicability_reason: Option<String>,
    pub closed: Option<String>,
    pub remediation_note: Option<String>,
    pub holdings: String,
}

#[derive(Template)]
#[template(path = "advisory_response.html")]
struct ResponsePage {
    chrome: Chrome,
    id: i64,
    reference: String,
    title: String,
    acknowledge_by: Option<String>,
    code: String,
    name: String,
    /// `None`: the organisation holds no affected product now.
    response: Option<ResponseView>,
    can_acknowledge: bool,
    can_respond: bool,
    notice: Option<String>,
    /// What to correct, and the id of the field it is about.
    error: Option<(String, &'static str)>,
    applicable: String,
    reason: String,
    remediation_note: String,
    return_to: String,
}

/// What was typed into the page's forms, kept when the page is shown again.
#[derive(Default)]
struct Typed {
    applicable: String,
    reason: String,
    remediation_note: String,
}

/// What the page shows besides the response: a notice after responding, or what to correct.
#[derive(Default)]
struct Shown {
    notice: Option<String>,
    error: Option<(String, &'static str)>,
    typed: Typed,
}

async fn render_response(
    state: &AppState,
    session: &Session,
    code: String,
    id: i64,
    shown: Shown,
    status: StatusCode,
) -> WebResult<HttpResponse> {
    session.user.ensure_can_read(&code)?;
    let lookup = code.clone();
    let (organisation, advisory, exposure) = state
        .run(move |db| {
            db.read(|conn| {
                Ok((
                    db::organisations::get(conn, &lookup)?,
                    db::advisories::get(conn, id)?,
                    db::advisories::exposure(conn, id, now())?,
                ))
            })
        })
        .await?;
    let exposed = exposure.organisations.into_iter().find(|o| o.organisation_code == organisation.code);
    let can_act = crate::web::start::can_act_for(session, &organisation.code);
    let response = exposed.map(|o| {
        let (status, status_colour) = status_tag(o.status);
        let r = o.response;
        ResponseView {
            status,
            status_colour,
            acknowledged: r.acknowledged_at.map(|at| match r.acknowledged_late {
                true => format!("{}, after the deadline", date_time(at)),
                false => date_time(at),
            }),
            applies: match r.applicable {
                Some(true) => "Yes",
                Some(false) => "No",
                None => "Not known yet",
            },
            applicability_reason: r.applicability_reason,
            closed: r.closed_at.map(date_time),
            remediation_note: r.remediation_note,
            holdings: o
                .holdings
                .iter()
                .map(|h| format!("{} via {}", count(h.quantity), h.via))
                .collect::<Vec<_>>()
                .join(", "),
        }
    });
    let (acknowledged, closed) =
        response.as_ref().map_or((false, false), |r| (r.acknowledged.is_some(), r.closed.is_some()));
    let page = ResponsePage {
        chrome: Chrome::for_session(format!("{} at {}", advisory.reference, organisation.code), session, ""),
        id,
        reference: advisory.reference,
        title: advisory.title,
        acknowledge_by: advisory.acknowledge_by.map(date_time),
        return_to: format!("/organisations/{}/advisories/{id}", organisation.code),
        code: organisation.code,
        name: organisation.name,
        can_acknowledge: can_act && response.is_some() && !acknowledged,
        can_respond: can_act && acknowledged && !closed,
        response,
        notice: shown.notice,
        error: shown.error,
        applicable: shown.typed.applicable,
        reason: shown.typed.reason,
        remediation_note: shown.typed.remediation_note,
    };
    render(status, &page)
}

#[derive(Deserialize)]
pub struct ResponseQuery {
    notice: Option<String>,
}

/// One organisation's response to an advisory: acknowledged or not, whether it applies, closed
/// with what note; and, for those who act for the organisation, the forms to respond.
pub async fn response_page(
    state: web::Data<AppState>,
    session: Session,
    path: web::Path<(String, i64)>,
    query: web::Query<ResponseQuery>,
) -> WebResult<HttpResponse> {
    let (code, id) = path.into_inner();
    let notice = match query.notice.as_deref() {
        Some("acknowledged") => Some("The advisory is acknowledged.".to_owned()),
        Some("applicability") => Some("Whether the advisory applies is recorded.".to_owned()),
        Some("closed") => Some("The advisory is closed, with its remediation note.".to_owned()),
        _ => None,
    };
    let shown = Shown { notice, ..Default::default() };
    render_response(&state, &session, code.to_uppercase(), id, shown, StatusCode::OK).await
}

#[derive(Deserialize)]
pub struct ApplicabilityForm {
    #[serde(default)]
    applicable: String,
    #[serde(default)]
    reason: String,
}

/// Records whether an acknowledged advisory applies, as
/// `POST /v1/organisations/{code}/advisories/{id}/applicability` does.
pub async fn set_applicability(
    state: web::Data<AppState>,
    path: web::Path<(String, i64)>,
    submitted: Submitted<ApplicabilityForm>,
) -> WebResult<HttpResponse> {
    let ((code, id), session, form) = (path.into_inner(), submitted.session, submitted.form);
    let code = code.to_uppercase();
    session.require_acting_for::<AdminOrOfficer>(&code)?;
    let typed =
        Typed { applicable: form.applicable.clone(), reason: form.reason.clone(), ..Default::default() };
    let Some(applicable) = yes_or_no(&form.applicable) else {
        let error = Some(("Choose whether the advisory applies".to_owned(), "applicable-yes"));
        let shown = Shown { notice: None, error, typed };
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        return render_response(&state, &session, code, id, shown, status).await;
    };
    let reason = optional_text(&form.reason);
    let response = Response::Applicability { applicable, reason };
    let answer = Answer { response, typed, field: "applicable-yes", notice: "applicability" };
    respond(&state, &session, code, id, answer).await
}

#[derive(Deserialize)]
pub struct ClosureForm {
    #[serde(default)]
    remediation_note: String,
}

/// Closes an acknowledged advisory with a remediation note, as
/// `POST /v1/organisations/{code}/advisories/{id}/close` does.
pub async fn close(
    state: web::Data<AppState>,
    path: web::Path<(String, i64)>,
    submitted: Submitted<ClosureForm>,
) -> WebResult<HttpResponse> {
    let ((code, id), session, form) = (path.into_inner(), submitted.session, submitted.form);
    let code = code.to_uppercase();
    session.require_acting_for::<AdminOrOfficer>(&code)?;
    let typed = Typed { remediation_note: form.remediation_note.clone(), ..Default::default() };
    let response = Response::Close { remediation_note: form.remediation_note };
    let answer = Answer { response, typed, field: "remediation_note", notice: "closed" };
    respond(&state, &session, code, id, answer).await
}

/// A response from one of the page's forms.
struct Answer {
    response: Response,
    /// What was typed, to show again if the response is refused.
    typed: Typed,
    /// The id of the field a refusal is about.
    field: &'static str,
    /// The notice to show once the response is recorded.
    notice: &'static str,
}

/// Records the response; what the data layer refuses is shown on the page again, with what was
/// typed, and nothing changes.
async fn respond(
    state: &AppState,
    session: &Session,
    code: String,
    id: i64,
    answer: Answer,
) -> WebResult<HttpResponse> {
    let Answer { response, typed, field, notice } = answer;
    let (actor, organisation) = (session.user.actor(), code.clone());
    let refused =
        match state.run(move |db| db::advisories::respond(db, &actor, id, &organisation, response)).await {
            Ok(_) => return Ok(see_other(&format!("/organisations/{code}/advisories/{id}?notice={notice}"))),
            Err(error) => Refusal::of(error)?,
        };
    let shown = Shown { notice: None, error: Some((refused.detail, field)), typed };
    render_response(state, session, code, id, shown, refused.status).await
}
