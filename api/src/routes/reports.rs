use actix_web::{get, web};
use chrono::NaiveDate;
use db::reports::{OpenObligation, UtilisationReport};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Authorised;
use crate::auth::extractors::{AdminOrAuditor, AnyRole};
use crate::error::ApiResult;
use crate::openapi::ReadErrors;
use crate::preconditions::page_request;
use crate::routes::today;
use crate::state::AppState;

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UtilisationQuery {
    pub agreement_id: Option<i64>,
    /// Agreements not in force at `on` are left out unless this is true.
    #[serde(default)]
    pub include_ended: bool,
    /// Default today.
    #[serde(default, deserialize_with = "crate::dates::optional")]
    pub on: Option<NaiveDate>,
}

/// Seat utilisation per agreement and entitlement: cap, allocated, remaining, over the cap,
/// by organisation kind and by region.
#[utoipa::path(
    tag = "reports",
    operation_id = "utilisation_report",
    security(("bearer" = [])),
    params(UtilisationQuery),
    responses((status = 200, body = UtilisationReport), ReadErrors)
)]
#[get("/reports/utilisation")]
pub async fn utilisation_report(
    state: web::Data<AppState>,
    _user: Authorised<AdminOrAuditor>,
    query: web::Query<UtilisationQuery>,
) -> ApiResult<web::Json<UtilisationReport>> {
    let query = query.into_inner();
    let on = query.on.unwrap_or_else(today);
    let report = state
        .run(move |db| {
            db.read(|conn| db::reports::utilisation(conn, query.agreement_id, query.include_ended, on))
        })
        .await?;
    Ok(web::Json(report))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ObligationQuery {
    /// ODS code; officers and exemplars get their own organisation's whatever they ask.
    pub organisation: Option<String>,
    /// The date that decides what is overdue (default today).
    #[serde(default, deserialize_with = "crate::dates::optional")]
    pub on: Option<NaiveDate>,
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ObligationPage {
    pub items: Vec<OpenObligation>,
    pub next_cursor: Option<String>,
}

/// Open obligations, overdue first.
#[utoipa::path(
    tag = "reports",
    operation_id = "obligations_report",
    security(("bearer" = [])),
    params(ObligationQuery),
    responses((status = 200, body = ObligationPage), ReadErrors)
)]
#[get("/reports/obligations")]
pub async fn obligations_report(
    state: web::Data<AppState>,
    user: Authorised<AnyRole>,
    query: web::Query<ObligationQuery>,
) -> ApiResult<web::Json<ObligationPage>> {
    let query = query.into_inner();
    let organisation = user.report_scope(query.organisation)?;
    let page = page_request(query.limit, query.cursor)?;
    let on = query.on.unwrap_or_else(today);
    let found = state
        .run(move |db| {
            db.read(|conn| db::reports::open_obligations(conn, organisation.as_deref(), on, &page))
        })
        .await?;
    Ok(web::Json(ObligationPage { items: found.items, next_cursor: found.next_cursor }))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ComplianceQuery {
    /// ODS code; officers and exemplars get their own organisation's whatever they ask.
    pub organisation: Option<String>,
    pub region: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ComplianceReport {
    pub lines: Vec<db::purchases::ComplianceLine>,
}

/// Local purchases per organisation, region and category: compliant, non-compliant, spend, and
/// purchases made against versions since superseded.
#[utoipa::path(
    tag = "reports",
    operation_id = "compliance_report",
    security(("bearer" = [])),
    params(ComplianceQuery),
    responses((status = 200, body = ComplianceReport), ReadErrors)
)]
#[get("/reports/compliance")]
pub async fn compliance_report(
    state: web::Data<AppState>,
    user: Authorised<AnyRole>,
    query: web::Query<ComplianceQuery>,
) -> ApiResult<web::Json<ComplianceReport>> {
    let query = query.into_inner();
    let organisation = user.report_scope(query.organisation)?;
    let lines = state
        .run(move |db| {
            db.read(|conn| db::purchases::compliance(conn, organisation.as_deref(), query.region.as_deref()))
        })
        .await?;
    Ok(web::Json(ComplianceReport { lines }))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UnsupportedQuery {
    /// The date asked about (default today), e.g. 2020-01-14 for the end of Windows 7.
    #[serde(default, deserialize_with = "crate::dates::optional")]
    pub on: Option<NaiveDate>,
    /// Also count products whose support ends within this many months of `on` (default 0).
    #[param(maximum = 120)]
    pub within_months: Option<u32>,
}

/// Who holds unsupported software at a date (or software whose support ends soon), with risk
/// acceptances shown apart and expired ones flagged.
#[utoipa::path(
    tag = "reports",
    operation_id = "unsupported_report",
    security(("bearer" = [])),
    params(UnsupportedQuery),
    responses((status = 200, body = db::risk::UnsupportedReport), ReadErrors)
)]
#[get("/reports/unsupported")]
pub async fn unsupported_report(
    state: web::Data<AppState>,
    _user: Authorised<AdminOrAuditor>,
    query: web::Query<UnsupportedQuery>,
) -> ApiResult<web::Json<db::risk::UnsupportedReport>> {
    let query = query.into_inner();
    let on = query.on.unwrap_or_else(today);
    let months = query.within_months.unwrap_or(0);
    if months > 120 {
        return Err(crate::error::ApiError::BadRequest("within_months must be at most 120".into()));
    }
    Ok(web::Json(
        state.run(move |db| db.read(|conn| db::risk::unsupported_report(conn, on, months, None))).await?,
    ))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AdvisoryReportQuery {
    /// ODS code; officers and exemplars get their own organisation's whatever they ask.
    pub organisation: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AdvisoryReport {
    /// Overdue acknowledgements first.
    pub lines: Vec<db::advisories::AdvisoryStanding>,
}

/// Responses to advisories by exposed organisations: overdue acknowledgements first.
#[utoipa::path(
    tag = "reports",
    operation_id = "advisories_report",
    security(("bearer" = [])),
    params(AdvisoryReportQuery),
    responses((status = 200, body = AdvisoryReport), ReadErrors)
)]
#[get("/reports/advisories")]
pub async fn advisories_report(
    state: web::Data<AppState>,
    user: Authorised<AnyRole>,
    query: web::Query<AdvisoryReportQuery>,
) -> ApiResult<web::Json<AdvisoryReport>> {
    let query = query.into_inner();
    let organisation = user.report_scope(query.organisation)?;
    let at = chrono::Utc::now().naive_utc();
    let lines = state
        .run(move |db| db.read(|conn| db::advisories::report(conn, organisation.as_deref(), at)))
        .await?;
    Ok(web::Json(AdvisoryReport { lines }))
}
