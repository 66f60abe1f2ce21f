//! Releases and their lifecycle: a product's releases, the mapping to endoflife.date that
//! `catalogue lifecycle sync` reads (admins edit it), and the synced dates held for an admin.

use actix_web::{HttpRequest, HttpResponse, get, post, put, web};
use db::lifecycle::{HoldRow, LifecycleSource};
use db::releases::Release;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Authorised;
use crate::auth::extractors::{AdminOnly, AnyRole};
use crate::body::Json;
use crate::error::ApiResult;
use crate::openapi::{ReadErrors, WriteErrors};
use crate::spreadsheet::{self, Format, FormatQuery};
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
pub struct ReleaseList {
    /// Newest first.
    pub items: Vec<Release>,
}

/// A product's releases, newest first, each with its support dates. Support status is decided
/// per release (see `action` in the coverage answer).
#[utoipa::path(
    tag = "products",
    operation_id = "list_product_releases",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Product id"), FormatQuery),
    responses(
        (status = 200, description = "The releases, or as CSV", content(
            (ReleaseList = "application/json"),
            (String = "text/csv"),
        )),
        ReadErrors
    )
)]
#[get("/products/{id}/releases")]
pub async fn list_product_releases(
    state: web::Data<AppState>,
    _user: Authorised<AnyRole>,
    id: web::Path<i64>,
    query: web::Query<FormatQuery>,
    request: HttpRequest,
) -> ApiResult<HttpResponse> {
    let (id, csv) = (id.into_inner(), spreadsheet::wants_csv(&request, query.format));
    let items = state
        .run(move |db| {
            db.read(|conn| {
                db::products::ensure_exists(conn, id)?;
                db::releases::for_product(conn, id)
            })
        })
        .await?;
    Ok(spreadsheet::report(csv, "releases", items, |items| ReleaseList { items }))
}

#[derive(Serialize, ToSchema)]
pub struct LifecycleSourceList {
    pub items: Vec<LifecycleSource>,
}

/// Where a product's releases come from: each release name mapped to an endoflife.date product
/// and release cycle.
#[utoipa::path(
    tag = "products",
    operation_id = "list_lifecycle_sources",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Product id"), FormatQuery),
    responses(
        (status = 200, description = "The sources, or as CSV", content(
            (LifecycleSourceList = "application/json"),
            (String = "text/csv"),
        )),
        ReadErrors
    ))]
