use actix_web::{HttpRequest, HttpResponse, get, patch, post, put, web};
use db::organisations::{
    NewOrganisation, Organisation, OrganisationChanges, OrganisationFilter, OrganisationOrder,
};
use db::vocabulary::OrganisationKind;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Authorised;
use crate::auth::extractors::{ActsAsOrganisation, AdminOnly, AdminOrOfficer, AnyRole, OrganisationPath};
use crate::body::Json;
use crate::error::ApiResult;
use crate::openapi::{PreconditionErrors, ReadErrors, WriteErrors};
use crate::preconditions::{IfMatch, double_option, page_request, with_etag};
use crate::spreadsheet::{self, Format};
use crate::state::AppState;
use crate::views::{OrganisationPage, list_query};

list_query! {
    pub struct OrganisationQuery {
        pub kind: Option<OrganisationKind>,
        /// The NHS England region, by name (`London`) or ODS national grouping code (`Y56`).
        pub region: Option<String>,
        /// The ODS code of the commissioning ICB or sub-ICB location (`QWO`).
        pub parent: Option<String>,
        pub exemplar: Option<bool>,
        /// Case-insensitive part of the name or code.
        pub q: Option<String>,
        /// Closed organisations are left out unless this is true.
        #[serde(default)]
        pub include_closed: bool,
        ..page,
        /// `csv` for every organisation from the cursor on as one CSV file (or send `Accept: text/csv`).
        pub format: Option<Format>,
    }
}

/// List organisations, ordered by ODS code.
#[utoipa::path(
    tag = "organisations",
    operation_id = "list_organisations",
    security(("bearer" = [])),
    params(OrganisationQuery),
    responses(
        (status = 200, description = "A page of organisations, or all of them as CSV", content(
            (OrganisationPage = "application/json"),
            (String = "text/csv"),
        )),
        ReadErrors
    )
)]
#[get("/organisations")]
pub async fn list_organisations(
    state: web::Data<AppState>,
    _user: Authorised<AnyRole>,
    query: web::Query<OrganisationQuery>,
    request: HttpRequest,
) -> ApiResult<HttpResponse> {
    let query = query.into_inner();
    let csv = spreadsheet::wants_csv(&request, query.format);
    let page = page_request(query.limit, query.cursor)?;
    let filter = OrganisationFilter {
        kind: query.kind,
        region: query.region,
        parent: query.parent,
        exemplar: query.exemplar,
        q: query.q,
        include_closed: query.include_closed,
        // The API's documented order.
        order: OrganisationOrder::Code,
    };
    spreadsheet::list(&state, csv, "organisations", page, move |conn, page| {
        db::organisations::list(conn, &filter, page)
    })
    .await
}

