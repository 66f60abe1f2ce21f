//! Assessments of products against a version of a standard: the list (everyone may read it, as
//! the API's `GET .../assessments` allows), and, for the standard's publisher, a form to assess a
//! product against the published version. Every write goes through `db::standards::assess` with
//! the API's rules (the `AdminOrExemplar` role set and `routes::standards::ensure_publisher`);
//! whether the product conforms, and what the service checks itself, is the data layer's
//! judgement.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use db::PageRequest;
use db::products::ProductFilter;
use db::standards::{NewAssessment, Outcome, VersionStatus};
use serde::Deserialize;

use crate::auth::ensure_publisher;
use crate::auth::extractors::AdminOrExemplar;
use crate::state::AppState;
use crate::web::start::{ChoiceView, words};
use crate::web::{
    Chrome, Refusal, Session, Submitted, WebError, WebResult, date_time, optional_text, render, see_other,
    today,
};

pub struct AssessmentRow {
    pub product_id: i64,
    pub product: String,
    pub conforms: bool,
    pub assessed_on: String,
    /// "MDS-01: met (checked by the service)", one per outcome.
    pub outcomes: Vec<String>,
    pub evidence: Vec<String>,
}

/// A requirement as the assessment form shows it.
pub struct CriterionView {
    pub code: String,
    pub text: String,
    pub level: String,
    /// The service checks this requirement against the product record itself.
    pub checked_by_service: bool,
}

#[derive(Template)]
#[template(path = "assessments.html")]
struct AssessmentsPage {
    chrome: Chrome,
    id: i64,
    title: String,
    number: i32,
    status: String,
    published: bool,
    assessments: Vec<AssessmentRow>,
    can_assess: bool,
    requirements: Vec<CriterionView>,
    products: Vec<ChoiceView>,
    notice: Option<String>,
    /// The notice is good news (the product conforms): a green banner; else an "Important" one.
    notice_is_success: bool,
    error: Option<String>,
    values: HashMap<String, String>,
}

impl AssessmentsPage {
    /// What the person typed before, when the form is shown again.
    fn value(&self, name: &str) -> &str {
        self.values.get(name).map_or("", String::as_str)
    }

    fn met(&self, code: &str) -> bool {
        self.values.get(&format!("met_{code}")).is_some_and(|v| v == "yes")
    }

    fn note(&self, code: &str) -> &str {
        self.values.get(&format!("note_{code}")).map_or("", String::as_str)
    }

    fn selected(&self, product_id: &i64) -> bool {
        self.value("product_id") == product_id.to_string()
    }
}

fn outcome_words(outcome: &Outcome) -> String {
    let met = if outcome.met { "met" } else { "not met" };
    let checked = match outcome.evaluated {
        Some(true) => " (the service found the product record meets it)",
        Some(false) => " (the service found the product record does not meet it)",
        None => "",
    };
    let note = outcome.note.as_deref().map(|n| format!(": {n}")).unwrap_or_default();
    format!("{}: {met}{checked}{note}", outcome.requirement)
}

struct Loaded {
    title: String,
    status: VersionStatus,
    requirements: Vec<CriterionView>,
    assessments: Vec<AssessmentRow>,
    products: Vec<ChoiceView>,
}

async fn load(state: &AppState, id: i64, number: i32) -> WebResult<Loaded> {
    Ok(state
        .run(move |db| {
            db.read(|conn| {
                let standard = db::standards::get(conn, id)?;
                let version = db::standards::get_version(conn, id, number)?;
                let assessments = db::standards::assessments_of(conn, id, number, true)?;
                let filter =
                    ProductFilter { category: Some(standard.category.clone()), ..Default::default() };
                let page = PageRequest { limit: Some(db::page::MAX_LIMIT), cursor: None };
                let products = db::products::list(conn, &filter, today(), &page)?;
                Ok(Loaded {
                    title: standard.title,
                    status: version.status,
                    requirements: version
                        .requirements
                        .into_iter()
                        .map(|r| CriterionView {
                            checked_by_service: r.criterion.is_some(),
                            code: r.code,
                            text: r.text,
                            level: r.level.as_str().to_owned(),
                        })
                        .collect(),
                    assessments: assessments
                        .into_iter()
                        .map(|a| AssessmentRow {
                            product_id: a.product_id,
                            product: a.product,
                            conforms: a.conforms,
                            assessed_on: date_time(a.created_at),
                            outcomes: a.outcomes.iter().map(outcome_words).collect(),
                            evidence: a.evidence,
                        })
                        .collect(),
                    products: products
                        .items
                        .iter()
                        .map(|p| ChoiceView { product_id: p.id, label: p.label() })
                        .collect(),
                })
            })
        })
        .await?)
}

async fn can_assess(state: &AppState, session: &Session, id: i64) -> bool {
    match session.require::<AdminOrExemplar>() {
        Ok(user) => ensure_publisher(state, user, id).await.is_ok(),
        Err(_) => false,
    }
}

