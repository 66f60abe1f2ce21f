//! Asking for a product the catalogue does not list (issue 22). A search on the start page that
//! finds nothing (and every answer, under it) offers "Ask for a product to be added": a form for
//! officers, exemplar authors and the national team (auditors read, never ask) that keeps the
//! search that found nothing. The requests are stored per organisation (`db::product_requests`,
//! which states their rules once, applied here and by every write).
//!
//! The national team and auditors list every organisation's requests, officers and exemplar
//! authors their own organisation's; another organisation's request is not found. A request's
//! page is where an admin marks it added, choosing the product now in the catalogue with a
//! product finder, or declines it with a reason, and where the organisation withdraws it while
//! it waits. These are pages only: the API has no product-request endpoints.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use db::PageRequest;
use db::product_requests::{
    NewProductRequest, ProductRequest, ProductRequestFilter, ReasonProblem, RequestProblem,
};
use db::users::Role;
use db::vocabulary::ProductRequestStatus;
use serde::Deserialize;

use crate::auth::CurrentUser;
use crate::auth::extractors::{AdminOnly, AnyRole, Requesters};
use crate::spreadsheet;
use crate::state::AppState;
use crate::web::{
    Choice, Chrome, FieldError, NoFields, Refusal, Session, Submitted, WebError, WebResult, capitalised,
    count, date_time, error_for, named, query_value, render, see_other, today,
};

/// Requests on one page of the list.
const PAGE_SIZE: i64 = 50;
/// The most products the finder offers.
const MAX_FOUND: i64 = 20;

/// What each status is called on the pages, and the tag it is shown in.
pub fn status_words(status: ProductRequestStatus) -> (&'static str, &'static str) {
    match status {
        ProductRequestStatus::Waiting => ("Waiting", "nhsuk-tag--yellow"),
        ProductRequestStatus::Added => ("Added", "nhsuk-tag--green"),
        ProductRequestStatus::Declined => ("Declined", "nhsuk-tag--red"),
        ProductRequestStatus::Withdrawn => ("Withdrawn", "nhsuk-tag--grey"),
    }
}

/// Whether the user sees every organisation's requests: the national team and auditors.
fn national(user: &CurrentUser) -> bool {
    matches!(user.role(), Role::Admin | Role::Auditor)
}

/// The first `most` characters of `text`, trimmed.
fn at_most(text: &str, most: usize) -> String {
    text.trim().chars().take(most).collect::<String>().trim().to_owned()
}

/// The address of the form to ask for a product, keeping the search that found nothing (and for
/// the national team, the organisation asked about). The start page links to it.
pub fn ask_href(question: &str, organisation: Option<&str>) -> String {
    let mut href = format!("/product-requests/new?q={}", query_value(question));
    if let Some(code) = organisation.filter(|code| !code.is_empty()) {
        href.push_str(&format!("&organisation={}", query_value(code)));
    }
    href
}

/// What was typed into the form, kept to show again.
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct Typed {
    /// The organisation's ODS code (the national team names one; others ask for their own).
    pub organisation: String,
    pub product_name: String,
    pub supplier: String,
    pub version: String,
    pub need: String,
    /// The search that found nothing, carried in a hidden field.
    pub searched: String,
}

#[derive(Template)]
#[template(path = "product_request_form.html")]
struct RequestFormPage {
    chrome: Chrome,
    typed: Typed,
    /// Whether the form asks which organisation needs it (the national team).
    ask_organisation: bool,
    /// The user's organisation in words, when they ask for their own.
    organisation: String,
    errors: Vec<FieldError>,
}

impl RequestFormPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        error_for(&self.errors, field)
    }
}

async fn render_form(
    state: &AppState,
    session: &Session,
    typed: Typed,
    errors: Vec<FieldError>,
    status: StatusCode,
) -> WebResult<HttpResponse> {
    let user = &session.user;
    let own = user.organisation().map(str::to_owned);
    let organisation = match &own {
        Some(code) => {
            let codes = vec![code.clone()];
            let names = state.read(move |conn| db::organisations::names(conn, &codes)).await?;
            named(code, &names)
        }
        None => String::new(),
    };
    let title = if errors.is_empty() {
        "Ask for a product to be added"
    } else {
        "Error: Ask for a product to be added"
    };
    let page = RequestFormPage {
        chrome: Chrome::for_session(title, session, "/product-requests"),
        ask_organisation: own.is_none(),
        organisation,
        typed,
        errors,
    };
    render(status, &page)
}

