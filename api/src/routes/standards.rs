use actix_web::{HttpRequest, HttpResponse, get, patch, post, web};
use db::standards::{
    Assessment, DraftChanges, NewAssessment, NewStandard, Outcome, RequirementInput, Standard,
    StandardFilter, StandardVersion, VersionStatus,
};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::auth::Authorised;
use crate::auth::ensure_publisher;
use crate::auth::extractors::{AdminOrExemplar, AnyRole};
use crate::body::Json;
use crate::error::{ApiError, ApiResult};
use crate::openapi::{PreconditionErrors, ReadErrors, WriteErrors};
use crate::preconditions::{IfMatch, double_option, page_request, with_etag};
use crate::routes::today;
use crate::spreadsheet;
use crate::state::AppState;
use crate::views::{StandardPage, list_query};

list_query! {
    pub struct StandardQuery {
        pub category: Option<String>,
        /// ODS code of the publisher.
        pub publisher: Option<String>,
        /// Standards with at least one version in this status.
        pub status: Option<VersionStatus>,
        ..page,
        /// `csv` for every row from the cursor on as one CSV file (or send `Accept: text/csv`).
        pub format: Option<crate::spreadsheet::Format>,
    }
}

/// List "buy against" standards, ordered by id.
#[utoipa::path(
    tag = "standards",
    operation_id = "list_standards",
    security(("bearer" = [])),
    params(StandardQuery),
    responses((status = 200, description = "A page of standards, or all of them as CSV", content(
            (StandardPage = "application/json"),
            (String = "text/csv"),
        )), ReadErrors)
)]
#[get("/standards")]
pub async fn list_standards(
    state: web::Data<AppState>,
    _user: Authorised<AnyRole>,
    query: web::Query<StandardQuery>,
    request: HttpRequest,
) -> ApiResult<HttpResponse> {
    let query = query.into_inner();
    let csv = spreadsheet::wants_csv(&request, query.format);
    let page = page_request(query.limit, query.cursor)?;
    let filter = StandardFilter {
        category: query.category,
        publisher_code: query.publisher,
        status: query.status,
        ..Default::default()
    };
    spreadsheet::list(&state, csv, "standards", page, move |conn, page| {
        db::standards::list(conn, &filter, page)
    })
    .await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateStandard {
    /// ODS code of the publishing exemplar (exemplars: their own organisation).
    pub publisher: String,
    /// A category slug, e.g. `medical-device-software`.
    #[schema(pattern = "^[a-z0-9-]+$")]
    pub category: String,
    #[schema(min_length = 1)]
    #[schema(pattern = "[^\\s\\u0085]")]
    pub title: String,
    pub source: Option<String>,
    /// Summary of the first (draft) version.
    pub summary: Option<String>,
    #[serde(default)]
    pub requirements: Vec<RequirementInput>,
}

/// Create a standard with a draft version 1.
#[utoipa::path(
    tag = "standards",
    operation_id = "create_standard",
    security(("bearer" = [])),
    request_body = CreateStandard,
    responses((status = 201, body = Standard), WriteErrors)
)]
#[post("/standards")]
pub async fn create_standard(
    state: web::Data<AppState>,
    user: Authorised<AdminOrExemplar>,
    body: Json<CreateStandard>,
) -> ApiResult<HttpResponse> {
    let b = body.into_inner();
    user.ensure_can_act_for(&b.publisher)
        .map_err(|_| ApiError::Forbidden("exemplars publish only for their own organisation".into()))?;
    let new = NewStandard {
        publisher_code: b.publisher,
        category: b.category,
        title: b.title,
        source: b.source,
        summary: b.summary,
        requirements: b.requirements,
    };
    let actor = user.actor();
    let standard = state.run(move |db| db::standards::create(db, &actor, new)).await?;
    Ok(HttpResponse::Created().json(standard))
}

