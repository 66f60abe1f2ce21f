//! "Buy against" standards: the list (for an exemplar, their own), one standard with its
//! versions, drafting requirements (adding, changing and removing them), publishing a draft after
//! a confirmation page that says which version it supersedes, and withdrawing a version after a
//! confirmation page that says what follows. Every write goes through `db::standards` with the API's rules
//! (the `AdminOrExemplar` role set and `auth::ensure_publisher`).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use db::standards::{
    Level, RequirementInput, Standard, StandardFilter, StandardOrder, StandardVersion, VersionStatus,
};
use db::{PageRequest, Precondition};
use serde::Deserialize;

use crate::auth::ensure_publisher;
use crate::auth::extractors::AdminOrExemplar;
use crate::error::ApiError;
use crate::spreadsheet;
use crate::state::AppState;
use crate::web::start::{RequirementView, words};
use crate::web::{
    Choice, Chrome, FieldError, Refusal, Session, SortHeading, Submitted, WebError, WebResult, error_for,
    long_date, named, optional_text, query_value, render, see_other,
};

/// Standards on one page of the list.
const PAGE_SIZE: i64 = 50;

pub struct StandardRow {
    pub id: i64,
    pub title: String,
    pub category: String,
    /// The publishing trust's name with its code.
    pub publisher: String,
    pub published: String,
    /// When a version was last published, or nothing.
    pub last_published: String,
}

#[derive(Deserialize)]
pub struct StandardsQuery {
    /// Text in the title.
    #[serde(default)]
    q: String,
    /// A version status: standards with a version in it.
    #[serde(default)]
    status: String,
    /// The publisher's ODS code (an exemplar author sees their own organisation's only).
    #[serde(default)]
    publisher: String,
    /// `title` (the default) or `published`.
    #[serde(default)]
    sort: String,
    cursor: Option<String>,
    /// `csv`: the whole selection as a file (the page's "Download CSV").
    format: Option<String>,
}

/// What each status filter is called.
fn status_label(status: VersionStatus) -> &'static str {
    match status {
        VersionStatus::Draft => "Has a draft",
        VersionStatus::Published => "Has a published version",
        VersionStatus::Superseded => "Has a superseded version",
        VersionStatus::Withdrawn => "Has a withdrawn version",
    }
}

#[derive(Template)]
#[template(path = "standards.html")]
struct StandardsPage {
    chrome: Chrome,
    heading: String,
    /// Whether the publisher can be chosen (everyone but exemplar authors, who see their own).
    choose_publisher: bool,
    q: String,
    publisher: String,
    statuses: Vec<Choice>,
    /// The order shown, to keep when the filters change.
    sort: &'static str,
    sort_headings: [SortHeading; 2],
    standards: Vec<StandardRow>,
    first_page: Option<String>,
    next_page: Option<String>,
    /// The whole selection (every page) as a CSV file.
    download: String,
    errors: Vec<FieldError>,
}

impl StandardsPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        error_for(&self.errors, field)
    }
}

