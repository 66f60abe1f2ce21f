//! Seat requests: claims on lines that need the national team's approval, held until it decides
//! (the API's `/v1/seat-requests`). The national team and auditors see every organisation's,
//! those waiting for a decision first unless another status is chosen; officers and exemplars
//! see their own organisation's. A request's page shows what it asks for and what its line has
//! left, and is where an admin approves it (the claim is made then, checked as any claim is) or
//! refuses it with a reason, and where the organisation withdraws one it no longer needs.
//! Another organisation's request is not found, as in the API.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use db::seat_requests::{ReasonProblem, SeatRequest, SeatRequestFilter};
use db::users::Role;
use db::vocabulary::SeatRequestStatus;
use db::{AddedOrder, PageRequest};
use serde::Deserialize;

use crate::auth::CurrentUser;
use crate::auth::extractors::{AdminOnly, AdminOrOfficer, AnyRole};
use crate::spreadsheet;
use crate::state::AppState;
use crate::web::allocations::organisation_and_line;
use crate::web::{
    Choice, Chrome, FieldError, NoFields, Refusal, Session, Submitted, WebError, WebResult, added_order,
    added_order_choices, capitalised, count, counted, date_time, error_for, query_value, render, see_other,
};

/// Requests on one page of the list.
const PAGE_SIZE: i64 = 50;

/// What each status is called on the pages, and the tag it is shown in.
fn status_words(status: SeatRequestStatus) -> (&'static str, &'static str) {
    match status {
        SeatRequestStatus::Pending => ("Waiting for a decision", "nhsuk-tag--yellow"),
        SeatRequestStatus::Approved => ("Approved", "nhsuk-tag--green"),
        SeatRequestStatus::Refused => ("Refused", "nhsuk-tag--red"),
        SeatRequestStatus::Withdrawn => ("Withdrawn", "nhsuk-tag--grey"),
    }
}

/// Whether the user sees every organisation's requests: the national team and auditors.
fn national(user: &CurrentUser) -> bool {
    matches!(user.role(), Role::Admin | Role::Auditor)
}

#[derive(Deserialize)]
pub struct SeatRequestsQuery {
    /// A status, or empty for every one; when not given, the national team sees those waiting.
    status: Option<String>,
    /// An organisation's ODS code (the national team's filter).
    #[serde(default)]
    organisation: String,
    /// `oldest` (the default: the order they are worked through) or `newest` first.
    #[serde(default)]
    sort: String,
    cursor: Option<String>,
    /// `csv`: the whole selection as a file (the page's "Download CSV").
    format: Option<String>,
}

pub struct RequestRow {
    pub id: i64,
    pub requested: String,
    pub organisation: String,
    pub product: String,
    pub seats: String,
    pub reference: Option<String>,
    pub status: &'static str,
    pub tag: &'static str,
}

#[derive(Template)]
#[template(path = "seat_requests.html")]
struct SeatRequestsPage {
    chrome: Chrome,
    national: bool,
    statuses: Vec<Choice>,
    /// Oldest or newest first.
    orders: Vec<Choice>,
    organisation: String,
    errors: Vec<FieldError>,
    requests: Vec<RequestRow>,
    first_page: Option<String>,
    next_page: Option<String>,
    /// Every request the filters select, as one CSV file.
    download: String,
}

impl SeatRequestsPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        error_for(&self.errors, field)
    }
}

/// The list of requests the user may see, filtered, a page at a time, or as one CSV file.
pub async fn seat_requests_page(
    state: web::Data<AppState>,
    session: Session,
    query: web::Query<SeatRequestsQuery>,
) -> WebResult<HttpResponse> {
    let user = session.require::<AnyRole>()?;
    let national = national(user);
    let query = query.into_inner();
    let status_typed = match &query.status {
        Some(status) => status.trim().to_owned(),
        None if national => SeatRequestStatus::Pending.as_str().to_owned(),
        None => String::new(),
    };
    let mut errors = Vec::new();
    let status = match status_typed.as_str() {
        "" => None,
        typed => SeatRequestStatus::parse(typed).or_else(|| {
            errors.push(FieldError::new("status", "Choose a status from the list"));
            None
        }),
    };
    let order = added_order(&query.sort, AddedOrder::OldestFirst, &mut errors);
    let organisation = if national { query.organisation.trim().to_uppercase() } else { String::new() };
    let filter = SeatRequestFilter {
        status,
        organisation_code: match national {
            true => (!organisation.is_empty()).then(|| organisation.clone()),
            false => Some(user.organisation().unwrap_or_default().to_owned()),
        },
        entitlement_id: None,
        order,
    };
    let address = format!(
        "/seat-requests?status={}&organisation={}&sort={}",
        query_value(&status_typed),
        query_value(&organisation),
        order.as_str()
    );
    if query.format.as_deref() == Some("csv") && errors.is_empty() {
        let every = PageRequest::default();
        return Ok(spreadsheet::list(&state, true, "seat-requests", every, move |conn, page| {
            db::seat_requests::list(conn, &filter, page)
        })
        .await?);
    }
    let (requests, next_cursor) = match errors.is_empty() {
        true => listed(&state, filter, query.cursor.clone()).await?,
        false => (Vec::new(), None),
    };
    let statuses = std::iter::once(("", "Any status"))
        .chain(SeatRequestStatus::ALL.iter().map(|s| (s.as_str(), status_words(*s).0)))
        .map(|(value, label)| Choice::new(value, label, &status_typed))
        .collect();
    let (status, title) = match errors.is_empty() {
        true => (StatusCode::OK, "Seat requests"),
        false => (StatusCode::UNPROCESSABLE_ENTITY, "Error: Seat requests"),
    };
    let page = SeatRequestsPage {
        chrome: Chrome::for_session(title, &session, "/seat-requests"),
        national,
        statuses,
        orders: added_order_choices(order, "Oldest first", "Newest first"),
        organisation,
        errors,
        requests,
        first_page: query.cursor.is_some().then(|| address.clone()),
        next_page: next_cursor.map(|cursor| format!("{address}&cursor={}", query_value(&cursor))),
        download: format!("{address}&format=csv"),
    };
    render(status, &page)
}