#[derive(Deserialize)]
pub struct NewRequestQuery {
    /// The search that found nothing.
    #[serde(default)]
    q: String,
    /// The organisation asked about (the national team's).
    #[serde(default)]
    organisation: String,
}

/// The form to ask for a product, the product's name filled in with the search that found
/// nothing.
pub async fn new_request_page(
    state: web::Data<AppState>,
    session: Session,
    query: web::Query<NewRequestQuery>,
) -> WebResult<HttpResponse> {
    session.require::<Requesters>()?;
    let searched = at_most(&query.q, db::product_requests::MAX_SEARCH_CHARS);
    let typed = Typed {
        organisation: query.organisation.trim().to_uppercase(),
        product_name: at_most(&searched, db::product_requests::MAX_NAME_CHARS),
        searched,
        ..Typed::default()
    };
    render_form(&state, &session, typed, Vec::new(), StatusCode::OK).await
}

/// The message beside a field for a rule of the data layer.
fn field_error(problem: RequestProblem) -> FieldError {
    use db::product_requests::{MAX_NAME_CHARS, MAX_REASON_CHARS, MAX_VERSION_CHARS};
    let most = |n: usize| count(n as i64);
    let (field, message) = match problem {
        RequestProblem::NoOrganisation => {
            ("organisation", "Enter the ODS code of the organisation that needs the product".to_owned())
        }
        RequestProblem::NoProductName => ("product_name", "Enter the product's name".to_owned()),
        RequestProblem::ProductNameTooLong => (
            "product_name",
            format!("The product's name must be {} characters or fewer", most(MAX_NAME_CHARS)),
        ),
        RequestProblem::NoSupplier => ("supplier", "Enter the supplier's name".to_owned()),
        RequestProblem::SupplierTooLong => {
            ("supplier", format!("The supplier's name must be {} characters or fewer", most(MAX_NAME_CHARS)))
        }
        RequestProblem::VersionTooLong => (
            "version",
            format!("The version or edition must be {} characters or fewer", most(MAX_VERSION_CHARS)),
        ),
        RequestProblem::NoNeed => ("need", "Enter why the organisation needs the product".to_owned()),
        RequestProblem::NeedTooLong => {
            ("need", format!("Why it is needed must be {} characters or fewer", most(MAX_REASON_CHARS)))
        }
        // The search is carried from the start page, cut to length: it is named against the
        // product's name, where it was filled in.
        RequestProblem::SearchTooLong => {
            ("product_name", "The search is too long: search again with fewer words".to_owned())
        }
    };
    FieldError { field, message }
}

/// Stores the request for the user's organisation (the national team's: the one named); its
/// page on success, else the form again with every problem and what was typed.
pub async fn create_request(
    state: web::Data<AppState>,
    submitted: Submitted<Typed>,
) -> WebResult<HttpResponse> {
    let (session, mut typed) = (submitted.session, submitted.form);
    let user = session.require::<Requesters>()?;
    let organisation = match user.organisation() {
        Some(own) => own.to_owned(),
        None => typed.organisation.trim().to_uppercase(),
    };
    typed.organisation = organisation.clone();
    let new = NewProductRequest {
        organisation_code: organisation.clone(),
        product_name: typed.product_name.clone(),
        supplier: typed.supplier.clone(),
        version: Some(typed.version.clone()),
        need: typed.need.clone(),
        search_text: Some(at_most(&typed.searched, db::product_requests::MAX_SEARCH_CHARS)),
    };
    let mut errors: Vec<FieldError> =
        db::product_requests::problems(&new).into_iter().map(field_error).collect();
    if !organisation.is_empty() {
        let code = organisation.clone();
        let known = state.read(move |conn| db::organisations::names(conn, &[code])).await?;
        if known.is_empty() {
            errors.insert(
                0,
                FieldError::new(
                    "organisation",
                    &format!("There is no organisation with the ODS code {organisation}: check the code"),
                ),
            );
        } else {
            user.ensure_can_act_for(&organisation)?;
        }
    }
    if !errors.is_empty() {
        return render_form(&state, &session, typed, errors, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    let actor = user.actor();
    let error = match state.run(move |db| db::product_requests::create(db, &actor, new)).await {
        Ok(request) => return Ok(see_other(&format!("/product-requests/{}?notice=sent", request.id))),
        Err(error) => error,
    };
    let refusal = Refusal::of(error)?;
    let errors = vec![FieldError::new("product_name", &capitalised(&refusal.detail))];
    render_form(&state, &session, typed, errors, refusal.status).await
}

#[derive(Deserialize)]
pub struct RequestsQuery {
    /// A status, or empty for every one.
    #[serde(default)]
    status: String,
    /// An organisation's ODS code (the national team's filter).
    #[serde(default)]
    organisation: String,
    cursor: Option<String>,
    /// `csv`: the whole selection as a file (the page's "Download CSV").
    format: Option<String>,
}

pub struct RequestRow {
    pub id: i64,
    pub requested: String,
    pub organisation: String,
    pub product: String,
    pub status: &'static str,
    pub tag: &'static str,
}

#[derive(Template)]
#[template(path = "product_requests.html")]
struct RequestsPage {
    chrome: Chrome,
    national: bool,
    can_ask: bool,
    statuses: Vec<Choice>,
    organisation: String,
    errors: Vec<FieldError>,
    requests: Vec<RequestRow>,
    first_page: Option<String>,
    next_page: Option<String>,
    /// Every request the filters select, as one CSV file.
    download: String,
}

impl RequestsPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        error_for(&self.errors, field)
    }
}

