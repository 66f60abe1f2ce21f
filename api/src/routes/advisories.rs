use actix_web::{HttpRequest, HttpResponse, get, patch, post, web};
use chrono::{DateTime, Utc};
use db::AddedOrder;
use db::advisories::{Advisory, AdvisoryFields, AdvisoryResponse, Exposure, Response, Severity};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::auth::Authorised;
use crate::auth::extractors::{
    ActsForOrganisation, AdminOnly, AdminOrAuditor, AdminOrOfficer, AnyRole, OrganisationPath,
};
use crate::body::Json;
use crate::error::ApiResult;
use crate::openapi::{PreconditionErrors, ReadErrors, WriteErrors};
use crate::preconditions::{IfMatch, optional_json_body, page_request, with_etag};
use crate::spreadsheet;
use crate::state::AppState;
use crate::views::{AdvisoryPage, list_query};

list_query! {
    pub struct AdvisoryQuery {
        pub severity: Option<Severity>,
        ..page,
        /// `csv` for every row from the cursor on as one CSV file (or send `Accept: text/csv`).
        pub format: Option<crate::spreadsheet::Format>,
    }
}

/// List security advisories, ordered by id.
#[utoipa::path(
    tag = "advisories",
    operation_id = "list_advisories",
    security(("bearer" = [])),
    params(AdvisoryQuery),
    responses((status = 200, description = "A page of advisories, or all of them as CSV", content(
            (AdvisoryPage = "application/json"),
            (String = "text/csv"),
        )), ReadErrors)
)]
#[get("/advisories")]
pub async fn list_advisories(
    state: web::Data<AppState>,
    _user: Authorised<AnyRole>,
    query: web::Query<AdvisoryQuery>,
    request: HttpRequest,
) -> ApiResult<HttpResponse> {
    let query = query.into_inner();
    let csv = spreadsheet::wants_csv(&request, query.format);
    let page = page_request(query.limit, query.cursor)?;
    spreadsheet::list(&state, csv, "advisories", page, move |conn, page| {
        db::advisories::list(conn, query.severity, AddedOrder::OldestFirst, page)
    })
    .await
}