/// A page of requests with the names of their organisations and products, in three statements.
async fn listed(
    state: &AppState,
    filter: SeatRequestFilter,
    cursor: Option<String>,
) -> WebResult<(Vec<RequestRow>, Option<String>)> {
    let page = PageRequest { limit: Some(PAGE_SIZE), cursor };
    let (found, organisations, products) = state
        .read(move |conn| {
            let found = db::seat_requests::list(conn, &filter, &page)?;
            let codes: Vec<String> = found.items.iter().map(|r| r.organisation_code.clone()).collect();
            let lines: Vec<i64> = found.items.iter().map(|r| r.entitlement_id).collect();
            let organisations = db::organisations::names(conn, &codes)?;
            let products = db::seat_requests::products_of_lines(conn, &lines)?;
            Ok((found, organisations, products))
        })
        .await?;
    let rows = found
        .items
        .into_iter()
        .map(|request| {
            let (status, tag) = status_words(request.status);
            let code = &request.organisation_code;
            RequestRow {
                id: request.id,
                requested: date_time(request.requested_at),
                organisation: match organisations.get(code) {
                    Some(name) => format!("{name} ({code})"),
                    None => code.clone(),
                },
                product: products.get(&request.entitlement_id).cloned().unwrap_or_default(),
                seats: count(request.quantity),
                reference: request.reference,
                status,
                tag,
            }
        })
        .collect();
    Ok((rows, found.next_cursor))
}

#[derive(Deserialize)]
pub struct RequestQuery {
    notice: Option<String>,
}

#[derive(Template)]
#[template(path = "seat_request.html")]
struct SeatRequestPage {
    chrome: Chrome,
    request: SeatRequest,
    status: &'static str,
    tag: &'static str,
    organisation: String,
    product: String,
    agreement_id: i64,
    agreement_reference: String,
    seats: String,
    /// What the line has left now, or that it has no cap.
    line_left: String,
    requested: String,
    decided: Option<String>,
    can_decide: bool,
    can_withdraw: bool,
    /// Why approving failed, when it did: the request is still waiting.
    refused_approval: Option<String>,
    /// The refusal's reason as typed, kept when it could not be recorded.
    reason: String,
    errors: Vec<FieldError>,
    notice: Option<&'static str>,
}

impl SeatRequestPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        error_for(&self.errors, field)
    }
}

/// The request the user may see: another organisation's answers 404, as in the API.
async fn visible(state: &AppState, user: &CurrentUser, id: i64) -> WebResult<SeatRequest> {
    let request = state.read(move |conn| db::seat_requests::get(conn, id)).await?;
    user.ensure_can_read(&request.organisation_code).map_err(|_| WebError::NotFound)?;
    Ok(request)
}

/// What the page shows besides the request, with a refused approval or a refusal's problems.
struct Outcome {
    refused_approval: Option<String>,
    reason: String,
    errors: Vec<FieldError>,
    notice: Option<&'static str>,
    status: StatusCode,
}

impl Outcome {
    fn shown(notice: Option<&'static str>) -> Outcome {
        Outcome {
            refused_approval: None,
            reason: String::new(),
            errors: Vec::new(),
            notice,
            status: StatusCode::OK,
        }
    }
}

