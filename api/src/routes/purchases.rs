use actix_web::{HttpRequest, HttpResponse, get, post, web};
use chrono::NaiveDate;
use db::purchases::{NewPurchase, Purchase};
use db::standards::Outcome;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::auth::Authorised;
use crate::auth::extractors::{
    ActsForOrganisation, AdminOrOfficer, AnyRole, OrganisationPath, ReadsOrganisation,
};
use crate::body::Json;
use crate::error::ApiResult;
use crate::openapi::{ReadErrors, WriteErrors};
use crate::preconditions::page_request;
use crate::spreadsheet;
use crate::state::AppState;
use crate::views::{PurchasePage, list_query};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeclarationInput {
    /// The requirement's code.
    pub requirement: String,
    pub met: bool,
    /// A link or reference to the evidence.
    pub evidence: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePurchase {
    /// A product in the catalogue; or give `description` instead.
    pub product_id: Option<i64>,
    /// What was bought, for a product not in the catalogue: required, and not blank, when
    /// `product_id` is not given.
    pub description: Option<String>,
    #[schema(pattern = "^[a-z0-9-]+$")]
    pub category: String,
    pub standard_id: i64,
    /// The version bought against: it must be the one published on `purchased_on`.
    pub version: i32,
    #[serde(deserialize_with = "crate::dates::required")]
    pub purchased_on: NaiveDate,
    /// Units bought, 1 to 10,000,000 (`db::ledger::MAX_SEATS_PER_CLAIM`).
    #[schema(minimum = 1, maximum = 10_000_000)]
    pub quantity: i64,
    /// Price of one unit in pence, 0 to 10,000,000,000 (GBP 100 million).
    #[schema(minimum = 0, maximum = 10_000_000_000_i64)]
    pub unit_cost_pence: i64,
    #[schema(min_length = 1)]
    #[schema(pattern = "[^\\s\\u0085]")]
    pub order_reference: String,
    /// One per MUST requirement (others optional). A MUST declared unmet is recorded as
    /// non-compliant, not refused.
    pub declarations: Vec<DeclarationInput>,
    /// The purchase this one corrects (purchases never change).
    pub supersedes: Option<i64>,
}

/// Record a local purchase against a standard version, with its declarations.
#[utoipa::path(
    tag = "purchases",
    operation_id = "create_purchase",
    security(("bearer" = [])),
    params(("code" = String, Path, description = "ODS code")),
    request_body = CreatePurchase,
    responses((status = 201, body = Purchase), WriteErrors)
)]
#[post("/organisations/{code}/purchases")]
pub async fn create_purchase(
    state: web::Data<AppState>,
    _role: Authorised<AdminOrOfficer>,
    organisation: OrganisationPath<ActsForOrganisation>,
    body: Json<CreatePurchase>,
) -> ApiResult<HttpResponse> {
    let OrganisationPath { user, code, .. } = organisation;
    let b = body.into_inner();
    let new = NewPurchase {
        organisation_code: code,
        product_id: b.product_id,
        description: b.description,
        category: b.category,
        standard_id: b.standard_id,
        version: b.version,
        purchased_on: b.purchased_on,
        quantity: b.quantity,
        unit_cost_pence: b.unit_cost_pence,
        order_reference: b.order_reference,
        evidence: b.declarations.iter().map(|d| d.evidence.clone()).collect(),
        declarations: b
            .declarations
            .into_iter()
            .map(|d| Outcome { requirement: d.requirement, met: d.met, evaluated: None, note: None })
            .collect(),
        supersedes_id: b.supersedes,
    };
    let actor = user.actor();
    let purchase = state.run(move |db| db::purchases::record(db, &actor, new)).await?;
    Ok(HttpResponse::Created().json(purchase))
}

list_query! {
    pub struct PurchaseQuery {
        /// Purchases replaced by a correction are left out unless this is true.
        #[serde(default)]
        pub include_superseded: bool,
        ..page,
        /// `csv` for every row from the cursor on as one CSV file (or send `Accept: text/csv`).
        pub format: Option<crate::spreadsheet::Format>,
    }
}

/// An organisation's local purchases.
#[utoipa::path(
    tag = "purchases",
    operation_id = "list_purchases",
    security(("bearer" = [])),
    params(("code" = String, Path, description = "ODS code"), PurchaseQuery),
    responses((status = 200, description = "A page of purchases, or all of them as CSV", content(
            (PurchasePage = "application/json"),
            (String = "text/csv"),
        )), ReadErrors)
)]
#[get("/organisations/{code}/purchases")]
pub async fn list_purchases(
    state: web::Data<AppState>,
    _role: Authorised<AnyRole>,
    organisation: OrganisationPath<ReadsOrganisation>,
    query: web::Query<PurchaseQuery>,
    request: HttpRequest,
) -> ApiResult<HttpResponse> {
    let (code, query) = (organisation.code, query.into_inner());
    let csv = spreadsheet::wants_csv(&request, query.format);
    let page = page_request(query.limit, query.cursor)?;
    spreadsheet::list(&state, csv, "purchases", page, move |conn, page| {
        db::organisations::get(conn, &code)?;
        db::purchases::list(conn, &code, query.include_superseded, page)
    })
    .await
}