/// One advisory.
#[utoipa::path(
    tag = "advisories",
    operation_id = "get_advisory",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Advisory id")),
    responses((status = 200, body = Advisory, headers(("ETag" = String))), ReadErrors)
)]
#[get("/advisories/{id}")]
pub async fn get_advisory(
    state: web::Data<AppState>,
    _user: Authorised<AnyRole>,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let advisory = state.read(move |conn| db::advisories::get(conn, id)).await?;
    Ok(with_etag(HttpResponse::Ok(), advisory.revision, &advisory))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAdvisory {
    #[schema(example = "CC-2017-0001")]
    #[schema(min_length = 1)]
    #[schema(pattern = "[^\\s\\u0085]")]
    pub reference: String,
    #[schema(min_length = 1)]
    #[schema(pattern = "[^\\s\\u0085]")]
    pub title: String,
    pub severity: Severity,
    pub published_at: DateTime<Utc>,
    #[schema(min_length = 1)]
    #[schema(pattern = "[^\\s\\u0085]")]
    pub remediation: String,
    #[serde(default)]
    pub links: Vec<String>,
    /// Product ids; at least one.
    #[schema(min_items = 1)]
    pub affected_product_ids: Vec<i64>,
    pub source: Option<String>,
}

/// Publish a security advisory.
#[utoipa::path(
    tag = "advisories",
    operation_id = "create_advisory",
    security(("bearer" = [])),
    request_body = CreateAdvisory,
    responses((status = 201, body = Advisory, headers(("ETag" = String))), WriteErrors)
)]
#[post("/advisories")]
pub async fn create_advisory(
    state: web::Data<AppState>,
    admin: Authorised<AdminOnly>,
    body: Json<CreateAdvisory>,
) -> ApiResult<HttpResponse> {
    let b = body.into_inner();
    let fields = AdvisoryFields {
        reference: b.reference,
        title: b.title,
        severity: b.severity,
        published_at: b.published_at.naive_utc(),
        remediation: b.remediation,
        links: b.links,
        affected_product_ids: b.affected_product_ids,
        source: b.source,
    };
    let actor = admin.actor();
    let advisory = state.run(move |db| db::advisories::create(db, &actor, fields)).await?;
    Ok(with_etag(HttpResponse::Created(), advisory.revision, &advisory))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAdvisory {
    #[schema(min_length = 1)]
    #[schema(pattern = "[^\\s\\u0085]")]
    pub title: Option<String>,
    pub severity: Option<Severity>,
    pub published_at: Option<DateTime<Utc>>,
    #[schema(min_length = 1)]
    #[schema(pattern = "[^\\s\\u0085]")]
    pub remediation: Option<String>,
    pub links: Option<Vec<String>>,
    /// Product ids; at least one.
    #[schema(min_items = 1)]
    pub affected_product_ids: Option<Vec<i64>>,
    pub source: Option<String>,
}

/// Update an advisory.
#[utoipa::path(
    tag = "advisories",
    operation_id = "update_advisory",
    security(("bearer" = [])),
    params(
        ("id" = i64, Path, description = "Advisory id"),
        ("If-Match" = String, Header, description = "The ETag from GET (a quoted entity tag such as \"3\"; several may be listed), or *; anything else is refused with 400", pattern = r#"^\s*(\*|(W/)?"[^"]*"(\s*,\s*(W/)?"[^"]*")*)\s*$"#),
    ),
    request_body = UpdateAdvisory,
    responses((status = 200, body = Advisory, headers(("ETag" = String))), WriteErrors, PreconditionErrors)
)]
#[patch("/advisories/{id}")]
pub async fn update_advisory(
    state: web::Data<AppState>,
    admin: Authorised<AdminOnly>,
    id: web::Path<i64>,
    if_match: IfMatch,
    body: Json<UpdateAdvisory>,
) -> ApiResult<HttpResponse> {
    let precondition = if_match.precondition()?;
    let b = body.into_inner();
    let change = move |f: &mut AdvisoryFields| {
        if let Some(title) = b.title {
            f.title = title;
        }
        if let Some(severity) = b.severity {
            f.severity = severity;
        }
        if let Some(published_at) = b.published_at {
            f.published_at = published_at.naive_utc();
        }
        if let Some(remediation) = b.remediation {
            f.remediation = remediation;
        }
        if let Some(links) = b.links {
            f.links = links;
        }
        if let Some(ids) = b.affected_product_ids {
            f.affected_product_ids = ids;
        }
        if b.source.is_some() {
            f.source = b.source;
        }
    };
    let (id, actor) = (id.into_inner(), admin.actor());
    let advisory = state.run(move |db| db::advisories::update(db, &actor, id, change, precondition)).await?;
    Ok(with_etag(HttpResponse::Ok(), advisory.revision, &advisory))
}

/// Every organisation holding an affected product (through live allocations or local
/// purchases), with what it holds and its response; overdue first.
#[utoipa::path(
    tag = "advisories",
    operation_id = "get_advisory_exposure",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Advisory id"), crate::spreadsheet::FormatQuery),
    responses(
        (status = 200, description = "The exposure, or its organisations (a row each) as CSV", content(
            (Exposure = "application/json"),
            (String = "text/csv"),
        )),
        ReadErrors
    ))]
