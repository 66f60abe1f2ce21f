//! Security advisories: the list; one advisory with its remediation and (for the national team and
//! auditors) its exposure with overdue acknowledgements; and acknowledging an advisory for one's
//! own organisation, through `db::advisories` with the API's rules (the `AdminOrOfficer` role set,
//! acting for one's own organisation).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::NaiveDateTime;
use db::PageRequest;
use db::advisories::{Response, ResponseStatus, Severity};
use serde::Deserialize;

use crate::auth::extractors::{AdminOrAuditor, AdminOrOfficer};
use crate::error::ApiError;
use crate::state::AppState;
use crate::web::start::{ChoiceView, words};
use crate::web::{Chrome, Session, Submitted, WebResult, count, local_path, long_date, render, see_other};

fn now() -> NaiveDateTime {
    chrono::Utc::now().naive_utc()
}

/// "12 May 2017 at 18:00 UTC".
pub fn date_time(at: NaiveDateTime) -> String {
    format!("{} at {} UTC", long_date(at.date()), at.format("%H:%M"))
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
    advisories: Vec<AdvisoryRow>,
}

pub async fn advisories_page(state: web::Data<AppState>, session: Session) -> WebResult<HttpResponse> {
    let page = PageRequest { limit: Some(db::page::MAX_LIMIT), cursor: None };
    let found = state.run(move |db| db.read(|conn| db::advisories::list(conn, None, &page))).await?;
    let mut advisories: Vec<AdvisoryRow> = found
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
    advisories.reverse();
    let page =
        AdvisoriesPage { chrome: Chrome::for_session("Advisories", &session, "/advisories"), advisories };
    render(StatusCode::OK, &page)
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
    let notice =
        (query.notice.as_deref() == Some("acknowledged")).then(|| "The advisory is acknowledged.".to_owned());
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

/// Acknowledges an advisory for an organisation, as `POST /v1/organisations/{code}/advisories/{id}/acknowledge` does.
pub async fn acknowledge(
    state: web::Data<AppState>,
    path: web::Path<(String, i64)>,
    submitted: Submitted<AcknowledgeForm>,
) -> WebResult<HttpResponse> {
    let ((code, id), session, form) = (path.into_inner(), submitted.session, submitted.form);
    let code = code.to_uppercase();
    let user = session.require::<AdminOrOfficer>()?;
    user.ensure_can_act_for(&code)?;
    let applicable = match form.applicable.as_str() {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    };
    let reason = Some(form.reason.trim().to_owned()).filter(|r| !r.is_empty());
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