/// What the page shows besides the assessments: a notice after assessing, or the form again
/// with what was typed and what to correct.
#[derive(Default)]
struct Shown {
    notice: Option<Notice>,
    error: Option<String>,
    values: HashMap<String, String>,
}

/// The outcome of the assessment just made, of the product with this id.
struct Notice {
    product_id: i64,
    conforms: bool,
}

async fn render_page(
    state: &AppState,
    session: &Session,
    id: i64,
    number: i32,
    shown: Shown,
    status: StatusCode,
) -> WebResult<HttpResponse> {
    let loaded = load(state, id, number).await?;
    let can_edit = can_assess(state, session, id).await;
    // A draft is shown only to those who may change it, as on the standard's page.
    if loaded.status == VersionStatus::Draft && !can_edit {
        return Err(WebError::NotFound);
    }
    let published = loaded.status == VersionStatus::Published;
    let notice_is_success = shown.notice.as_ref().is_some_and(|notice| notice.conforms);
    let notice = shown.notice.and_then(|notice| {
        let assessed = loaded.assessments.iter().find(|a| a.product_id == notice.product_id)?;
        Some(match notice.conforms {
            true => format!("{} is assessed: it conforms to version {number}.", assessed.product),
            false => format!(
                "{} is assessed: it does not conform to version {number}, as a MUST requirement is not met.",
                assessed.product
            ),
        })
    });
    let page = AssessmentsPage {
        chrome: Chrome::for_session(format!("Assessments against version {number}"), session, ""),
        id,
        title: loaded.title,
        number,
        status: words(loaded.status.as_str()).to_lowercase(),
        published,
        assessments: loaded.assessments,
        can_assess: can_edit && published,
        requirements: loaded.requirements,
        products: loaded.products,
        notice,
        notice_is_success,
        error: shown.error,
        values: shown.values,
    };
    render(status, &page)
}

#[derive(Deserialize)]
pub struct NoticeQuery {
    notice: Option<String>,
    product: Option<i64>,
}

/// The products assessed against a version, conforming or not; for the publisher, the form to
/// assess another.
pub async fn assessments_page(
    state: web::Data<AppState>,
    session: Session,
    path: web::Path<(i64, i32)>,
    query: web::Query<NoticeQuery>,
) -> WebResult<HttpResponse> {
    let (id, number) = path.into_inner();
    let notice = match (query.notice.as_deref(), query.product) {
        (Some("conforms"), Some(product_id)) => Some(Notice { product_id, conforms: true }),
        (Some("does-not-conform"), Some(product_id)) => Some(Notice { product_id, conforms: false }),
        _ => None,
    };
    render_page(&state, &session, id, number, Shown { notice, ..Default::default() }, StatusCode::OK).await
}

/// Reads the form into an assessment, or says what to correct.
fn assessment_from(form: &HashMap<String, String>) -> Result<NewAssessment, String> {
    let field = |name: &str| form.get(name).map_or("", |v| v.trim());
    let product_id =
        field("product_id").parse::<i64>().map_err(|_| "Choose the product you assessed".to_owned())?;
    let mut codes: Vec<String> =
        form.keys().filter_map(|key| key.strip_prefix("requirement_").map(str::to_owned)).collect();
    codes.sort();
    let outcomes = codes
        .iter()
        .map(|code| Outcome {
            requirement: code.clone(),
            met: field(&format!("met_{code}")) == "yes",
            evaluated: None,
            note: optional_text(field(&format!("note_{code}"))),
        })
        .collect();
    let evidence =
        field("evidence").lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect();
    Ok(NewAssessment { product_id, outcomes, evidence })
}

/// Assesses a product against the published version, as `POST /v1/standards/{id}/versions/{n}/assessments` does.
pub async fn assess(
    state: web::Data<AppState>,
    path: web::Path<(i64, i32)>,
    submitted: Submitted<HashMap<String, String>>,
) -> WebResult<HttpResponse> {
    let ((id, number), session, form) = (path.into_inner(), submitted.session, submitted.form);
    let user = session.require::<AdminOrExemplar>()?;
    ensure_publisher(&state, user, id).await?;
    let again = |error: String| Shown { notice: None, error: Some(error), values: form.clone() };
    let new = match assessment_from(&form) {
        Ok(new) => new,
        Err(message) => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return render_page(&state, &session, id, number, again(message), status).await;
        }
    };
    let actor = user.actor();
    match state.run(move |db| db::standards::assess(db, &actor, id, number, new, today())).await {
        Ok(assessment) => Ok(see_other(&format!(
            "/standards/{id}/versions/{number}/assessments?notice={}&product={}",
            if assessment.conforms { "conforms" } else { "does-not-conform" },
            assessment.product_id
        ))),
        Err(error) => {
            let refused = Refusal::of(error)?;
            render_page(&state, &session, id, number, again(refused.detail), refused.status).await
        }
    }
}