/// The standards, filtered by status, publisher and text in the title, ordered by title or by
/// when last published, 50 a page, or the whole selection as one CSV file: an exemplar author
/// sees their organisation's; everyone else sees them all.
pub async fn standards_page(
    state: web::Data<AppState>,
    session: Session,
    query: web::Query<StandardsQuery>,
) -> WebResult<HttpResponse> {
    let query = query.into_inner();
    let own = match session.user.role() {
        db::users::Role::Exemplar => session.user.organisation().map(str::to_owned),
        _ => None,
    };
    let heading = match &own {
        Some(code) => format!("Standards published by {code}"),
        None => "Standards to buy against".to_owned(),
    };
    let order = match query.sort.trim() {
        "" => StandardOrder::Title,
        sort => StandardOrder::parse(sort).filter(|order| *order != StandardOrder::Id).ok_or_else(|| {
            WebError::BadRequest("The list is sorted by title or by when last published".into())
        })?,
    };
    let (q, status_typed) = (query.q.trim().to_owned(), query.status.trim().to_owned());
    let publisher = match &own {
        Some(_) => String::new(),
        None => query.publisher.trim().to_uppercase(),
    };
    let mut errors = Vec::new();
    let status = match status_typed.as_str() {
        "" => None,
        typed => VersionStatus::parse(typed).or_else(|| {
            errors.push(FieldError::new("status", "Choose a status from the list"));
            None
        }),
    };
    let filter = StandardFilter {
        category: None,
        publisher_code: own.clone().or_else(|| optional_text(&publisher)),
        status,
        title: optional_text(&q),
        order,
    };
    let typed = [("q", q.as_str()), ("status", status_typed.as_str()), ("publisher", publisher.as_str())];
    let address = |by: StandardOrder, extra: &[(&str, &str)]| {
        let sort = [("sort", if by == StandardOrder::LastPublished { "published" } else { "" })];
        let pairs: Vec<String> = typed
            .iter()
            .chain(&sort)
            .chain(extra)
            .filter(|(_, value)| !value.is_empty())
            .map(|(name, value)| format!("{name}={}", query_value(value)))
            .collect();
        match pairs.is_empty() {
            true => "/standards".to_owned(),
            false => format!("/standards?{}", pairs.join("&")),
        }
    };
    if query.format.as_deref() == Some("csv") && errors.is_empty() {
        let every = PageRequest::default();
        return Ok(spreadsheet::list(&state, true, "standards", every, move |conn, page| {
            db::standards::list(conn, &filter, page)
        })
        .await?);
    }
    let (found, next_cursor, publishers) = match errors.is_empty() {
        true => {
            let page = PageRequest { limit: Some(PAGE_SIZE), cursor: query.cursor.clone() };
            state
                .read(move |conn| {
                    let found = db::standards::list(conn, &filter, &page)?;
                    let codes: Vec<String> = found.items.iter().map(|s| s.publisher_code.clone()).collect();
                    let names = db::organisations::names(conn, &codes)?;
                    Ok((found.items, found.next_cursor, names))
                })
                .await?
        }
        false => (Vec::new(), None, Default::default()),
    };
    let sort_heading = |label, by: StandardOrder| match by {
        StandardOrder::LastPublished => SortHeading::descending(label, address(by, &[]), by == order),
        _ => SortHeading::ascending(label, address(by, &[]), by == order),
    };
    let (status_code, title) = match errors.is_empty() {
        true => (StatusCode::OK, "Standards"),
        false => (StatusCode::UNPROCESSABLE_ENTITY, "Error: Standards"),
    };
    let page = StandardsPage {
        chrome: Chrome::for_session(title, &session, "/standards"),
        heading,
        choose_publisher: own.is_none(),
        statuses: std::iter::once(("", "Any status"))
            .chain(VersionStatus::ALL.iter().map(|s| (s.as_str(), status_label(*s))))
            .map(|(value, label)| Choice::new(value, label, &status_typed))
            .collect(),
        sort: if order == StandardOrder::LastPublished { "published" } else { "title" },
        sort_headings: [
            sort_heading("Standard", StandardOrder::Title),
            sort_heading("Last published", StandardOrder::LastPublished),
        ],
        standards: found
            .into_iter()
            .map(|s| StandardRow {
                published: s
                    .published_version
                    .map(|n| format!("Version {n}"))
                    .unwrap_or_else(|| "None published".into()),
                last_published: s
                    .versions
                    .iter()
                    .filter_map(|v| v.published_at)
                    .max()
                    .map(|at| long_date(at.date()))
                    .unwrap_or_default(),
                id: s.id,
                title: s.title,
                category: words(&s.category),
                publisher: named(&s.publisher_code, &publishers),
            })
            .collect(),
        first_page: query.cursor.is_some().then(|| address(order, &[])),
        next_page: next_cursor.map(|cursor| address(order, &[("cursor", &cursor)])),
        download: address(order, &[("format", "csv")]),
        q,
        publisher,
        errors,
    };
    render(status_code, &page)
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
    publisher: String,
    versions: Vec<VersionRow>,
    published: Option<VersionView>,
    draft: Option<VersionView>,
    can_edit: bool,
    notice: Option<String>,
    error: Option<String>,
}