/// One standard with the history of its versions.
#[utoipa::path(
    tag = "standards",
    operation_id = "get_standard",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Standard id")),
    responses((status = 200, body = Standard), ReadErrors)
)]
#[get("/standards/{id}")]
pub async fn get_standard(
    state: web::Data<AppState>,
    _user: Authorised<AnyRole>,
    id: web::Path<i64>,
) -> ApiResult<web::Json<Standard>> {
    let id = id.into_inner();
    Ok(web::Json(state.read(move |conn| db::standards::get(conn, id)).await?))
}

/// One version of a standard with its requirements.
#[utoipa::path(
    tag = "standards",
    operation_id = "get_standard_version",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Standard id"), ("n" = i32, Path, description = "Version number")),
    responses((status = 200, body = StandardVersion, headers(("ETag" = String))), ReadErrors)
)]
#[get("/standards/{id}/versions/{n}")]
pub async fn get_standard_version(
    state: web::Data<AppState>,
    _user: Authorised<AnyRole>,
    path: web::Path<(i64, i32)>,
) -> ApiResult<HttpResponse> {
    let (id, number) = path.into_inner();
    let version = state.read(move |conn| db::standards::get_version(conn, id, number)).await?;
    Ok(with_etag(HttpResponse::Ok(), version.revision, &version))
}

/// Start a new draft, copied from the latest version (only one draft at a time).
#[utoipa::path(
    tag = "standards",
    operation_id = "create_standard_version",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Standard id")),
    responses((status = 201, body = StandardVersion, headers(("ETag" = String))), WriteErrors)
)]
#[post("/standards/{id}/versions")]
pub async fn create_standard_version(
    state: web::Data<AppState>,
    user: Authorised<AdminOrExemplar>,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    ensure_publisher(&state, &user, id).await?;
    let actor = user.actor();
    let version = state.run(move |db| db::standards::new_draft(db, &actor, id)).await?;
    Ok(with_etag(HttpResponse::Created(), version.revision, &version))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateDraft {
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub summary: Option<Option<String>>,
    /// Replaces every requirement of the draft.
    pub requirements: Option<Vec<RequirementInput>>,
}

/// Edit a draft version. Published, superseded and withdrawn versions never change (409).
#[utoipa::path(
    tag = "standards",
    operation_id = "update_standard_version",
    security(("bearer" = [])),
    params(
        ("id" = i64, Path, description = "Standard id"),
        ("n" = i32, Path, description = "Version number"),
        ("If-Match" = String, Header, description = "The ETag from GET (a quoted entity tag such as \"3\"; several may be listed), or *; anything else is refused with 400", pattern = r#"^\s*(\*|(W/)?"[^"]*"(\s*,\s*(W/)?"[^"]*")*)\s*$"#),
    ),
    request_body = UpdateDraft,
    responses((status = 200, body = StandardVersion, headers(("ETag" = String))), WriteErrors, PreconditionErrors)
)]
#[patch("/standards/{id}/versions/{n}")]
pub async fn update_standard_version(
    state: web::Data<AppState>,
    user: Authorised<AdminOrExemplar>,
    path: web::Path<(i64, i32)>,
    if_match: IfMatch,
    body: Json<UpdateDraft>,
) -> ApiResult<HttpResponse> {
    let precondition = if_match.precondition()?;
    let (id, number) = path.into_inner();
    ensure_publisher(&state, &user, id).await?;
    let b = body.into_inner();
    let changes = DraftChanges { summary: b.summary, requirements: b.requirements };
    let actor = user.actor();
    let version =
        state.run(move |db| db::standards::edit_draft(db, &actor, id, number, changes, precondition)).await?;
    Ok(with_etag(HttpResponse::Ok(), version.revision, &version))
}

/// Publish a draft. The version published until now is superseded in the same transaction.
#[utoipa::path(
    tag = "standards",
    operation_id = "publish_standard_version",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Standard id"), ("n" = i32, Path, description = "Version number")),
    responses((status = 200, body = StandardVersion), WriteErrors)
)]
#[post("/standards/{id}/versions/{n}/publish")]
pub async fn publish_standard_version(
    state: web::Data<AppState>,
    user: Authorised<AdminOrExemplar>,
    path: web::Path<(i64, i32)>,
) -> ApiResult<web::Json<StandardVersion>> {
    let (id, number) = path.into_inner();
    ensure_publisher(&state, &user, id).await?;
    let actor = user.actor();
    Ok(web::Json(state.run(move |db| db::standards::publish(db, &actor, id, number)).await?))
}

