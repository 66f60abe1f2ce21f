use actix_web::{HttpRequest, HttpResponse, get, post, web};
use chrono::NaiveDate;
use db::risk::{NewRiskAcceptance, RiskAcceptance};
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
use crate::spreadsheet::{self, FormatQuery};
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRiskAcceptance {
    pub product_id: i64,
    /// What keeps the risk down meanwhile (network isolation, monitoring, ...).
    #[schema(min_length = 1)]
    #[schema(pattern = "[^\\s\\u0085]")]
    pub compensating_controls: String,
    /// Reference of the supplier's MDS2 form.
    pub mds2_reference: Option<String>,
    /// After this date the acceptance no longer covers the product.
    #[serde(deserialize_with = "crate::dates::required")]
    pub expires_on: NaiveDate,
}

/// Record a risk acceptance for an unsupported product the organisation cannot yet replace.
#[utoipa::path(
    tag = "risk",
    operation_id = "create_risk_acceptance",
    security(("bearer" = [])),
    params(("code" = String, Path, description = "ODS code")),
    request_body = CreateRiskAcceptance,
    responses((status = 201, body = RiskAcceptance), WriteErrors)
)]
#[post("/organisations/{code}/risk-acceptances")]
pub async fn create_risk_acceptance(
    state: web::Data<AppState>,
    _role: Authorised<AdminOrOfficer>,
    organisation: OrganisationPath<ActsForOrganisation>,
    body: Json<CreateRiskAcceptance>,
) -> ApiResult<HttpResponse> {
    let b = body.into_inner();
    let new = NewRiskAcceptance {
        organisation_code: organisation.code,
        product_id: b.product_id,
        compensating_controls: b.compensating_controls,
        mds2_reference: b.mds2_reference,
        expires_on: b.expires_on,
    };
    let actor = organisation.user.actor();
    let acceptance = state.run(move |db| db::risk::accept(db, &actor, new, today())).await?;
    Ok(HttpResponse::Created().json(acceptance))
}

/// An organisation's risk acceptances, expired ones included.
#[utoipa::path(
    tag = "risk",
    operation_id = "list_risk_acceptances",
    security(("bearer" = [])),
    params(("code" = String, Path, description = "ODS code"), FormatQuery),
    responses(
        (status = 200, description = "The acceptances, or as CSV", content(
            (Vec<RiskAcceptance> = "application/json"),
            (String = "text/csv"),
        )),
        ReadErrors
    )
)]
#[get("/organisations/{code}/risk-acceptances")]
pub async fn list_risk_acceptances(
    state: web::Data<AppState>,
    _role: Authorised<AnyRole>,
    organisation: OrganisationPath<ReadsOrganisation>,
    query: web::Query<FormatQuery>,
    request: HttpRequest,
) -> ApiResult<HttpResponse> {
    let (code, csv) = (organisation.code, spreadsheet::wants_csv(&request, query.format));
    let acceptances = state
        .run(move |db| {
            db.read(|conn| {
                db::organisations::get(conn, &code)?;
                db::risk::acceptances_of(conn, &code)
            })
        })
        .await?;
    Ok(spreadsheet::report(csv, "risk-acceptances", acceptances, |acceptances| acceptances))
}