/// What a standard's pages show, read in one go.
struct Loaded {
    standard: Standard,
    /// The publishing trust's name beside its code.
    publisher: String,
    published: Option<StandardVersion>,
    /// Shown only to its publisher.
    draft: Option<StandardVersion>,
}

async fn load(state: &AppState, id: i64) -> WebResult<Loaded> {
    Ok(state
        .run(move |db| {
            db.read(|conn| {
                let standard = db::standards::get(conn, id)?;
                let code = [standard.publisher_code.clone()];
                let publisher = named(&standard.publisher_code, &db::organisations::names(conn, &code)?);
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
                Ok(Loaded { standard, publisher, published, draft })
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
    let Loaded { standard, publisher, published, draft } = load(state, id).await?;
    let can_edit = can_edit(state, session, id).await;
    let page = StandardPage {
        chrome: Chrome::for_session(standard.title.clone(), session, ""),
        id: standard.id,
        title: standard.title,
        category: words(&standard.category),
        publisher,
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
        (Some("withdrawn"), Some(n)) => Some(format!("Version {n} is withdrawn.")),
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
        Err(error) => {
            let refused = Refusal::of(error)?;
            render_standard(&state, &session, id, None, Some(refused.detail), refused.status).await
        }
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

fn level_from(text: &str) -> WebResult<Level> {
    match text {
        "MUST" => Ok(Level::Must),
        "SHOULD" => Ok(Level::Should),
        "MAY" => Ok(Level::May),
        _ => Err(WebError::BadRequest("Choose MUST, SHOULD or MAY".into())),
    }
}

fn revision_from(text: &str) -> WebResult<i64> {
    text.trim().parse::<i64>().map_err(|_| WebError::BadRequest("the form is out of date".into()))
}

/// The draft's requirements as an author writes them, in order.
async fn draft_requirements(state: &AppState, id: i64, number: i32) -> WebResult<Vec<RequirementInput>> {
    let draft = state.run(move |db| db.read(|conn| db::standards::get_version(conn, id, number))).await?;
    Ok(draft
        .requirements
        .into_iter()
        .map(|r| RequirementInput { code: r.code, text: r.text, level: r.level, criterion: r.criterion })
        .collect())
}

/// Replaces the draft's requirements, at the revision the form was shown with (never a lost
/// update), as `PATCH /v1/standards/{id}/versions/{n}` does.
async fn save_requirements(
    state: &AppState,
    session: &Session,
    id: i64,
    number: i32,
    revision: i64,
    requirements: Vec<RequirementInput>,
) -> Result<(), ApiError> {
    let changes = db::standards::DraftChanges { summary: None, requirements: Some(requirements) };
    let actor = session.user.actor();
    state
        .run(move |db| {
            db::standards::edit_draft(db, &actor, id, number, changes, Precondition::Revision(revision))
        })
        .await
        .map(|_| ())
}

const CHANGED_MEANWHILE: &str = "Someone changed the draft since you opened it: check it and try again";

/// A draft's refusals: a stale revision is one the author can act on (409, as a conflict), the
/// rest as every form's.
fn draft_refusal(error: ApiError) -> Result<Refusal, WebError> {
    match error {
        ApiError::PreconditionFailed => {
            Ok(Refusal { detail: CHANGED_MEANWHILE.to_owned(), status: StatusCode::CONFLICT })
        }
        other => Refusal::of(other),
    }
}

/// The standard's page again, saying why the draft was not saved.
async fn draft_not_saved(
    state: &AppState,
    session: &Session,
    id: i64,
    number: i32,
    outcome: Result<(), ApiError>,
) -> WebResult<HttpResponse> {
    match outcome {
        Ok(()) => Ok(see_other(&format!("/standards/{id}?notice=saved&n={number}"))),
        Err(error) => {
            let refused = draft_refusal(error)?;
            render_standard(state, session, id, None, Some(refused.detail), refused.status).await
        }
    }
}

/// Adds a requirement to a draft (the draft's requirements are replaced with the old ones and
/// the new one).
pub async fn add_requirement(
    state: web::Data<AppState>,
    path: web::Path<(i64, i32)>,
    submitted: Submitted<RequirementForm>,
) -> WebResult<HttpResponse> {
    let ((id, number), session, form) = (path.into_inner(), submitted.session, submitted.form);
    let user = session.require::<AdminOrExemplar>()?;
    ensure_publisher(&state, user, id).await?;
    let level = level_from(&form.level)?;
    let revision = revision_from(&form.revision)?;
    let mut requirements = draft_requirements(&state, id, number).await?;
    requirements.push(RequirementInput {
        code: form.code.trim().to_owned(),
        text: form.text.trim().to_owned(),
        level,
        criterion: None,
    });
    let outcome = save_requirements(&state, &session, id, number, revision, requirements).await;
    draft_not_saved(&state, &session, id, number, outcome).await
}

#[derive(Template)]
#[template(path = "requirement.html")]
struct RequirementPage {
    chrome: Chrome,
    id: i64,
    title: String,
    number: i32,
    revision: i64,
    original_code: String,
    code: String,
    level: String,
    text: String,
    /// The service checks the requirement against product records; editing keeps the check.
    checked_by_service: bool,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct RequirementQuery {
    #[serde(default)]
    code: String,
}

/// The form to change one requirement of a draft.
pub async fn edit_requirement_page(
    state: web::Data<AppState>,
    session: Session,
    path: web::Path<(i64, i32)>,
    query: web::Query<RequirementQuery>,
) -> WebResult<HttpResponse> {
    let (id, number) = path.into_inner();
    let user = session.require::<AdminOrExemplar>()?;
    ensure_publisher(&state, user, id).await?;
    let Loaded { standard, draft, .. } = load(&state, id).await?;
    let draft = draft.filter(|d| d.number == number).ok_or(WebError::NotFound)?;
    let requirement =
        draft.requirements.into_iter().find(|r| r.code == query.code).ok_or(WebError::NotFound)?;
    let page = RequirementPage {
        chrome: Chrome::for_session(format!("Change {}", requirement.code), &session, ""),
        id,
        title: standard.title,
        number,
        revision: draft.revision,
        original_code: requirement.code.clone(),
        code: requirement.code,
        level: requirement.level.as_str().to_owned(),
        text: requirement.text,
        checked_by_service: requirement.criterion.is_some(),
        error: None,
    };
    render(StatusCode::OK, &page)
}

#[derive(Deserialize)]
pub struct EditRequirementForm {
    #[serde(default)]
    original_code: String,
    #[serde(flatten)]
    requirement: RequirementForm,
}

/// Changes one requirement of a draft; its machine-checkable criterion, if any, is kept.
pub async fn edit_requirement(
    state: web::Data<AppState>,
    path: web::Path<(i64, i32)>,
    submitted: Submitted<EditRequirementForm>,
) -> WebResult<HttpResponse> {
    let ((id, number), session, form) = (path.into_inner(), submitted.session, submitted.form);
    let user = session.require::<AdminOrExemplar>()?;
    ensure_publisher(&state, user, id).await?;
    let level = level_from(&form.requirement.level)?;
    let revision = revision_from(&form.requirement.revision)?;
    let mut requirements = draft_requirements(&state, id, number).await?;
    let Some(changed) = requirements.iter_mut().find(|r| r.code == form.original_code) else {
        return draft_not_saved(&state, &session, id, number, Err(ApiError::PreconditionFailed)).await;
    };
    let checked_by_service = changed.criterion.is_some();
    changed.code = form.requirement.code.trim().to_owned();
    changed.text = form.requirement.text.trim().to_owned();
    changed.level = level;
    let Refusal { detail: error, status } =
        match save_requirements(&state, &session, id, number, revision, requirements).await {
            Ok(()) => return Ok(see_other(&format!("/standards/{id}?notice=saved&n={number}"))),
            Err(error) => draft_refusal(error)?,
        };
    // The form again, with what was typed and what to correct.
    let standard = state.run(move |db| db.read(|conn| db::standards::get(conn, id))).await?;
    let page = RequirementPage {
        chrome: Chrome::for_session(format!("Change {}", form.original_code), &session, ""),
        id,
        title: standard.title,
        number,
        revision,
        original_code: form.original_code,
        code: form.requirement.code,
        level: level.as_str().to_owned(),
        text: form.requirement.text,
        checked_by_service,
        error: Some(error),
    };
    render(status, &page)
}

#[derive(Deserialize)]
pub struct RemoveRequirementForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    revision: String,
}

/// Removes one requirement from a draft.
pub async fn remove_requirement(
    state: web::Data<AppState>,
    path: web::Path<(i64, i32)>,
    submitted: Submitted<RemoveRequirementForm>,
) -> WebResult<HttpResponse> {
    let ((id, number), session, form) = (path.into_inner(), submitted.session, submitted.form);
    let user = session.require::<AdminOrExemplar>()?;
    ensure_publisher(&state, user, id).await?;
    let revision = revision_from(&form.revision)?;
    let mut requirements = draft_requirements(&state, id, number).await?;
    let before = requirements.len();
    requirements.retain(|r| r.code != form.code);
    if requirements.len() == before {
        return draft_not_saved(&state, &session, id, number, Err(ApiError::PreconditionFailed)).await;
    }
    let outcome = save_requirements(&state, &session, id, number, revision, requirements).await;
    draft_not_saved(&state, &session, id, number, outcome).await
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
    let Loaded { standard, published, draft, .. } = load(&state, id).await?;
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
    change_version(&state, path.into_inner(), submitted.session, db::standards::publish, "published").await
}

/// A version's publication or withdrawal, once confirmed: the same checks, a different
/// operation and notice.
async fn change_version(
    state: &AppState,
    (id, number): (i64, i32),
    session: Session,
    operation: fn(&db::Database, &db::Actor, i64, i32) -> db::DbResult<StandardVersion>,
    notice: &'static str,
) -> WebResult<HttpResponse> {
    let user = session.require::<AdminOrExemplar>()?;
    ensure_publisher(state, user, id).await?;
    let actor = user.actor();
    match state.run(move |db| operation(db, &actor, id, number)).await {
        Ok(_) => Ok(see_other(&format!("/standards/{id}?notice={notice}&n={number}"))),
        Err(error) => {
            let refused = Refusal::of(error)?;
            render_standard(state, &session, id, None, Some(refused.detail), refused.status).await
        }
    }
}

#[derive(Template)]
#[template(path = "withdraw.html")]
struct WithdrawPage {
    chrome: Chrome,
    id: i64,
    title: String,
    number: i32,
    /// Withdrawing the published version (rather than a draft).
    published: bool,
    category: String,
}

/// Asks to confirm withdrawing the published version or the draft, saying what follows.
pub async fn withdraw_page(
    state: web::Data<AppState>,
    session: Session,
    path: web::Path<(i64, i32)>,
) -> WebResult<HttpResponse> {
    let (id, number) = path.into_inner();
    let user = session.require::<AdminOrExemplar>()?;
    ensure_publisher(&state, user, id).await?;
    let Loaded { standard, published, draft, .. } = load(&state, id).await?;
    // Only the published version and the draft can be withdrawn: any other has no such page.
    let is_published = published.is_some_and(|p| p.number == number);
    let is_draft = draft.is_some_and(|d| d.number == number);
    if !(is_published || is_draft) {
        return Err(WebError::NotFound);
    }
    let page = WithdrawPage {
        chrome: Chrome::for_session(format!("Withdraw version {number}"), &session, ""),
        id,
        title: standard.title,
        number,
        published: is_published,
        category: words(&standard.category).to_lowercase(),
    };
    render(StatusCode::OK, &page)
}

/// Withdraws the version, as `POST /v1/standards/{id}/versions/{n}/withdraw` does.
pub async fn withdraw(
    state: web::Data<AppState>,
    path: web::Path<(i64, i32)>,
    submitted: Submitted<NoFields>,
) -> WebResult<HttpResponse> {
    change_version(&state, path.into_inner(), submitted.session, db::standards::withdraw, "withdrawn").await
}
