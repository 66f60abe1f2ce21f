use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use db::ledger::{Allocation, AllocationFilter, Claim, ClaimOutcome, Claimed, IdempotencyKey, Succession};
use db::seat_changes::SeatChangeReport;
use db::seat_requests::SeatRequest;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Authorised;
use crate::auth::extractors::{
    ActsForOrganisation, AdminOnly, AdminOrOfficer, AnyRole, OrganisationPath, ReadsOrganisation,
};
use crate::body::Json;
use crate::error::{ApiError, ApiResult};
use crate::openapi::{OrganisationCsvWriteErrors, ReadErrors, WriteErrors};
use crate::preconditions::{optional_json_body, page_request};
use crate::routes::ods::{FileUpload, OdsFileBytes, csv_body};
use crate::routes::today;
use crate::spreadsheet;
use crate::state::AppState;
use crate::views::{AllocationPage, list_query};

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimRequest {
    /// ODS code of the organisation the seats are for. Officers may claim only for their own.
    #[schema(pattern = "^[A-Za-z0-9]{3,10}$")]
    pub organisation: String,
    /// Seats to take, 1 to 10,000,000 (`db::ledger::MAX_SEATS_PER_CLAIM`). A line holds at most
    /// 1,000,000,000 seats in all, capped or not.
    #[schema(minimum = 1, maximum = 10_000_000)]
    pub quantity: i64,
    /// The claimer's own reference (an order or change number).
    pub reference: Option<String>,
}

const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

/// Claim seats of an entitlement. Eligibility (organisation kind, NHSmail service, dates, open
/// organisation), the cap and the line's per-organisation cap are checked in one transaction; a
/// claim past the cap gets 409 with the seats that remain. The claimer accepts the entitlement's
/// obligations. On a line that requires approval the claim is checked the same way and held as a
/// seat request (202, no seats taken) until an admin approves it. With an `Idempotency-Key`, a
/// retry answers with what the first claim made and never takes seats twice.
#[utoipa::path(
    tag = "allocations",
    operation_id = "claim_seats",
    security(("bearer" = [])),
    params(
        ("id" = i64, Path, description = "Entitlement id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Any unique string (at most 255 characters) to make retries safe",
            min_length = 1, max_length = 255, pattern = "^[ -~]+$"),
    ),
    request_body = ClaimRequest,
    responses(
        (status = 201, body = Allocation, description = "Seats taken (or, on a retry with the same key, the allocation the first claim made, as it stands now)",
            headers(("Idempotent-Replayed" = String, description = "`true` when this answers a retry, which took no seats"))),
        (status = 202, body = SeatRequest, description = "The line requires approval: the claim is held as a seat request, taking no seats yet",
            headers(
                ("Location" = String, description = "The seat request"),
                ("Idempotent-Replayed" = String, description = "`true` when this answers a retry, which made no second request"),
            )),
        WriteErrors
    )
)]
#[post("/entitlements/{id}/allocations")]
pub async fn claim_seats(
    state: web::Data<AppState>,
    user: Authorised<AdminOrOfficer>,
    id: web::Path<i64>,
    request: HttpRequest,
    body: Json<ClaimRequest>,
) -> ApiResult<HttpResponse> {
    let (entitlement_id, body) = (id.into_inner(), body.into_inner());
    user.ensure_can_act_for(&body.organisation)?;
    let claim = Claim {
        organisation: body.organisation.to_uppercase(),
        quantity: body.quantity,
        reference: body.reference,
    };
    let key = match request.headers().get(IDEMPOTENCY_KEY) {
        None => None,
        Some(value) => {
            // The document's pattern, `^[ -~]+$`: printable ASCII only (a header may carry a tab).
            let printable = |k: &&str| k.bytes().all(|b| (b' '..=b'~').contains(&b));
            let key =
                value.to_str().ok().filter(|k| (1..=255).contains(&k.len())).filter(printable).ok_or_else(
                    || ApiError::BadRequest("Idempotency-Key must be 1 to 255 visible characters".into()),
                )?;
            Some(IdempotencyKey::for_claim(user.id(), key.to_owned(), entitlement_id, &claim))
        }
    };
    let actor = user.actor();
    let Claimed { outcome, replayed } =
        state.run(move |db| db::ledger::claim(db, &actor, entitlement_id, claim, key, today())).await?;
    let mut response = match &outcome {
        ClaimOutcome::Created(_) => HttpResponse::Created(),
        ClaimOutcome::Requested(seat_request) => {
            let mut accepted = HttpResponse::Accepted();
            accepted.insert_header((header::LOCATION, format!("/v1/seat-requests/{}", seat_request.id)));
            accepted
        }
    };
    if replayed {
        response.insert_header(("Idempotent-Replayed", "true"));
    }
    Ok(match outcome {
        ClaimOutcome::Created(allocation) => response.json(allocation),
        ClaimOutcome::Requested(seat_request) => response.json(seat_request),
    })
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkClaimRequest {
    #[schema(min_items = 1)]
    pub claims: Vec<ClaimRequest>,
}

/// Claim seats for many organisations at once: all are taken, or none (the problem names the
/// first line that failed). A line that requires approval is refused (409): each organisation's
/// claim on it is a seat request of its own.
#[utoipa::path(
    tag = "allocations",
    operation_id = "claim_seats_bulk",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Entitlement id")),
    request_body = BulkClaimRequest,
    responses((status = 201, body = Vec<Allocation>), WriteErrors)
)]
#[post("/entitlements/{id}/allocations/bulk")]
pub async fn claim_seats_bulk(
    state: web::Data<AppState>,
    admin: Authorised<AdminOnly>,
    id: web::Path<i64>,
    body: Json<BulkClaimRequest>,
) -> ApiResult<HttpResponse> {
    let claims: Vec<Claim> = body
        .into_inner()
        .claims
        .into_iter()
        .map(|c| Claim {
            organisation: c.organisation.to_uppercase(),
            quantity: c.quantity,
            reference: c.reference,
        })
        .collect();
    let (id, actor) = (id.into_inner(), admin.actor());
    let created = state.run(move |db| db::ledger::claim_bulk(db, &actor, id, &claims, today())).await?;
    Ok(HttpResponse::Created().json(created))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseRequest {
    /// Seats to give back (at most those held); all of them when absent.
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    pub quantity: Option<i64>,
}

/// Give back some or all seats of an allocation.
#[utoipa::path(
    tag = "allocations",
    operation_id = "release_seats",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Allocation id")),
    request_body(content = Option<ReleaseRequest>, description = "Optional: how many seats"),
    responses((status = 200, body = Allocation), WriteErrors)
)]
#[post("/allocations/{id}/release")]
pub async fn release_seats(
    state: web::Data<AppState>,
    user: Authorised<AdminOrOfficer>,
    id: web::Path<i64>,
    body: web::Bytes,
) -> ApiResult<web::Json<Allocation>> {
    let id = id.into_inner();
    // The body is optional, but a body that is there must be valid: never "release all" by mistake.
    let quantity = optional_json_body::<ReleaseRequest>(&body)?.and_then(|request| request.quantity);
    let allocation = state.read(move |conn| db::ledger::get_allocation(conn, id)).await?;
    user.ensure_can_act_for(&allocation.organisation_code)
        .map_err(|_| ApiError::NotFound("allocation not found".into()))?;
    let actor = user.actor();
    Ok(web::Json(state.run(move |db| db::ledger::release(db, &actor, id, quantity)).await?))
}