/// One organisation by ODS code; a closed one answers too, marked closed, with its successor.
#[utoipa::path(
    tag = "organisations",
    operation_id = "get_organisation",
    security(("bearer" = [])),
    params(("code" = String, Path, description = "ODS code")),
    responses((status = 200, body = Organisation, headers(("ETag" = String))), ReadErrors)
)]
#[get("/organisations/{code}")]
pub async fn get_organisation(
    state: web::Data<AppState>,
    _user: Authorised<AnyRole>,
    code: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let code = code.into_inner();
    let organisation = state.read(move |conn| db::organisations::get(conn, &code)).await?;
    Ok(with_etag(HttpResponse::Ok(), organisation.revision, &organisation))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrganisation {
    /// ODS code: 3 to 10 letters and digits (stored upper-case).
    #[schema(pattern = "^[A-Za-z0-9]{3,10}$")]
    pub code: String,
    #[schema(min_length = 1)]
    #[schema(pattern = "[^\\s\\u0085]")]
    pub name: String,
    pub kind: OrganisationKind,
    pub region: Option<String>,
    #[serde(default)]
    pub exemplar: bool,
    pub source: Option<String>,
}

/// Create an organisation.
#[utoipa::path(
    tag = "organisations",
    operation_id = "create_organisation",
    security(("bearer" = [])),
    request_body = CreateOrganisation,
    responses((status = 201, body = Organisation, headers(("ETag" = String))), WriteErrors)
)]
#[post("/organisations")]
pub async fn create_organisation(
    state: web::Data<AppState>,
    admin: Authorised<AdminOnly>,
    body: Json<CreateOrganisation>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    let new = NewOrganisation {
        code: body.code,
        name: body.name,
        kind: body.kind,
        region: body.region,
        exemplar: body.exemplar,
        source: body.source,
    };
    let actor = admin.actor();
    let organisation = state.run(move |db| db::organisations::create(db, &actor, new)).await?;
    Ok(with_etag(HttpResponse::Created(), organisation.revision, &organisation))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOrganisation {
    #[schema(min_length = 1)]
    #[schema(pattern = "[^\\s\\u0085]")]
    pub name: Option<String>,
    pub kind: Option<OrganisationKind>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub region: Option<Option<String>>,
    pub exemplar: Option<bool>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub source: Option<Option<String>>,
}

/// Update an organisation (closing one is done by succession). On an organisation imported from
/// ODS (`ods_file` set), ODS owns the name and region: changing one is refused with 409.
#[utoipa::path(
    tag = "organisations",
    operation_id = "update_organisation",
    security(("bearer" = [])),
    params(
        ("code" = String, Path, description = "ODS code"),
        ("If-Match" = String, Header, description = "The ETag from GET (a quoted entity tag such as \"3\"; several may be listed), or *; anything else is refused with 400", pattern = r#"^\s*(\*|(W/)?"[^"]*"(\s*,\s*(W/)?"[^"]*")*)\s*$"#),
    ),
    request_body = UpdateOrganisation,
    responses((status = 200, body = Organisation, headers(("ETag" = String))), WriteErrors, PreconditionErrors)
)]
#[patch("/organisations/{code}")]
pub async fn update_organisation(
    state: web::Data<AppState>,
    admin: Authorised<AdminOnly>,
    code: web::Path<String>,
    if_match: IfMatch,
    body: Json<UpdateOrganisation>,
) -> ApiResult<HttpResponse> {
    let precondition = if_match.precondition()?;
    let body = body.into_inner();
    let changes = OrganisationChanges {
        name: body.name,
        kind: body.kind,
        region: body.region,
        exemplar: body.exemplar,
        source: body.source,
    };
    let (code, actor) = (code.into_inner(), admin.actor());
    let organisation =
        state.run(move |db| db::organisations::update(db, &actor, &code, changes, precondition)).await?;
    Ok(with_etag(HttpResponse::Ok(), organisation.revision, &organisation))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetActingGrant {
    /// True to let the ICB's officers act for the organisations it commissions for (coverage,
    /// claims, advisory responses), false to stop them at once.
    pub granted: bool,
}

/// Whether an ICB's officers act for the organisations it commissions for.
#[derive(Serialize, ToSchema)]
pub struct ActingGrant {
    #[schema(example = "QWO")]
    pub icb_code: String,
    pub granted: bool,
    /// Who granted it, while granted.
    pub granted_by: Option<String>,
    pub granted_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Let the officers of an ICB act for the organisations it commissions for (those whose
/// `parent_code` is the ICB, from ODS), or stop them: the ICB's own decision, so its officers (or
/// an admin) make it. Each act is then audited with the acting ICB beside the organisation. 422
/// for an organisation that is not an open ICB; setting what is already so records nothing.
#[utoipa::path(
    tag = "organisations",
    operation_id = "set_icb_acting_grant",
    security(("bearer" = [])),
    params(("code" = String, Path, description = "ODS code of the ICB")),
    request_body = SetActingGrant,
    responses((status = 200, body = ActingGrant), WriteErrors)
)]
#[put("/organisations/{code}/acting-grant")]
pub async fn set_icb_acting_grant(
    state: web::Data<AppState>,
    _role: Authorised<AdminOrOfficer>,
    organisation: OrganisationPath<ActsAsOrganisation>,
    body: Json<SetActingGrant>,
) -> ApiResult<web::Json<ActingGrant>> {
    let (actor, code, granted) = (organisation.user.actor(), organisation.code, body.into_inner().granted);
    let icb_code = code.clone();
    let grant = state.run(move |db| db::icb_acting::set(db, &actor, &code, granted)).await?;
    Ok(web::Json(ActingGrant {
        icb_code,
        granted: grant.is_some(),
        granted_by: grant.as_ref().map(|g| g.granted_by.clone()),
        granted_at: grant.map(|g| g.granted_at.and_utc()),
    }))
}