#[get("/products/{id}/lifecycle-sources")]
pub async fn list_lifecycle_sources(
    state: web::Data<AppState>,
    _user: Authorised<AnyRole>,
    id: web::Path<i64>,
    query: web::Query<FormatQuery>,
    request: HttpRequest,
) -> ApiResult<HttpResponse> {
    let (id, csv) = (id.into_inner(), spreadsheet::wants_csv(&request, query.format));
    let items = state
        .run(move |db| {
            db.read(|conn| {
                db::products::ensure_exists(conn, id)?;
                db::lifecycle::sources(conn, Some(id))
            })
        })
        .await?;
    Ok(spreadsheet::report(csv, "lifecycle-sources", items, |items| LifecycleSourceList { items }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LifecycleSourceInput {
    /// The release's name in the catalogue, e.g. `22H2`.
    #[schema(min_length = 1, max_length = 100, pattern = "[^\\s\\u0085]")]
    pub release_name: String,
    /// The endoflife.date product, e.g. `windows`.
    #[schema(min_length = 1, max_length = 100, pattern = "^[a-z0-9.-]+$")]
    pub eol_product: String,
    /// The endoflife.date release cycle, e.g. `10-22h2`.
    #[schema(min_length = 1, max_length = 100, pattern = "[^\\s\\u0085]")]
    pub eol_release: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplaceLifecycleSources {
    /// The whole mapping for the product (an empty list removes it). Release names and
    /// endoflife.date releases must each appear once.
    #[schema(max_items = 200)]
    pub sources: Vec<LifecycleSourceInput>,
}

/// Replace a product's mapping to endoflife.date (the next `catalogue lifecycle sync` reads it).
#[utoipa::path(
    tag = "products",
    operation_id = "replace_lifecycle_sources",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Product id")),
    request_body = ReplaceLifecycleSources,
    responses((status = 200, body = LifecycleSourceList), WriteErrors)
)]
#[put("/products/{id}/lifecycle-sources")]
pub async fn replace_lifecycle_sources(
    state: web::Data<AppState>,
    admin: Authorised<AdminOnly>,
    id: web::Path<i64>,
    body: Json<ReplaceLifecycleSources>,
) -> ApiResult<web::Json<LifecycleSourceList>> {
    let (id, actor) = (id.into_inner(), admin.actor());
    let wanted: Vec<LifecycleSource> = body
        .into_inner()
        .sources
        .into_iter()
        .map(|s| LifecycleSource {
            id: 0,
            product_id: id,
            release_name: s.release_name,
            eol_product: s.eol_product,
            eol_release: s.eol_release,
        })
        .collect();
    if wanted.len() > 200 {
        return Err(crate::error::ApiError::BadRequest("at most 200 sources per product".into()));
    }
    let items = state.run(move |db| db::lifecycle::set_sources(db, &actor, id, wanted)).await?;
    Ok(web::Json(LifecycleSourceList { items }))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct HoldsQuery {
    /// Include decided holds, not only those waiting (default false).
    #[serde(default)]
    pub all: bool,
    /// `csv` for the holds as one CSV file (or send `Accept: text/csv`).
    pub format: Option<Format>,
}

#[derive(Serialize, ToSchema)]
pub struct HoldList {
    pub items: Vec<HoldRow>,
}

/// Synced dates that moved by more than a year (or were withdrawn), held for an admin instead of
/// applied.
#[utoipa::path(
    tag = "products",
    operation_id = "list_lifecycle_holds",
    security(("bearer" = [])),
    params(HoldsQuery),
    responses(
        (status = 200, description = "The holds, or as CSV", content(
            (HoldList = "application/json"),
            (String = "text/csv"),
        )),
        ReadErrors
    )
)]
#[get("/lifecycle/holds")]
pub async fn list_lifecycle_holds(
    state: web::Data<AppState>,
    _admin: Authorised<AdminOnly>,
    query: web::Query<HoldsQuery>,
    request: HttpRequest,
) -> ApiResult<HttpResponse> {
    let (all, csv) = (query.all, spreadsheet::wants_csv(&request, query.format));
    let items = state.read(move |conn| db::lifecycle::holds(conn, all)).await?;
    Ok(spreadsheet::report(csv, "lifecycle-holds", items, |items| HoldList { items }))
}

/// Apply a held date. Refused (409) if already decided, or if the release's date changed since.
#[utoipa::path(
    tag = "products",
    operation_id = "confirm_lifecycle_hold",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Hold id")),
    responses((status = 200, body = HoldRow), WriteErrors)
)]
#[post("/lifecycle/holds/{id}/confirm")]
pub async fn confirm_lifecycle_hold(
    state: web::Data<AppState>,
    admin: Authorised<AdminOnly>,
    id: web::Path<i64>,
) -> ApiResult<web::Json<HoldRow>> {
    let (id, actor) = (id.into_inner(), admin.actor());
    Ok(web::Json(state.run(move |db| db::lifecycle::decide_hold(db, &actor, id, true)).await?))
}

/// Keep the release as it is and close the hold. Refused (409) if already decided.
#[utoipa::path(
    tag = "products",
    operation_id = "reject_lifecycle_hold",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Hold id")),
    responses((status = 200, body = HoldRow), WriteErrors)
)]
#[post("/lifecycle/holds/{id}/reject")]
pub async fn reject_lifecycle_hold(
    state: web::Data<AppState>,
    admin: Authorised<AdminOnly>,
    id: web::Path<i64>,
) -> ApiResult<web::Json<HoldRow>> {
    let (id, actor) = (id.into_inner(), admin.actor());
    Ok(web::Json(state.run(move |db| db::lifecycle::decide_hold(db, &actor, id, false)).await?))
}
