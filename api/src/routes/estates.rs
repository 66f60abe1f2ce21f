//! Estates: an organisation's inventory exports in (`db::estates`), what it runs out, and the
//! national team's queue of names that matched no product. The import body is read like an ODS
//! file's (`text/csv`, up to 32 MiB); larger exports go through `catalogue estate import`.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use chrono::NaiveDate;
use db::estates::{Estate, ImportReport, Mapped};
use db::vocabulary::EstateSource;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::auth::Authorised;
use crate::auth::extractors::{ActsForOrganisation, AdminOnly, AdminOrAuditor, AdminOrOfficer, AnyRole};
use crate::auth::extractors::{OrganisationPath, ReadsOrganisation};
use crate::body::Json;
use crate::error::ApiResult;
use crate::openapi::{OrganisationCsvWriteErrors, ReadErrors, WriteErrors};
use crate::preconditions::page_request;
use crate::routes::ods::{FileUpload, OdsFileBytes, csv_body};
use crate::routes::today;
use crate::spreadsheet::{self, FormatQuery};
use crate::state::AppState;
use crate::views::{UnmatchedPage, list_query};

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EstateImportQuery {
    /// Which export the body is: `catalogue` (the catalogue's own CSV: `product`, `release`,
    /// `devices`, `users`, `site`), `defender` (a Microsoft Defender for Endpoint software
    /// inventory, `DeviceTvmSoftwareInventory`, one row per device and program) or `intune` (an
    /// Intune discovered-apps export, `AppInvAggregate`).
    pub source: EstateSource,
    /// The day the inventory was taken (default today; not in the future).
    pub taken_on: Option<NaiveDate>,
    /// Report what each row would match, and write nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// Import what an organisation runs from one inventory export, replacing its previous snapshot
/// of that source in one transaction. Each row is matched to a product (and release), or left
/// unmatched for the national team to map, or invalid: a file with any invalid row is refused
/// whole (422, naming lines) and the previous snapshot stays. With `dry_run=true` nothing is
/// written and the report lists each row's outcome. Officers of the organisation (or of an ICB
/// acting for it), and the national team.
#[utoipa::path(
    tag = "estates",
    operation_id = "import_estate",
    security(("bearer" = [])),
    params(("code" = String, Path, description = "ODS code"), EstateImportQuery),
    request_body(
        description = "The export: as text/csv, as application/octet-stream for clients that send files as bytes, or as a multipart/form-data form whose part `file` is the export",
        content((String = "text/csv"), (OdsFileBytes = "application/octet-stream"), (FileUpload = "multipart/form-data"))
    ),
    responses((status = 200, body = ImportReport), OrganisationCsvWriteErrors)
)]
#[post("/organisations/{code}/estate")]
pub async fn import_estate(
    state: web::Data<AppState>,
    _role: Authorised<AdminOrOfficer>,
    organisation: OrganisationPath<ActsForOrganisation>,
    query: web::Query<EstateImportQuery>,
    request: HttpRequest,
    payload: web::Payload,
) -> ApiResult<web::Json<ImportReport>> {
    let query = query.into_inner();
    let body = csv_body(&request, payload).await?;
    let (code, actor) = (organisation.code, organisation.user.actor());
    let taken_on = query.taken_on.unwrap_or_else(today);
    let report = state
        .run(move |db| {
            if query.dry_run {
                db.read(|conn| {
                    db::estates::plan(conn, &code, query.source, taken_on, body.as_slice(), &mut |_| {})
                        .map(|plan| plan.report)
                })
            } else {
                db::estates::import(db, &actor, &code, query.source, taken_on, body.as_slice(), &mut |_| {})
            }
        })
        .await?;
    Ok(web::Json(report))
}

/// What an organisation runs, from its current snapshots (one per source; a product's count is
/// the largest any one source gives, as sources overlap).
#[utoipa::path(
    tag = "estates",
    operation_id = "get_estate",
    security(("bearer" = [])),
    params(("code" = String, Path, description = "ODS code"), FormatQuery),
    responses(
        (status = 200, description = "The estate, or what it runs (a row per product and release) as CSV", content(
            (Estate = "application/json"),
            (String = "text/csv"),
        )),
        ReadErrors
    )
)]
#[get("/organisations/{code}/estate")]
pub async fn get_estate(
    state: web::Data<AppState>,
    _role: Authorised<AnyRole>,
    organisation: OrganisationPath<ReadsOrganisation>,
    query: web::Query<FormatQuery>,
    request: HttpRequest,
) -> ApiResult<HttpResponse> {
    let (code, csv) = (organisation.code, spreadsheet::wants_csv(&request, query.format));
    let estate = state.read(move |conn| db::estates::estate(conn, &code)).await?;
    if csv {
        return Ok(spreadsheet::whole("estate", &estate.running));
    }
    Ok(HttpResponse::Ok().json(estate))
}

list_query! {
    pub struct UnmatchedQuery {
        ..page,
        /// `csv` for every row from the cursor on as one CSV file (or send `Accept: text/csv`).
        pub format: Option<crate::spreadsheet::Format>,
    }
}

/// Names in current estate snapshots that match no product, most devices first: the national
/// team maps each once (`POST /v1/estate/mappings`).
#[utoipa::path(
    tag = "estates",
    operation_id = "list_unmatched_software",
    security(("bearer" = [])),
    params(UnmatchedQuery),
    responses((status = 200, description = "A page of unmatched names, or all of them as CSV", content(
            (UnmatchedPage = "application/json"),
            (String = "text/csv"),
        )), ReadErrors)
)]
#[get("/estate/unmatched")]
pub async fn list_unmatched_software(
    state: web::Data<AppState>,
    _role: Authorised<AdminOrAuditor>,
    query: web::Query<UnmatchedQuery>,
    request: HttpRequest,
) -> ApiResult<HttpResponse> {
    let query = query.into_inner();
    let csv = spreadsheet::wants_csv(&request, query.format);
    let page = page_request(query.limit, query.cursor)?;
    spreadsheet::list(&state, csv, "unmatched-software", page, move |conn, page| {
        db::estates::unmatched(conn, page)
    })
    .await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MapSoftwareName {
    /// The vendor as the exports give it (`SoftwareVendor`, `ApplicationPublisher`); empty for
    /// the catalogue's own CSV.
    #[serde(default)]
    #[schema(max_length = 500)]
    pub vendor: String,
    /// The name as the exports give it (`SoftwareName`, `ApplicationName`).
    #[schema(min_length = 1, max_length = 500, pattern = "[A-Za-z0-9]")]
    pub name: String,
    pub product_id: i64,
}

/// Map a software name (with its vendor) to a product, for every later import of every
/// organisation; rows of it waiting in current snapshots are matched at once. A name mapped
/// before is remapped.
#[utoipa::path(
    tag = "estates",
    operation_id = "map_software_name",
    security(("bearer" = [])),
    request_body = MapSoftwareName,
    responses((status = 200, body = Mapped), WriteErrors)
)]
#[post("/estate/mappings")]
pub async fn map_software_name(
    state: web::Data<AppState>,
    admin: Authorised<AdminOnly>,
    body: Json<MapSoftwareName>,
) -> ApiResult<web::Json<Mapped>> {
    let body = body.into_inner();
    let actor = admin.actor();
    Ok(web::Json(
        state
            .run(move |db| db::estates::map_name(db, &actor, &body.vendor, &body.name, body.product_id))
            .await?,
    ))
}
