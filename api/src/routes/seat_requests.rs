//! Seat requests: claims on lines that require approval, held until the national team decides.
//! A claim on such a line (`POST /v1/entitlements/{id}/allocations`) answers 202 with the
//! request; these routes list, approve, refuse and withdraw them.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use db::AddedOrder;
use db::ledger::Approval;
use db::seat_requests::{SeatRequest, SeatRequestFilter};
use db::vocabulary::SeatRequestStatus;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::auth::Authorised;
use crate::auth::extractors::{AdminOnly, AdminOrOfficer, AnyRole, CurrentUser};
use crate::body::Json;
use crate::error::{ApiError, ApiResult};
use crate::openapi::{ReadErrors, WriteErrors};
use crate::preconditions::page_request;
use crate::routes::today;
use crate::spreadsheet;
use crate::state::AppState;
use crate::views::{SeatRequestPage, list_query};

list_query! {
    pub struct SeatRequestQuery {
        pub status: Option<SeatRequestStatus>,
        /// ODS code. Officers and exemplars see only their own organisation's requests whatever this
        /// says; a code no organisation has finds none.
        pub organisation: Option<String>,
        pub entitlement_id: Option<i64>,
        ..page,
        /// `csv` for every row from the cursor on as one CSV file (or send `Accept: text/csv`).
        pub format: Option<crate::spreadsheet::Format>,
    }
}

/// The organisation whose requests the user may see: any for the national team and auditors,
/// their own for everyone else.
fn visible_organisation(user: &CurrentUser, asked: Option<String>) -> Option<String> {
    match user.role() {
        db::users::Role::Admin | db::users::Role::Auditor => asked.map(|code| code.to_uppercase()),
        _ => Some(user.organisation().unwrap_or_default().to_owned()),
    }
}

/// Seat requests, oldest first: the national team's queue (`?status=pending`), or an
/// organisation's own requests and how they were decided.
#[utoipa::path(
    tag = "allocations",
    operation_id = "list_seat_requests",
    security(("bearer" = [])),
    params(SeatRequestQuery),
    responses((status = 200, description = "A page of seat requests, or all of them as CSV", content(
            (SeatRequestPage = "application/json"),
            (String = "text/csv"),
        )), ReadErrors)
)]
#[get("/seat-requests")]
pub async fn list_seat_requests(
    state: web::Data<AppState>,
    user: Authorised<AnyRole>,
    query: web::Query<SeatRequestQuery>,
    request: HttpRequest,
) -> ApiResult<HttpResponse> {
    let query = query.into_inner();
    let csv = spreadsheet::wants_csv(&request, query.format);
    let page = page_request(query.limit, query.cursor)?;
    let filter = SeatRequestFilter {
        status: query.status,
        organisation_code: visible_organisation(&user, query.organisation),
        entitlement_id: query.entitlement_id,
        order: AddedOrder::OldestFirst,
    };
    spreadsheet::list(&state, csv, "seat-requests", page, move |conn, page| {
        db::seat_requests::list(conn, &filter, page)
    })
    .await
}

/// Reads a request the user may see; another organisation's answers 404.
async fn visible_request(state: &AppState, user: &CurrentUser, id: i64) -> ApiResult<SeatRequest> {
    let request = state.read(move |conn| db::seat_requests::get(conn, id)).await?;
    user.ensure_can_read(&request.organisation_code)
        .map_err(|_| ApiError::NotFound("seat request not found".into()))?;
    Ok(request)
}

/// One seat request.
#[utoipa::path(
    tag = "allocations",
    operation_id = "get_seat_request",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Seat request id")),
    responses((status = 200, body = SeatRequest), ReadErrors)
)]
#[get("/seat-requests/{id}")]
pub async fn get_seat_request(
    state: web::Data<AppState>,
    user: Authorised<AnyRole>,
    id: web::Path<i64>,
) -> ApiResult<web::Json<SeatRequest>> {
    Ok(web::Json(visible_request(&state, &user, id.into_inner()).await?))
}

/// Approve a pending request: its claim is made now, checked as any claim is today (seats
/// left, the organisation's cap and eligibility). When the claim is refused (409 or 422),
/// nothing changes and the request stays pending.
#[utoipa::path(
    tag = "allocations",
    operation_id = "approve_seat_request",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Seat request id")),
    responses((status = 200, body = Approval, description = "Approved: the allocation holds its seats"), WriteErrors)
)]
#[post("/seat-requests/{id}/approve")]
pub async fn approve_seat_request(
    state: web::Data<AppState>,
    admin: Authorised<AdminOnly>,
    id: web::Path<i64>,
) -> ApiResult<web::Json<Approval>> {
    let (id, actor) = (id.into_inner(), admin.actor());
    Ok(web::Json(state.run(move |db| db::ledger::approve_request(db, &actor, id, today())).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefuseSeatRequest {
    /// Why, for the organisation to read (1 to 2,000 characters).
    #[schema(min_length = 1, max_length = 2000, pattern = "[^\\s\\u0085]")]
    pub reason: String,
}

/// Refuse a pending request, with a reason. No seats are taken.
#[utoipa::path(
    tag = "allocations",
    operation_id = "refuse_seat_request",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Seat request id")),
    request_body = RefuseSeatRequest,
    responses((status = 200, body = SeatRequest), WriteErrors)
)]
#[post("/seat-requests/{id}/refuse")]
pub async fn refuse_seat_request(
    state: web::Data<AppState>,
    admin: Authorised<AdminOnly>,
    id: web::Path<i64>,
    body: Json<RefuseSeatRequest>,
) -> ApiResult<web::Json<SeatRequest>> {
    let (id, reason, actor) = (id.into_inner(), body.into_inner().reason, admin.actor());
    Ok(web::Json(state.run(move |db| db::seat_requests::refuse(db, &actor, id, &reason)).await?))
}

/// Withdraw a pending request the organisation no longer needs.
#[utoipa::path(
    tag = "allocations",
    operation_id = "withdraw_seat_request",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Seat request id")),
    responses((status = 200, body = SeatRequest), WriteErrors)
)]
#[post("/seat-requests/{id}/withdraw")]
pub async fn withdraw_seat_request(
    state: web::Data<AppState>,
    user: Authorised<AdminOrOfficer>,
    id: web::Path<i64>,
) -> ApiResult<web::Json<SeatRequest>> {
    let id = id.into_inner();
    let request = visible_request(&state, &user, id).await?;
    user.ensure_can_act_for(&request.organisation_code)?;
    let actor = user.actor();
    Ok(web::Json(state.run(move |db| db::seat_requests::withdraw(db, &actor, id)).await?))
}
