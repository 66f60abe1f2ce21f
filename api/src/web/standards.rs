//! "Buy against" standards: the list (for an exemplar, their own), one standard with its
//! versions, drafting requirements, and publishing a draft after a confirmation page that says
//! which version it supersedes. Every write goes through `db::standards` with the API's rules
//! (the `AdminOrExemplar` role set and `routes::standards::ensure_publisher`).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use db::standards::{Level, RequirementInput, Standard, StandardFilter, StandardVersion, VersionStatus};
use db::{PageRequest, Precondition};
use serde::Deserialize;

use crate::auth::extractors::AdminOrExemplar;
use crate::routes::standards::ensure_publisher;
use crate::state::AppState;
use crate::web::start::{RequirementView, words};
use crate::web::{Chrome, Session, Submitted, WebError, WebResult, long_date, render, see_other};

pub struct StandardRow {
    pub id: i64,
    pub title: String,
    pub category: String,
    pub publisher_code: String,
    pub published: String,
}

#[derive(Template)]
#[template(path = "standards.html")]
struct StandardsPage {
    chrome: Chrome,
    heading: String,
    standards: Vec<StandardRow>,
}

/// The standards: an exemplar author sees their organisation's; everyone else sees them all.
pub async fn standards_page(state: web::Data<AppState>, session: Session) -> WebResult<HttpResponse> {
    let own = match session.user.role() {
        db::users::Role::Exemplar => session.user.organisation().map(str::to_owned),
        _ => None,
    };
    let heading = match &own {
        Some(code) => format!("Standards published by {code}"),
        None => "Standards to buy against".to_owned(),
    };
    let filter = StandardFilter { publisher_code: own, ..Default::default() };
    let page = PageRequest { limit: Some(db::page::MAX_LIMIT), cursor: None };
    let found = state.run(move |db| db.read(|conn| db::standards::list(conn, &filter, &page))).await?;
    let page = StandardsPage {
        chrome: Chrome::for_session("Standards", &session, "/standards"),
        heading,
        standards: found
            .items
            .into_iter()
            .map(|s| StandardRow {
                published: s
                    .published_version
                    .map(|n| format!("Version {n}"))
                    .unwrap_or_else(|| "None published".into()),
                id: s.id,
                title: s.title,
                category: words(&s.category),
                publisher_code: s.publisher_code,
            })
            .collect(),
    };
    render(StatusCode::OK, &page)
}

pub struct VersionRow {
    pub number: i32,
    pub status: String,
    pub published_on: Option<String>,
    pub ended_on: Option<String>,
}

pub struct VersionView {
    pub number: i32,
    pub summary: Option<String>,
    pub revision: i64,
    pub requirements: Vec<RequirementView>,
}

fn version_view(version: StandardVersion) -> VersionView {
    VersionView {
        number: version.number,
        summary: version.summary,
        revision: version.revision,
        requirements: version
            .requirements
            .into_iter()
            .map(|r| RequirementView { code: r.code, text: r.text, level: r.level.as_str().to_owned() })
            .collect(),
    }
}

#[derive(Template)]
#[template(path = "standard.html")]
struct StandardPage {
    chrome: Chrome,
    id: i64,
    title: String,
    category: String,
    publisher_code: String,
    versions: Vec<VersionRow>,
    published: Option<VersionView>,
    draft: Option<VersionView>,
    can_edit: bool,
    notice: Option<String>,
    error: Option<String>,
}

/// The standard, its published version and (for its publisher) its draft.
async fn load(
    state: &AppState,
    id: i64,
) -> WebResult<(Standard, Option<StandardVersion>, Option<StandardVersion>)> {
    Ok(state
        .run(move |db| {
            db.read(|conn| {
                let standard = db::standards::get(conn, id)?;
                let mut published = None;
                let mut draft = None;
                for summary in &standard.versions {
                    match summary.status {
                        VersionStatus::Published => {
                            published = Some(db::standards::get_version(conn, id, summary.number)?)
                        }
                        VersionStatus::Draft => {
                            draft = Some(db::standards::get_version(conn, id, summary.number)?)
                        }
                        _ => {}
                    }
                }
                Ok((standard, published, draft))
            })
        })
        .await?)
}