/// The requests the user may see, those waiting first, filtered, a page at a time, or as one CSV
/// file.
pub async fn product_requests_page(
    state: web::Data<AppState>,
    session: Session,
    query: web::Query<RequestsQuery>,
) -> WebResult<HttpResponse> {
    let user = session.require::<AnyRole>()?;
    let national = national(user);
    let query = query.into_inner();
    let status_typed = query.status.trim().to_owned();
    let mut errors = Vec::new();
    let status = match status_typed.as_str() {
        "" => None,
        typed => ProductRequestStatus::parse(typed).or_else(|| {
            errors.push(FieldError::new("status", "Choose a status from the list"));
            None
        }),
    };
    let organisation = if national { query.organisation.trim().to_uppercase() } else { String::new() };
    let filter = ProductRequestFilter {
        status,
        organisation_code: match national {
            true => (!organisation.is_empty()).then(|| organisation.clone()),
            false => Some(user.organisation().unwrap_or_default().to_owned()),
        },
    };
    let typed = [("status", status_typed.as_str()), ("organisation", organisation.as_str())];
    let address = |extra: &[(&str, &str)]| {
        let pairs: Vec<String> = typed
            .iter()
            .chain(extra)
            .filter(|(_, value)| !value.is_empty())
            .map(|(name, value)| format!("{name}={}", query_value(value)))
            .collect();
        match pairs.is_empty() {
            true => "/product-requests".to_owned(),
            false => format!("/product-requests?{}", pairs.join("&")),
        }
    };
    if query.format.as_deref() == Some("csv") && errors.is_empty() {
        let every = PageRequest::default();
        return Ok(spreadsheet::list(&state, true, "product-requests", every, move |conn, page| {
            db::product_requests::list(conn, &filter, page)
        })
        .await?);
    }
    let (requests, next_cursor) = match errors.is_empty() {
        true => listed(&state, filter, query.cursor.clone()).await?,
        false => (Vec::new(), None),
    };
    let statuses = std::iter::once(("", "Any status"))
        .chain(ProductRequestStatus::ALL.iter().map(|s| (s.as_str(), status_words(*s).0)))
        .map(|(value, label)| Choice::new(value, label, &status_typed))
        .collect();
    let (status, title) = match errors.is_empty() {
        true => (StatusCode::OK, "Product requests"),
        false => (StatusCode::UNPROCESSABLE_ENTITY, "Error: Product requests"),
    };
    let page = RequestsPage {
        chrome: Chrome::for_session(title, &session, "/product-requests"),
        national,
        can_ask: session.require::<Requesters>().is_ok(),
        statuses,
        errors,
        requests,
        first_page: query.cursor.is_some().then(|| address(&[])),
        next_page: next_cursor.map(|cursor| address(&[("cursor", &cursor)])),
        download: address(&[("format", "csv")]),
        organisation,
    };
    render(status, &page)
}

