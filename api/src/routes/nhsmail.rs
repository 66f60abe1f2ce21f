//! An organisation's NHSmail service (Standard or Enhanced, with dates): which service's
//! national provision it is offered.

use actix_web::{get, put, web};
use chrono::NaiveDate;
use db::nhsmail::{ServiceHistory, ServicePeriod};
use db::vocabulary::NhsmailService;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::auth::Authorised;
use crate::auth::extractors::{
    ActsForOrganisation, AdminOrOfficer, AnyRole, OrganisationPath, ReadsOrganisation,
};
use crate::body::Json;
use crate::error::ApiResult;
use crate::openapi::{ReadErrors, WriteErrors};
use crate::routes::today;
use crate::state::AppState;

/// An organisation's recorded NHSmail service periods, and the service it takes today (when
/// nothing is recorded, the one NHS England names for its kind: `basis` says which).
#[utoipa::path(
    tag = "organisations",
    operation_id = "get_nhsmail_service",
    security(("bearer" = [])),
    params(("code" = String, Path, description = "ODS code")),
    responses((status = 200, body = ServiceHistory), ReadErrors)
)]
#[get("/organisations/{code}/nhsmail-service")]
pub async fn get_nhsmail_service(
    state: web::Data<AppState>,
    _role: Authorised<AnyRole>,
    organisation: OrganisationPath<ReadsOrganisation>,
) -> ApiResult<web::Json<ServiceHistory>> {
    let code = organisation.code;
    Ok(web::Json(state.read(move |conn| db::nhsmail::history(conn, &code, today())).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServicePeriodInput {
    pub service: NhsmailService,
    /// On or after 2024-01-01, when the two services began.
    #[serde(deserialize_with = "crate::dates::required")]
    pub starts_on: NaiveDate,
    /// Inclusive; null while it lasts. Not before `starts_on`.
    #[serde(default, deserialize_with = "crate::dates::optional")]
    pub ends_on: Option<NaiveDate>,
    /// The document that records it (for example the NHSmail onboarding confirmation).
    pub source: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplaceServicePeriods {
    /// The whole history, replacing what is recorded; periods may not overlap. An empty list
    /// clears it (the service is then the one for the organisation's kind).
    #[schema(max_items = 50)]
    pub periods: Vec<ServicePeriodInput>,
}

/// Record an organisation's NHSmail service history (the national team, or the organisation's
/// own officers). Lines that are one service's national provision are offered by it.
#[utoipa::path(
    tag = "organisations",
    operation_id = "replace_nhsmail_service",
    security(("bearer" = [])),
    params(("code" = String, Path, description = "ODS code")),
    request_body = ReplaceServicePeriods,
    responses((status = 200, body = ServiceHistory), WriteErrors)
)]
#[put("/organisations/{code}/nhsmail-service")]
pub async fn replace_nhsmail_service(
    state: web::Data<AppState>,
    _role: Authorised<AdminOrOfficer>,
    organisation: OrganisationPath<ActsForOrganisation>,
    body: Json<ReplaceServicePeriods>,
) -> ApiResult<web::Json<ServiceHistory>> {
    let periods: Vec<ServicePeriod> = body
        .into_inner()
        .periods
        .into_iter()
        .map(|p| ServicePeriod {
            service: p.service,
            starts_on: p.starts_on,
            ends_on: p.ends_on,
            source: p.source,
        })
        .collect();
    let (code, actor) = (organisation.code, organisation.user.actor());
    Ok(web::Json(state.run(move |db| db::nhsmail::replace(db, &actor, &code, periods, today())).await?))
}