list_query! {
    pub struct AllocationQuery {
        /// Released and transferred allocations are left out unless this is true.
        #[serde(default)]
        pub include_ended: bool,
        ..page,
        /// `csv` for every row from the cursor on as one CSV file (or send `Accept: text/csv`).
        pub format: Option<crate::spreadsheet::Format>,
    }
}

/// Allocations of an entitlement. Officers and exemplars see only their own organisation's.
#[utoipa::path(
    tag = "allocations",
    operation_id = "list_entitlement_allocations",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Entitlement id"), AllocationQuery),
    responses((status = 200, description = "A page of allocations, or all of them as CSV", content(
            (AllocationPage = "application/json"),
            (String = "text/csv"),
        )), ReadErrors)
)]
#[get("/entitlements/{id}/allocations")]
pub async fn list_entitlement_allocations(
    state: web::Data<AppState>,
    user: Authorised<AnyRole>,
    id: web::Path<i64>,
    query: web::Query<AllocationQuery>,
    request: HttpRequest,
) -> ApiResult<HttpResponse> {
    let query = query.into_inner();
    let csv = spreadsheet::wants_csv(&request, query.format);
    let page = page_request(query.limit, query.cursor)?;
    let own = match user.role() {
        db::users::Role::Admin | db::users::Role::Auditor => None,
        _ => Some(user.organisation().unwrap_or_default().to_owned()),
    };
    let filter = AllocationFilter {
        entitlement_id: Some(id.into_inner()),
        organisation_code: own,
        include_ended: query.include_ended,
    };
    let entitlement_id = filter.entitlement_id.unwrap_or_default();
    spreadsheet::list(&state, csv, "allocations", page, move |conn, page| {
        db::agreements::get_entitlement(conn, entitlement_id)?;
        db::ledger::list(conn, &filter, page)
    })
    .await
}

