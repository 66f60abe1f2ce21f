//! The change feed: changes to the shared record (suppliers, products and releases, agreements
//! and entitlements, standards, advisories) in order, so that another system keeps a copy in step
//! by reading on from where it stopped instead of polling every list (`db::audit::feed`).

use actix_web::{HttpRequest, HttpResponse, get, web};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::Authorised;
use crate::auth::extractors::AnyRole;
use crate::error::ApiResult;
use crate::openapi::ReadErrors;
use crate::preconditions::page_request;
use crate::spreadsheet::{self, Format};
use crate::state::AppState;
use crate::views::ChangePage;

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ChangesQuery {
    /// The `cursor` of the last change read (none: from the beginning).
    pub after: Option<String>,
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// `csv` for every change from `after` on as one CSV file (or send `Accept: text/csv`).
    pub format: Option<Format>,
}

/// Changes to suppliers, products, releases, agreements, entitlements, standards and advisories
/// after `after`, oldest first, each exactly once across pages while writes go on: a change
/// whose transaction is still committing appears on a later read, never out of turn. Seat totals
/// move with claims, which are each organisation's own business and not in the feed: read the
/// entitlement for its seats.
#[utoipa::path(
    tag = "changes",
    operation_id = "list_changes",
    security(("bearer" = [])),
    params(ChangesQuery),
    responses(
        (status = 200, description = "A page of changes, or all of them from `after` as CSV", content(
            (ChangePage = "application/json"),
            (String = "text/csv"),
        )),
        ReadErrors
    )
)]
#[get("/changes")]
pub async fn list_changes(
    state: web::Data<AppState>,
    _user: Authorised<AnyRole>,
    query: web::Query<ChangesQuery>,
    request: HttpRequest,
) -> ApiResult<HttpResponse> {
    let query = query.into_inner();
    let csv = spreadsheet::wants_csv(&request, query.format);
    let page = page_request(query.limit, query.after)?;
    spreadsheet::list(&state, csv, "changes", page, db::audit::feed).await
}