/// Withdraw a draft or the published version.
#[utoipa::path(
    tag = "standards",
    operation_id = "withdraw_standard_version",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Standard id"), ("n" = i32, Path, description = "Version number")),
    responses((status = 200, body = StandardVersion), WriteErrors)
)]
#[post("/standards/{id}/versions/{n}/withdraw")]
pub async fn withdraw_standard_version(
    state: web::Data<AppState>,
    user: Authorised<AdminOrExemplar>,
    path: web::Path<(i64, i32)>,
) -> ApiResult<web::Json<StandardVersion>> {
    let (id, number) = path.into_inner();
    ensure_publisher(&state, &user, id).await?;
    let actor = user.actor();
    Ok(web::Json(state.run(move |db| db::standards::withdraw(db, &actor, id, number)).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutcomeInput {
    /// The requirement's code.
    pub requirement: String,
    pub met: bool,
    pub note: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAssessment {
    pub product_id: i64,
    /// One per requirement. Machine-checkable requirements are evaluated by the service too.
    pub outcomes: Vec<OutcomeInput>,
    /// Links to the evidence.
    #[serde(default)]
    pub evidence: Vec<String>,
}

/// Assess a product against the published version.
#[utoipa::path(
    tag = "standards",
    operation_id = "create_assessment",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Standard id"), ("n" = i32, Path, description = "Version number")),
    request_body = CreateAssessment,
    responses((status = 201, body = Assessment), WriteErrors)
)]
#[post("/standards/{id}/versions/{n}/assessments")]
pub async fn create_assessment(
    state: web::Data<AppState>,
    user: Authorised<AdminOrExemplar>,
    path: web::Path<(i64, i32)>,
    body: Json<CreateAssessment>,
) -> ApiResult<HttpResponse> {
    let (id, number) = path.into_inner();
    ensure_publisher(&state, &user, id).await?;
    let b = body.into_inner();
    let new = NewAssessment {
        product_id: b.product_id,
        outcomes: b
            .outcomes
            .into_iter()
            .map(|o| Outcome { requirement: o.requirement, met: o.met, evaluated: None, note: o.note })
            .collect(),
        evidence: b.evidence,
    };
    let actor = user.actor();
    let assessment = state.run(move |db| db::standards::assess(db, &actor, id, number, new, today())).await?;
    Ok(HttpResponse::Created().json(assessment))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AssessmentQuery {
    /// Only conforming products are listed unless this is true.
    #[serde(default)]
    pub include_nonconforming: bool,
    /// `csv` for the assessments as one CSV file (or send `Accept: text/csv`).
    pub format: Option<crate::spreadsheet::Format>,
}

/// The products assessed against a version: the conforming ones, unless asked for all.
#[utoipa::path(
    tag = "standards",
    operation_id = "list_assessments",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Standard id"), ("n" = i32, Path, description = "Version number"), AssessmentQuery),
    responses(
        (status = 200, description = "The assessments, or as CSV", content(
            (Vec<Assessment> = "application/json"),
            (String = "text/csv"),
        )),
        ReadErrors
    )
)]
#[get("/standards/{id}/versions/{n}/assessments")]
pub async fn list_assessments(
    state: web::Data<AppState>,
    _user: Authorised<AnyRole>,
    path: web::Path<(i64, i32)>,
    query: web::Query<AssessmentQuery>,
    request: HttpRequest,
) -> ApiResult<HttpResponse> {
    let ((id, number), all) = (path.into_inner(), query.include_nonconforming);
    let csv = spreadsheet::wants_csv(&request, query.format);
    let assessments = state.read(move |conn| db::standards::assessments_of(conn, id, number, all)).await?;
    Ok(spreadsheet::report(csv, "assessments", assessments, |assessments| assessments))
}