/// A page of requests with the names of their organisations, in two statements.
async fn listed(
    state: &AppState,
    filter: ProductRequestFilter,
    cursor: Option<String>,
) -> WebResult<(Vec<RequestRow>, Option<String>)> {
    let page = PageRequest { limit: Some(PAGE_SIZE), cursor };
    let (found, organisations) = state
        .read(move |conn| {
            let found = db::product_requests::list(conn, &filter, &page)?;
            let codes: Vec<String> = found.items.iter().map(|r| r.organisation_code.clone()).collect();
            let organisations = db::organisations::names(conn, &codes)?;
            Ok((found, organisations))
        })
        .await?;
    let rows = found
        .items
        .into_iter()
        .map(|request| {
            let (status, tag) = status_words(request.status);
            RequestRow {
                id: request.id,
                requested: date_time(request.requested_at),
                organisation: named(&request.organisation_code, &organisations),
                product: request.label(),
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
    /// What the product finder looks for; the request's product when not given.
    find: Option<String>,
}

/// A product the finder offers.
pub struct ProductChoice {
    pub id: i64,
    pub label: String,
    pub checked: bool,
}

#[derive(Template)]
#[template(path = "product_request.html")]
struct RequestPage {
    chrome: Chrome,
    request: ProductRequest,
    label: String,
    status: &'static str,
    tag: &'static str,
    organisation: String,
    requested: String,
    decided: Option<String>,
    /// The product now in the catalogue, once added: its id and label.
    added: Option<(i64, String)>,
    can_decide: bool,
    can_withdraw: bool,
    /// What the finder looks for, and the products it found.
    find: String,
    products: Vec<ProductChoice>,
    /// The decline's reason as typed, kept when it could not be recorded.
    reason: String,
    errors: Vec<FieldError>,
    notice: Option<&'static str>,
}

impl RequestPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        error_for(&self.errors, field)
    }
}

/// The request the user may see: another organisation's answers 404.
async fn visible(state: &AppState, user: &CurrentUser, id: i64) -> WebResult<ProductRequest> {
    let request = state.read(move |conn| db::product_requests::get(conn, id)).await?;
    user.ensure_can_read(&request.organisation_code).map_err(|_| WebError::NotFound)?;
    Ok(request)
}

/// What the page shows besides the request: the finder's search and the product chosen, a
/// decline's reason, and their problems.
struct Outcome {
    find: Option<String>,
    chosen: Option<i64>,
    reason: String,
    errors: Vec<FieldError>,
    notice: Option<&'static str>,
    status: StatusCode,
}

impl Outcome {
    fn shown(notice: Option<&'static str>, find: Option<String>) -> Outcome {
        Outcome {
            find,
            chosen: None,
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
    request: ProductRequest,
    outcome: Outcome,
) -> WebResult<HttpResponse> {
    let waiting = request.status == ProductRequestStatus::Waiting;
    let can_decide = waiting && user.role() == Role::Admin;
    let find = match outcome.find {
        Some(find) => find.trim().to_owned(),
        None => request.product_name.clone(),
    };
    let (code, added_id, searching, model) = (
        request.organisation_code.clone(),
        request.product_id,
        can_decide.then(|| find.clone()),
        state.read_model(),
    );
    let (names, added, found) = state
        .read(move |conn| {
            let names = db::organisations::names(conn, &[code])?;
            let added = match added_id {
                Some(id) => db::products::with_ids(conn, &[id], today())?.pop(),
                None => None,
            };
            let found = match searching {
                Some(find) => {
                    crate::hot_reads::product_search_on(model.as_deref(), conn, &find, today(), MAX_FOUND)?
                }
                None => Vec::new(),
            };
            Ok((names, added, found))
        })
        .await?;
    let (status, tag) = status_words(request.status);
    let label = request.label();
    let title = match outcome.errors.is_empty() {
        true => format!("Product request: {label}"),
        false => format!("Error: Product request: {label}"),
    };
    let page = RequestPage {
        chrome: Chrome::for_session(title, session, "/product-requests"),
        status,
        tag,
        label,
        organisation: named(&request.organisation_code, &names),
        requested: date_time(request.requested_at),
        decided: request.decided_at.map(date_time),
        added: added.map(|product| (product.id, product.label())),
        can_decide,
        // The organisation withdraws its own; the national team declines instead.
        can_withdraw: waiting
            && user.role() != Role::Admin
            && user.ensure_can_act_for(&request.organisation_code).is_ok(),
        find,
        products: found
            .into_iter()
            .map(|product| ProductChoice {
                checked: outcome.chosen == Some(product.id),
                id: product.id,
                label: product.label(),
            })
            .collect(),
        reason: outcome.reason,
        errors: outcome.errors,
        notice: outcome.notice,
        request,
    };
    render(outcome.status, &page)
}

/// One request: what it asks for, where it stands, and what the user may do with it.
pub async fn product_request_page(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<i64>,
    query: web::Query<RequestQuery>,
) -> WebResult<HttpResponse> {
    let user = session.require::<AnyRole>()?;
    let request = visible(&state, user, id.into_inner()).await?;
    let query = query.into_inner();
    let notice = match query.notice.as_deref() {
        Some("sent") => Some("Request sent: the national team will add the product or tell you why not."),
        Some("added") => Some("Request marked added: the organisation can see the product in the catalogue."),
        Some("declined") => Some("Request declined: the organisation can read your reason here."),
        Some("withdrawn") => Some("Request withdrawn."),
        _ => None,
    };
    render_request(&state, &session, user, request, Outcome::shown(notice, query.find)).await
}

#[derive(Deserialize)]
pub struct AddedForm {
    /// The product chosen, from the finder's list.
    #[serde(default)]
    product_id: String,
    /// What the finder looked for, to show its list again.
    #[serde(default)]
    find: String,
}

/// Marks the request added, naming the product chosen (now in the catalogue).
pub async fn mark_added(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    submitted: Submitted<AddedForm>,
) -> WebResult<HttpResponse> {
    let (session, form) = (submitted.session, submitted.form);
    let admin = session.require::<AdminOnly>()?;
    let (id, actor) = (id.into_inner(), admin.actor());
    let chosen = form.product_id.trim().parse::<i64>().ok();
    let (problem, status) = match chosen {
        None => (
            "Choose the product now in the catalogue: find it by its name, then select it".to_owned(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        Some(product) => {
            match state.run(move |db| db::product_requests::mark_added(db, &actor, id, product)).await {
                Ok(_) => return Ok(see_other(&format!("/product-requests/{id}?notice=added"))),
                Err(error) => {
                    let refusal = Refusal::of(error)?;
                    (capitalised(&refusal.detail), refusal.status)
                }
            }
        }
    };
    let request = visible(&state, admin, id).await?;
    let outcome = Outcome {
        chosen,
        errors: vec![FieldError { field: "product_id", message: problem }],
        status,
        ..Outcome::shown(None, Some(form.find))
    };
    render_request(&state, &session, admin, request, outcome).await
}

#[derive(Deserialize)]
pub struct DeclineForm {
    #[serde(default)]
    reason: String,
}

/// Declines the request with the reason typed, which the organisation reads.
pub async fn decline(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    submitted: Submitted<DeclineForm>,
) -> WebResult<HttpResponse> {
    let (session, reason) = (submitted.session, submitted.form.reason);
    let admin = session.require::<AdminOnly>()?;
    let (id, actor) = (id.into_inner(), admin.actor());
    // The data layer's rule, in the page's words; what it refuses besides (a request decided
    // meanwhile) in its own.
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    let (problem, status) = match db::product_requests::reason_problem(&reason) {
        Some(ReasonProblem::Empty) => ("Enter why the request is declined".to_owned(), unprocessable),
        Some(ReasonProblem::TooLong) => (
            format!(
                "The reason must be {} characters or fewer",
                count(db::product_requests::MAX_REASON_CHARS as i64)
            ),
            unprocessable,
        ),
        None => {
            let written = reason.clone();
            match state.run(move |db| db::product_requests::decline(db, &actor, id, &written)).await {
                Ok(_) => return Ok(see_other(&format!("/product-requests/{id}?notice=declined"))),
                Err(error) => {
                    let refusal = Refusal::of(error)?;
                    (capitalised(&refusal.detail), refusal.status)
                }
            }
        }
    };
    let request = visible(&state, admin, id).await?;
    let outcome = Outcome {
        reason,
        errors: vec![FieldError { field: "reason", message: problem }],
        status,
        ..Outcome::shown(None, None)
    };
    render_request(&state, &session, admin, request, outcome).await
}

/// Withdraws a waiting request of the user's organisation (any, for an admin).
pub async fn withdraw(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    submitted: Submitted<NoFields>,
) -> WebResult<HttpResponse> {
    let session = submitted.session;
    let user = session.require::<AnyRole>()?;
    let id = id.into_inner();
    let request = visible(&state, user, id).await?;
    user.ensure_can_act_for(&request.organisation_code)?;
    let actor = user.actor();
    match state.run(move |db| db::product_requests::withdraw(db, &actor, id)).await {
        Ok(_) => Ok(see_other(&format!("/product-requests/{id}?notice=withdrawn"))),
        Err(error) => {
            let refusal = Refusal::of(error)?;
            let outcome = Outcome {
                errors: vec![FieldError { field: "withdraw", message: capitalised(&refusal.detail) }],
                status: refusal.status,
                ..Outcome::shown(None, None)
            };
            let request = visible(&state, user, id).await?;
            render_request(&state, &session, user, request, outcome).await
        }
    }
}