async fn render_request(
    state: &AppState,
    session: &Session,
    user: &CurrentUser,
    request: SeatRequest,
    outcome: Outcome,
) -> WebResult<HttpResponse> {
    let (organisation, entitlement, agreement) =
        organisation_and_line(state, &request.organisation_code, request.entitlement_id).await?;
    let pending = request.status == SeatRequestStatus::Pending;
    let (status, tag) = status_words(request.status);
    let title = match outcome.errors.is_empty() && outcome.refused_approval.is_none() {
        true => format!("Seat request {}", request.id),
        false => format!("Error: Seat request {}", request.id),
    };
    let page = SeatRequestPage {
        chrome: Chrome::for_session(title, session, "/seat-requests"),
        status,
        tag,
        organisation: format!("{} ({})", organisation.name, organisation.code),
        product: entitlement.product,
        agreement_id: agreement.id,
        agreement_reference: agreement.reference,
        seats: counted(request.quantity, "seat", "seats"),
        line_left: match entitlement.seats_remaining {
            Some(left) => {
                format!("{} of {} left", count(left), count(entitlement.seat_cap.unwrap_or_default()))
            }
            None => "No cap: the line has seats for every eligible organisation".to_owned(),
        },
        requested: date_time(request.requested_at),
        decided: request.decided_at.map(date_time),
        can_decide: pending && user.role() == Role::Admin,
        // Officers withdraw their own; the national team refuses instead (the API lets it do either).
        can_withdraw: pending
            && user.role() == Role::Officer
            && user.ensure_can_act_for(&request.organisation_code).is_ok(),
        refused_approval: outcome.refused_approval,
        reason: outcome.reason,
        errors: outcome.errors,
        notice: outcome.notice,
        request,
    };
    render(outcome.status, &page)
}

/// One request: what it asks for, where it stands, and what the user may do with it.
pub async fn seat_request_page(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<i64>,
    query: web::Query<RequestQuery>,
) -> WebResult<HttpResponse> {
    let user = session.require::<AnyRole>()?;
    let request = visible(&state, user, id.into_inner()).await?;
    let notice = match query.notice.as_deref() {
        Some("approved") => Some("Request approved: the seats are allocated to the organisation."),
        Some("refused") => Some("Request refused: the organisation can read your reason here."),
        Some("withdrawn") => Some("Request withdrawn: no seats were taken."),
        _ => None,
    };
    render_request(&state, &session, user, request, Outcome::shown(notice)).await
}

/// Approves the request, as `POST /v1/seat-requests/{id}/approve` does: its claim is made now.
/// When the claim is refused (no seats left, the organisation's cap), nothing changes and the
/// page says why.
pub async fn approve(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    submitted: Submitted<NoFields>,
) -> WebResult<HttpResponse> {
    let session = submitted.session;
    let admin = session.require::<AdminOnly>()?;
    let (id, actor) = (id.into_inner(), admin.actor());
    let today = crate::web::today();
    let error = match state.run(move |db| db::ledger::approve_request(db, &actor, id, today)).await {
        Ok(_) => return Ok(see_other(&format!("/seat-requests/{id}?notice=approved"))),
        Err(error) => error,
    };
    let refused = Refusal::of(error)?;
    let request = visible(&state, admin, id).await?;
    let outcome = Outcome {
        refused_approval: Some(capitalised(&refused.detail)),
        status: refused.status,
        ..Outcome::shown(None)
    };
    render_request(&state, &session, admin, request, outcome).await
}

#[derive(Deserialize)]
pub struct RefuseForm {
    #[serde(default)]
    reason: String,
}

/// Refuses the request with the reason typed, as `POST /v1/seat-requests/{id}/refuse` does.
pub async fn refuse(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    submitted: Submitted<RefuseForm>,
) -> WebResult<HttpResponse> {
    let (session, reason) = (submitted.session, submitted.form.reason);
    let admin = session.require::<AdminOnly>()?;
    let (id, actor) = (id.into_inner(), admin.actor());
    // The data layer's rule, in the page's words; what it refuses besides (a request decided
    // meanwhile) in its own.
    let problem = match db::seat_requests::reason_problem(&reason) {
        Some(ReasonProblem::Empty) => Some("Enter why the request is refused".to_owned()),
        Some(ReasonProblem::TooLong) => Some(format!(
            "The reason must be {} characters or fewer",
            count(db::seat_requests::MAX_REASON_CHARS as i64)
        )),
        None => {
            let written = reason.clone();
            match state.run(move |db| db::seat_requests::refuse(db, &actor, id, &written)).await {
                Ok(_) => return Ok(see_other(&format!("/seat-requests/{id}?notice=refused"))),
                Err(error) => Some(capitalised(&Refusal::of(error)?.detail)),
            }
        }
    };
    let request = visible(&state, admin, id).await?;
    let errors = problem.map(|message| FieldError::new("reason", &message)).into_iter().collect();
    let outcome =
        Outcome { reason, errors, status: StatusCode::UNPROCESSABLE_ENTITY, ..Outcome::shown(None) };
    render_request(&state, &session, admin, request, outcome).await
}

/// Withdraws a pending request of the user's organisation (any, for an admin), as
/// `POST /v1/seat-requests/{id}/withdraw` does.
pub async fn withdraw(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    submitted: Submitted<NoFields>,
) -> WebResult<HttpResponse> {
    let session = submitted.session;
    let user = session.require::<AdminOrOfficer>()?;
    let id = id.into_inner();
    let request = visible(&state, user, id).await?;
    user.ensure_can_act_for(&request.organisation_code).map_err(|_| WebError::NotFound)?;
    let actor = user.actor();
    state.run(move |db| db::seat_requests::withdraw(db, &actor, id)).await?;
    Ok(see_other(&format!("/seat-requests/{id}?notice=withdrawn")))
}