async fn can_edit(state: &AppState, session: &Session, id: i64) -> bool {
    match session.require::<AdminOrExemplar>() {
        Ok(user) => ensure_publisher(state, user, id).await.is_ok(),
        Err(_) => false,
    }
}

async fn render_standard(
    state: &AppState,
    session: &Session,
    id: i64,
    notice: Option<String>,
    error: Option<String>,
    status: StatusCode,
) -> WebResult<HttpResponse> {
    let (standard, published, draft) = load(state, id).await?;
    let can_edit = can_edit(state, session, id).await;
    let page = StandardPage {
        chrome: Chrome::for_session(standard.title.clone(), session, ""),
        id: standard.id,
        title: standard.title,
        category: words(&standard.category),
        publisher_code: standard.publisher_code,
        versions: standard
            .versions
            .into_iter()
            .rev()
            .map(|v| VersionRow {
                number: v.number,
                status: words(v.status.as_str()),
                published_on: v.published_at.map(|t| long_date(t.date())),
                ended_on: v.superseded_at.or(v.withdrawn_at).map(|t| long_date(t.date())),
            })
            .collect(),
        published: published.map(version_view),
        draft: draft.filter(|_| can_edit).map(version_view),
        can_edit,
        notice,
        error,
    };
    render(status, &page)
}

#[derive(Deserialize)]
pub struct NoticeQuery {
    notice: Option<String>,
    n: Option<i32>,
}

pub async fn standard_page(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<i64>,
    query: web::Query<NoticeQuery>,
) -> WebResult<HttpResponse> {
    let notice = match (query.notice.as_deref(), query.n) {
        (Some("published"), Some(n)) => {
            Some(format!("Version {n} is published. Coverage answers now point to it."))
        }
        (Some("drafted"), Some(n)) => {
            Some(format!("Version {n} is a draft: change its requirements, then publish it."))
        }
        (Some("saved"), Some(n)) => Some(format!("The requirements of draft version {n} are saved.")),
        _ => None,
    };
    render_standard(&state, &session, id.into_inner(), notice, None, StatusCode::OK).await
}

#[derive(Deserialize)]
pub struct NoFields {}

/// Starts a new draft, copied from the latest version.
pub async fn new_draft(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    submitted: Submitted<NoFields>,
) -> WebResult<HttpResponse> {
    let (id, session) = (id.into_inner(), submitted.session);
    let user = session.require::<AdminOrExemplar>()?;
    ensure_publisher(&state, user, id).await?;
    let actor = user.actor();
    match state.run(move |db| db::standards::new_draft(db, &actor, id)).await {
        Ok(version) => Ok(see_other(&format!("/standards/{id}?notice=drafted&n={}", version.number))),
        Err(crate::error::ApiError::Conflict(detail)) => {
            render_standard(&state, &session, id, None, Some(detail), StatusCode::CONFLICT).await
        }
        Err(other) => Err(other.into()),
    }
}

#[derive(Deserialize)]
pub struct RequirementForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    level: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    revision: String,
}