/// An organisation's allocations (officers and exemplars: their own organisation only).
#[utoipa::path(
    tag = "allocations",
    operation_id = "list_organisation_allocations",
    security(("bearer" = [])),
    params(("code" = String, Path, description = "ODS code"), AllocationQuery),
    responses((status = 200, description = "A page of allocations, or all of them as CSV", content(
            (AllocationPage = "application/json"),
            (String = "text/csv"),
        )), ReadErrors)
)]
#[get("/organisations/{code}/allocations")]
pub async fn list_organisation_allocations(
    state: web::Data<AppState>,
    _role: Authorised<AnyRole>,
    organisation: OrganisationPath<ReadsOrganisation>,
    query: web::Query<AllocationQuery>,
    request: HttpRequest,
) -> ApiResult<HttpResponse> {
    let (code, query) = (organisation.code, query.into_inner());
    let csv = spreadsheet::wants_csv(&request, query.format);
    let page = page_request(query.limit, query.cursor)?;
    let filter = AllocationFilter {
        entitlement_id: None,
        organisation_code: Some(code.clone()),
        include_ended: query.include_ended,
    };
    spreadsheet::list(&state, csv, "allocations", page, move |conn, page| {
        db::organisations::get(conn, &code)?;
        db::ledger::list(conn, &filter, page)
    })
    .await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SuccessionRequest {
    /// ODS code of the organisation that takes over.
    #[schema(pattern = "^[A-Za-z0-9]{3,10}$")]
    pub successor: String,
}

/// Close an organisation into its successor: its live allocations and open obligations move to
/// the successor (merged with the successor's own) in one transaction; history stays with it.
#[utoipa::path(
    tag = "allocations",
    operation_id = "record_succession",
    security(("bearer" = [])),
    params(("code" = String, Path, description = "ODS code of the predecessor")),
    request_body = SuccessionRequest,
    responses((status = 200, body = Succession), WriteErrors)
)]
#[post("/organisations/{code}/succession")]
pub async fn record_succession(
    state: web::Data<AppState>,
    admin: Authorised<AdminOnly>,
    code: web::Path<String>,
    body: Json<SuccessionRequest>,
) -> ApiResult<web::Json<Succession>> {
    let (code, successor, actor) = (code.into_inner(), body.into_inner().successor, admin.actor());
    Ok(web::Json(state.run(move |db| db::ledger::succeed(db, &actor, &code, &successor, today())).await?))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SeatChangesQuery {
    /// Report what each row would do, and write nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// Claim and give back seats on many national lines from one CSV file (the body, as `text/csv`,
/// or a form's part `file`): a header naming `entitlement_id`, `change` (`claim` or `release`),
/// `quantity` and optionally `reference`, then up to 10,000 rows. Each row goes through the
/// ledger's rules as a single claim or release would; a release gives back the organisation's
/// newest allocations on the line first. All rows are applied, audited, or none: a file with a
/// refused row is answered 422 naming the lines. With `dry_run=true` the rows run in a
/// transaction that is rolled back, and the report gives every row's outcome. A line that
/// requires approval is refused (request its seats singly). Officers for their own organisation
/// (or one their ICB acts for), and the national team.
#[utoipa::path(
    tag = "allocations",
    operation_id = "apply_seat_changes",
    security(("bearer" = [])),
    params(("code" = String, Path, description = "ODS code"), SeatChangesQuery),
    request_body(
        description = "The file: as text/csv, as application/octet-stream for clients that send files as bytes, or as a multipart/form-data form whose part `file` is the file",
        content((String = "text/csv"), (OdsFileBytes = "application/octet-stream"), (FileUpload = "multipart/form-data"))
    ),
    responses((status = 200, body = SeatChangeReport), OrganisationCsvWriteErrors)
)]
#[post("/organisations/{code}/seat-changes")]
pub async fn apply_seat_changes(
    state: web::Data<AppState>,
    _role: Authorised<AdminOrOfficer>,
    organisation: OrganisationPath<ActsForOrganisation>,
    query: web::Query<SeatChangesQuery>,
    request: HttpRequest,
    payload: web::Payload,
) -> ApiResult<web::Json<SeatChangeReport>> {
    let file = csv_body(&request, payload).await?;
    let (code, actor, dry_run) = (organisation.code, organisation.user.actor(), query.dry_run);
    let report = state
        .run(move |db| {
            if dry_run {
                db::seat_changes::rehearse(db, &actor, &code, &file, today())
            } else {
                db::seat_changes::apply(db, &actor, &code, &file, today())
            }
        })
        .await?;
    Ok(web::Json(report))
}