#[get("/advisories/{id}/exposure")]
pub async fn get_advisory_exposure(
    state: web::Data<AppState>,
    _user: Authorised<AdminOrAuditor>,
    id: web::Path<i64>,
    query: web::Query<crate::spreadsheet::FormatQuery>,
    request: HttpRequest,
) -> ApiResult<HttpResponse> {
    let (id, csv) = (id.into_inner(), spreadsheet::wants_csv(&request, query.format));
    let at = Utc::now().naive_utc();
    let exposure = state.read(move |conn| db::advisories::exposure(conn, id, at)).await?;
    if csv {
        return Ok(spreadsheet::whole("exposure", &exposure.organisations));
    }
    Ok(HttpResponse::Ok().json(exposure))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct Acknowledgement {
    /// Whether the advisory applies to the organisation, if already known.
    pub applicable: Option<bool>,
    pub reason: Option<String>,
}

/// Acknowledge an advisory for an organisation (high and critical: within 48 hours).
#[utoipa::path(
    tag = "advisories",
    operation_id = "acknowledge_advisory",
    security(("bearer" = [])),
    params(("code" = String, Path, description = "ODS code"), ("id" = i64, Path, description = "Advisory id")),
    request_body(content = Option<Acknowledgement>, description = "Optional: applicability, if known"),
    responses((status = 200, body = AdvisoryResponse), WriteErrors)
)]
#[post("/organisations/{code}/advisories/{id}/acknowledge")]
pub async fn acknowledge_advisory(
    state: web::Data<AppState>,
    _role: Authorised<AdminOrOfficer>,
    organisation: OrganisationPath<ActsForOrganisation>,
    path: web::Path<(String, i64)>,
    body: web::Bytes,
) -> ApiResult<web::Json<AdvisoryResponse>> {
    let acknowledgement: Acknowledgement = optional_json_body(&body)?.unwrap_or_default();
    let response =
        Response::Acknowledge { applicable: acknowledgement.applicable, reason: acknowledgement.reason };
    respond(&state, organisation, path.into_inner().1, response).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Applicability {
    pub applicable: bool,
    pub reason: Option<String>,
}

/// State whether an acknowledged advisory applies to the organisation, and why.
#[utoipa::path(
    tag = "advisories",
    operation_id = "set_advisory_applicability",
    security(("bearer" = [])),
    params(("code" = String, Path, description = "ODS code"), ("id" = i64, Path, description = "Advisory id")),
    request_body = Applicability,
    responses((status = 200, body = AdvisoryResponse), WriteErrors)
)]
#[post("/organisations/{code}/advisories/{id}/applicability")]
pub async fn set_advisory_applicability(
    state: web::Data<AppState>,
    _role: Authorised<AdminOrOfficer>,
    organisation: OrganisationPath<ActsForOrganisation>,
    path: web::Path<(String, i64)>,
    body: Json<Applicability>,
) -> ApiResult<web::Json<AdvisoryResponse>> {
    let b = body.into_inner();
    respond(
        &state,
        organisation,
        path.into_inner().1,
        Response::Applicability { applicable: b.applicable, reason: b.reason },
    )
    .await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Closure {
    /// What was done to remediate.
    #[schema(min_length = 1)]
    #[schema(pattern = "[^\\s\\u0085]")]
    pub remediation_note: String,
}

/// Close an acknowledged advisory for an organisation, with a remediation note.
#[utoipa::path(
    tag = "advisories",
    operation_id = "close_advisory",
    security(("bearer" = [])),
    params(("code" = String, Path, description = "ODS code"), ("id" = i64, Path, description = "Advisory id")),
    request_body = Closure,
    responses((status = 200, body = AdvisoryResponse), WriteErrors)
)]
#[post("/organisations/{code}/advisories/{id}/close")]
pub async fn close_advisory(
    state: web::Data<AppState>,
    _role: Authorised<AdminOrOfficer>,
    organisation: OrganisationPath<ActsForOrganisation>,
    path: web::Path<(String, i64)>,
    body: Json<Closure>,
) -> ApiResult<web::Json<AdvisoryResponse>> {
    let note = body.into_inner().remediation_note;
    respond(&state, organisation, path.into_inner().1, Response::Close { remediation_note: note }).await
}

async fn respond(
    state: &AppState,
    organisation: OrganisationPath<ActsForOrganisation>,
    advisory_id: i64,
    response: Response,
) -> ApiResult<web::Json<AdvisoryResponse>> {
    let (actor, code) = (organisation.user.actor(), organisation.code);
    Ok(web::Json(
        state.run(move |db| db::advisories::respond(db, &actor, advisory_id, &code, response)).await?,
    ))
}