/// Adds a requirement to a draft (the draft's requirements are replaced with the old ones and
/// the new one, at the revision the form was shown with: never a lost update).
pub async fn add_requirement(
    state: web::Data<AppState>,
    path: web::Path<(i64, i32)>,
    submitted: Submitted<RequirementForm>,
) -> WebResult<HttpResponse> {
    let ((id, number), session, form) = (path.into_inner(), submitted.session, submitted.form);
    let user = session.require::<AdminOrExemplar>()?;
    ensure_publisher(&state, user, id).await?;
    let level = match form.level.as_str() {
        "MUST" => Level::Must,
        "SHOULD" => Level::Should,
        "MAY" => Level::May,
        _ => return Err(WebError::BadRequest("Choose MUST, SHOULD or MAY".into())),
    };
    let revision = form
        .revision
        .trim()
        .parse::<i64>()
        .map_err(|_| WebError::BadRequest("the form is out of date".into()))?;
    let draft = state.run(move |db| db.read(|conn| db::standards::get_version(conn, id, number))).await?;
    let mut requirements: Vec<RequirementInput> = draft
        .requirements
        .into_iter()
        .map(|r| RequirementInput { code: r.code, text: r.text, level: r.level, criterion: r.criterion })
        .collect();
    requirements.push(RequirementInput {
        code: form.code.trim().to_owned(),
        text: form.text.trim().to_owned(),
        level,
        criterion: None,
    });
    let changes = db::standards::DraftChanges { summary: None, requirements: Some(requirements) };
    let actor = user.actor();
    let outcome = state
        .run(move |db| {
            db::standards::edit_draft(db, &actor, id, number, changes, Precondition::Revision(revision))
        })
        .await;
    match outcome {
        Ok(_) => Ok(see_other(&format!("/standards/{id}?notice=saved&n={number}"))),
        Err(crate::error::ApiError::Unprocessable(detail) | crate::error::ApiError::Conflict(detail)) => {
            render_standard(&state, &session, id, None, Some(detail), StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(crate::error::ApiError::PreconditionFailed) => {
            let detail = "Someone changed the draft since you opened it: check it and try again".to_owned();
            render_standard(&state, &session, id, None, Some(detail), StatusCode::CONFLICT).await
        }
        Err(other) => Err(other.into()),
    }
}

#[derive(Template)]
#[template(path = "publish.html")]
struct PublishPage {
    chrome: Chrome,
    id: i64,
    title: String,
    draft: VersionView,
    /// The version that publishing supersedes, with the day it was published.
    supersedes: Option<(i32, String)>,
    purchases_note: String,
}

/// Asks to confirm publishing a draft, saying what it supersedes.
pub async fn publish_page(
    state: web::Data<AppState>,
    session: Session,
    path: web::Path<(i64, i32)>,
) -> WebResult<HttpResponse> {
    let (id, number) = path.into_inner();
    let user = session.require::<AdminOrExemplar>()?;
    ensure_publisher(&state, user, id).await?;
    let (standard, published, draft) = load(&state, id).await?;
    let draft = draft.filter(|d| d.number == number).ok_or(WebError::NotFound)?;
    let page = PublishPage {
        chrome: Chrome::for_session(format!("Publish version {number}"), &session, ""),
        id,
        title: standard.title,
        purchases_note: format!(
            "Coverage answers for {} will point to version {number} from when you publish it.",
            words(&standard.category).to_lowercase()
        ),
        supersedes: published
            .map(|p| (p.number, p.published_at.map(|t| long_date(t.date())).unwrap_or_default())),
        draft: version_view(draft),
    };
    render(StatusCode::OK, &page)
}

/// Publishes the draft: the version published until now is superseded in the same transaction.
pub async fn publish(
    state: web::Data<AppState>,
    path: web::Path<(i64, i32)>,
    submitted: Submitted<NoFields>,
) -> WebResult<HttpResponse> {
    let ((id, number), session) = (path.into_inner(), submitted.session);
    let user = session.require::<AdminOrExemplar>()?;
    ensure_publisher(&state, user, id).await?;
    let actor = user.actor();
    match state.run(move |db| db::standards::publish(db, &actor, id, number)).await {
        Ok(_) => Ok(see_other(&format!("/standards/{id}?notice=published&n={number}"))),
        Err(crate::error::ApiError::Unprocessable(detail) | crate::error::ApiError::Conflict(detail)) => {
            render_standard(&state, &session, id, None, Some(detail), StatusCode::CONFLICT).await
        }
        Err(other) => Err(other.into()),
    }
}
