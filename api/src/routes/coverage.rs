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
    /// The date of the question (default today).
    #[serde(default, deserialize_with = "crate::dates::optional")]
    pub on: Option<NaiveDate>,
}

/// Is this licensed nationally for the organisation (and how many seats are left), or what
/// standard must a local purchase meet? Always with lifecycle and eligibility warnings.
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
    let subject = match (query.product, query.category) {
        (Some(product), None) => Subject::Product(product),
        (None, Some(category)) => Subject::Category(category),
        _ => return Err(ApiError::BadRequest("give exactly one of product and category".into())),
    };
    let on = query.on.unwrap_or_else(today);
    let organisation = query.organisation;
    Ok(web::Json(state.coverage(organisation, subject, on).await?))
}
