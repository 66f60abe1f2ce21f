use actix_web::{get, web};
use chrono::NaiveDate;
use db::coverage::{Coverage, Subject};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::Authorised;
use crate::auth::extractors::AnyRole;
use crate::error::{ApiError, ApiResult};
use crate::openapi::ReadErrors;
use crate::routes::today;
use crate::state::AppState;

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct CoverageQuery {
    /// ODS code of the organisation asking. Officers and exemplars may ask only for their own.
    pub organisation: String,
    /// A product id; give this or `category`.
    pub product: Option<i64>,
    /// A category slug; give this or `product`.
    pub category: Option<String>,
    /// With `product`: one of its releases by name (e.g. `22H2`; see
    /// `/v1/products/{id}/releases`). Without it, the answer is for the best release held.
    #[param(min_length = 1, max_length = 100)]
    pub release: Option<String>,
    /// The date of the question (default today).
    #[serde(default, deserialize_with = "crate::dates::optional")]
    pub on: Option<NaiveDate>,
}

/// What should the organisation do about this product or category? The answer leads with an
/// `action` (claim national seats; move to a supported release or the successor; covered only by
/// paid extended security updates until a date; do not buy or deploy: unsupported; use the
/// national provision for the category; buy against standard vN; no guidance), with the reason
/// and the date it rests on; then whether it is licensed nationally (and how many seats are left)
/// or what standard a local purchase must meet, with lifecycle and eligibility warnings. A
/// `release` that the product does not have is a 404.
#[utoipa::path(
    tag = "coverage",
    operation_id = "get_coverage",
    security(("bearer" = [])),
    params(CoverageQuery),
    responses((status = 200, body = Coverage), ReadErrors)
)]
#[get("/coverage")]
pub async fn get_coverage(
    state: web::Data<AppState>,
    user: Authorised<AnyRole>,
    query: web::Query<CoverageQuery>,
) -> ApiResult<web::Json<Coverage>> {
    let query = query.into_inner();
    user.ensure_can_read(&query.organisation)?;
    let subject = match (query.product, query.category, query.release) {
        (Some(_), _, Some(release)) if release.is_empty() || release.chars().count() > 100 => {
            return Err(ApiError::BadRequest("release must be 1 to 100 characters".into()));
        }
        (Some(product), None, release) => Subject::Product(product, release),
        (None, Some(_), Some(_)) => {
            return Err(ApiError::BadRequest("release applies to a product, not a category".into()));
        }
        (None, Some(category), None) => Subject::Category(category),
        _ => return Err(ApiError::BadRequest("give exactly one of product and category".into())),
    };
    let on = query.on.unwrap_or_else(today);
    let organisation = query.organisation;
    Ok(web::Json(state.coverage(organisation, subject, on).await?))
}
