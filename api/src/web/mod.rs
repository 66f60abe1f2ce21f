//! Web pages for people, server-rendered from the same binary: views over the same `db`
//! operations the API handlers call, with the same authorisation (the `CurrentUser` methods and
//! role sets). No business rule lives here or in a template: each handler extracts, authorises,
//! calls the data layer and renders. The pages are not part of the OpenAPI document.
//!
//! One module per page group; the templates are in `api/templates/`, the NHS.UK frontend files
//! that the binary carries in `api/assets/`.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError, Route, web};
use askama::Template;
use db::AddedOrder;
use db::users::Role;

use crate::error::ApiError;

pub mod account;
pub mod advisories;
pub mod advisory_forms;
pub mod agreement_forms;
pub mod agreements;
pub mod allocations;
pub mod assessments;
pub mod assets;
pub mod attention;
pub mod audit;
pub mod chart;
pub mod date_input;
pub mod estates;
pub mod kept_form;
pub mod notifications;
pub mod organisation_forms;
pub mod organisation_list;
pub mod organisations;
pub mod password_reset;
pub mod product_forms;
pub mod product_requests;
pub mod products;
pub mod purchases;
pub mod reports;
pub mod risk;
pub mod seat_changes;
pub mod seat_requests;
pub mod session;
pub mod standards;
pub mod start;
pub mod users;

pub use session::{Session, Submitted, Uploaded};

/// The policy for pages: their own scripts, styles and images only; no inline script or style,
/// no framing, and forms post only here.
pub const PAGE_CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
                            frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

/// How a page route is called: pages are read with GET and their forms sent with POST.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageMethod {
    Get,
    Post,
}

impl PageMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            PageMethod::Get => "GET",
            PageMethod::Post => "POST",
        }
    }
}

/// One route of the pages: a path pattern, a method and its handler.
pub struct PageRoute {
    pub method: PageMethod,
    pub path: &'static str,
    to: fn(Route) -> Route,
}

const fn get(path: &'static str, to: fn(Route) -> Route) -> PageRoute {
    PageRoute { method: PageMethod::Get, path, to }
}

const fn post(path: &'static str, to: fn(Route) -> Route) -> PageRoute {
    PageRoute { method: PageMethod::Post, path, to }
}

/// Every route of the pages. [`configure`] registers exactly these, and the web route matrix test
/// (`tests/web_route_matrix.rs`) calls each of them as every role and fails on a route its own
/// table does not name, so a new page cannot be added without saying who may use it.
pub const ROUTES: &[PageRoute] = &[
    get("/assets/{digest}/{path:.*}", |r| r.to(assets::serve)),
    get("/", |r| r.to(start::start_page)),
    get("/login", |r| r.to(session::login_page)),
    post("/login", |r| r.to(session::login)),
    get("/logout", |r| r.to(session::logout_page)),
    post("/logout", |r| r.to(session::logout)),
    post("/session/renew", |r| r.to(session::renew)),
    get("/password-reset", |r| r.to(password_reset::request_page)),
    post("/password-reset", |r| r.to(password_reset::request_link)),
    get("/password-reset/{token}", |r| r.to(password_reset::new_password_page)),
    post("/password-reset/{token}", |r| r.to(password_reset::set_new_password)),
    get("/account/password", |r| r.to(account::password_page)),
    post("/account/password", |r| r.to(account::change_password)),
    post("/entitlements/{id}/claim", |r| r.to(start::claim)),
    get("/allocations/{id}/release", |r| r.to(allocations::release_page)),
    post("/allocations/{id}/release", |r| r.to(allocations::release)),
    get("/organisations", |r| r.to(organisation_list::organisations_page)),
    post("/organisations", |r| r.to(organisation_forms::create_organisation)),
    // Before `{code}`: actix answers a path from the first resource that matches it.
    get("/organisations/new", |r| r.to(organisation_forms::new_organisation_page)),
    get("/organisations/{code}", |r| r.to(organisations::organisation_page)),
    get("/organisations/{code}/edit", |r| r.to(organisation_forms::edit_organisation_page)),
    post("/organisations/{code}/edit", |r| r.to(organisation_forms::update_organisation)),
    get("/organisations/{code}/purchases/new", |r| r.to(purchases::new_purchase_page)),
    post("/organisations/{code}/purchases", |r| r.to(purchases::record_purchase)),
    get("/organisations/{code}/estate", |r| r.to(estates::estate_page)),
    post("/organisations/{code}/estate", |r| r.to(estates::import_estate)),
    get("/organisations/{code}/seat-changes", |r| r.to(seat_changes::seat_changes_page)),
    post("/organisations/{code}/seat-changes", |r| r.to(seat_changes::apply_seat_changes)),
    get("/organisations/{code}/risk-acceptances/new", |r| r.to(risk::new_acceptance_page)),
    post("/organisations/{code}/risk-acceptances", |r| r.to(risk::record_acceptance)),
    post("/products", |r| r.to(product_forms::create_product)),
    // Before `{id}`, as for organisations.
    get("/products/new", |r| r.to(product_forms::new_product_page)),
    get("/products/{id}", |r| r.to(products::product_page)),
    get("/products/{id}/edit", |r| r.to(product_forms::edit_product_page)),
    post("/products/{id}/edit", |r| r.to(product_forms::update_product)),
    get("/agreements", |r| r.to(agreements::agreements_page)),
    post("/agreements", |r| r.to(agreement_forms::create_agreement)),
    // Before `{id}`, as for organisations.
    get("/agreements/new", |r| r.to(agreement_forms::new_agreement_page)),
    get("/agreements/{id}", |r| r.to(agreements::agreement_page)),
    get("/agreements/{id}/edit", |r| r.to(agreement_forms::edit_agreement_page)),
    post("/agreements/{id}/edit", |r| r.to(agreement_forms::update_agreement)),
    get("/users", |r| r.to(users::users_page)),
    get("/users/new", |r| r.to(users::new_user_page)),
    post("/users", |r| r.to(users::create_user)),
    get("/users/{id}", |r| r.to(users::user_page)),
    get("/users/{id}/disable", |r| r.to(users::disable_page)),
    post("/users/{id}/disable", |r| r.to(users::disable)),
    post("/users/{id}/enable", |r| r.to(users::enable)),
    post("/users/{id}/password-reset", |r| r.to(users::send_password_reset)),
    get("/audit", |r| r.to(audit::audit_page)),
    get("/advisories", |r| r.to(advisories::advisories_page)),
    post("/advisories", |r| r.to(advisory_forms::create_advisory)),
    get("/advisories/new", |r| r.to(advisory_forms::new_advisory_page)),
    get("/notifications", |r| r.to(notifications::notifications_page)),
    post("/notifications", |r| r.to(notifications::subscribe)),
    get("/notifications/{id}/deliveries", |r| r.to(notifications::deliveries_page)),
    get("/notifications/{id}/delete", |r| r.to(notifications::end_page)),
    post("/notifications/{id}/delete", |r| r.to(notifications::end)),
    get("/seat-requests", |r| r.to(seat_requests::seat_requests_page)),
    get("/seat-requests/{id}", |r| r.to(seat_requests::seat_request_page)),
    post("/seat-requests/{id}/approve", |r| r.to(seat_requests::approve)),
    post("/seat-requests/{id}/refuse", |r| r.to(seat_requests::refuse)),
    post("/seat-requests/{id}/withdraw", |r| r.to(seat_requests::withdraw)),
    get("/product-requests", |r| r.to(product_requests::product_requests_page)),
    post("/product-requests", |r| r.to(product_requests::create_request)),
    // Before `{id}`, as for organisations.
    get("/product-requests/new", |r| r.to(product_requests::new_request_page)),
    get("/product-requests/{id}", |r| r.to(product_requests::product_request_page)),
    post("/product-requests/{id}/added", |r| r.to(product_requests::mark_added)),
    post("/product-requests/{id}/decline", |r| r.to(product_requests::decline)),
    post("/product-requests/{id}/withdraw", |r| r.to(product_requests::withdraw)),
    get("/reports", |r| r.to(reports::reports_page)),
    get("/reports/unsupported", |r| r.to(reports::unsupported_page)),
    get("/reports/reconciliation", |r| r.to(reports::reconciliation_page)),
    get("/advisories/{id}", |r| r.to(advisories::advisory_page)),
    get("/advisories/{id}/edit", |r| r.to(advisory_forms::edit_advisory_page)),
    post("/advisories/{id}/edit", |r| r.to(advisory_forms::update_advisory)),
    get("/organisations/{code}/advisories/{id}", |r| r.to(advisories::response_page)),
    post("/organisations/{code}/advisories/{id}/acknowledge", |r| r.to(advisories::acknowledge)),
    post("/organisations/{code}/advisories/{id}/applicability", |r| r.to(advisories::set_applicability)),
    post("/organisations/{code}/advisories/{id}/close", |r| r.to(advisories::close)),
    get("/standards", |r| r.to(standards::standards_page)),
    get("/standards/{id}", |r| r.to(standards::standard_page)),
    post("/standards/{id}/versions", |r| r.to(standards::new_draft)),
    post("/standards/{id}/versions/{n}/requirements", |r| r.to(standards::add_requirement)),
    get("/standards/{id}/versions/{n}/requirements/edit", |r| r.to(standards::edit_requirement_page)),
    post("/standards/{id}/versions/{n}/requirements/edit", |r| r.to(standards::edit_requirement)),
    post("/standards/{id}/versions/{n}/requirements/remove", |r| r.to(standards::remove_requirement)),
    get("/standards/{id}/versions/{n}/withdraw", |r| r.to(standards::withdraw_page)),
    post("/standards/{id}/versions/{n}/withdraw", |r| r.to(standards::withdraw)),
    get("/standards/{id}/versions/{n}/publish", |r| r.to(standards::publish_page)),
    post("/standards/{id}/versions/{n}/publish", |r| r.to(standards::publish)),
    get("/standards/{id}/versions/{n}/assessments", |r| r.to(assessments::assessments_page)),
    post("/standards/{id}/versions/{n}/assessments", |r| r.to(assessments::assess)),
];

/// Registers every page of [`ROUTES`]. Called by `app::build_app`, outside the documented `/v1`
/// scope. The methods of one path share one resource: actix answers a path from the first
/// resource that matches it (405 for a method that resource lacks), never from a later one.
pub fn configure(config: &mut web::ServiceConfig) {
    config.app_data(web::FormConfig::default().limit(crate::body::MAX_BODY_BYTES));
    let mut paths: Vec<&'static str> = Vec::new();
    for route in ROUTES {
        if !paths.contains(&route.path) {
            paths.push(route.path);
        }
    }
    for path in paths {
        let mut resource = web::resource(path);
        for route in ROUTES.iter().filter(|route| route.path == path) {
            let method = match route.method {
                PageMethod::Get => web::get(),
                PageMethod::Post => web::post(),
            };
            resource = resource.route((route.to)(method));
        }
        config.service(resource);
    }
}

/// What every page shows around its content: the title, the header's account links and the
/// navigation for the user's role.
pub struct Chrome {
    pub title: String,
    pub assets: &'static str,
    pub user: Option<NavUser>,
    pub nav: Vec<NavItem>,
}

pub struct NavUser {
    pub name: String,
    pub role: &'static str,
    pub organisation: Option<String>,
    /// The CSRF token for the sign-out form in the header.
    pub csrf_token: String,
    /// Whether the page is Notifications, linked from the header's account links (beside
    /// signing out, for every role) rather than the menu, which for the national team is full.
    pub on_notifications: bool,
    /// Whether the page is "Change your password", linked from the header's account links too.
    pub on_password: bool,
    /// Seconds until the session ends unless renewed, and how long before that the page's
    /// script warns (the timeout warning in `base.html`).
    pub session_ends_in: u64,
    pub warn_before: u64,
}

pub struct NavItem {
    pub label: &'static str,
    pub href: String,
    pub current: bool,
}

impl Chrome {
    /// The chrome for a signed-in user; `current` is the path of the page, to mark its link.
    pub fn for_session(title: impl Into<String>, session: &Session, current: &str) -> Chrome {
        let user = &session.user;
        let mut nav = vec![NavItem { label: "Can we use…?", href: "/".into(), current: false }];
        if let Some(code) = user.organisation() {
            nav.push(NavItem {
                label: "Our organisation",
                href: format!("/organisations/{code}"),
                current: false,
            });
        }
        let national = matches!(user.role(), Role::Admin | Role::Auditor);
        // Every role lists organisations, as the API lets every role.
        nav.push(NavItem { label: "Organisations", href: "/organisations".into(), current: false });
        nav.push(NavItem { label: "Agreements", href: "/agreements".into(), current: false });
        nav.push(NavItem { label: "Standards", href: "/standards".into(), current: false });
        nav.push(NavItem { label: "Advisories", href: "/advisories".into(), current: false });
        if national {
            // The reports, seat requests and the audit log are one item: an eighth folds "Users"
            // into the header's "More" menu at desktop width.
            nav.push(NavItem { label: "Reports", href: "/reports".into(), current: false });
            nav.push(NavItem { label: "Users", href: "/users".into(), current: false });
        }
        for item in &mut nav {
            item.current = item.href == current;
        }
        Chrome {
            title: title.into(),
            assets: assets::prefix(),
            user: Some(NavUser {
                // Their name, as people are addressed; the email where none was given.
                name: Some(user.principal.display_name.trim())
                    .filter(|name| !name.is_empty())
                    .unwrap_or(&user.principal.email)
                    .to_owned(),
                role: role_label(user.role()),
                organisation: user.organisation().map(str::to_owned),
                csrf_token: session.csrf_token.clone(),
                on_notifications: current == "/notifications",
                on_password: current == "/account/password",
                session_ends_in: session.ends_in_seconds,
                warn_before: session.warn_seconds_before,
            }),
            nav,
        }
    }

    /// The CSRF token that the page's forms carry (empty before signing in).
    pub fn csrf_token(&self) -> &str {
        self.user.as_ref().map_or("", |user| user.csrf_token.as_str())
    }

    /// The chrome for a page seen before signing in (or an error page).
    pub fn anonymous(title: impl Into<String>) -> Chrome {
        Chrome { title: title.into(), assets: assets::prefix(), user: None, nav: Vec::new() }
    }
}

pub fn role_label(role: Role) -> &'static str {
    match role {
        Role::Admin => "National team",
        Role::Auditor => "Auditor",
        Role::Officer => "Procurement officer",
        Role::Exemplar => "Exemplar author",
    }
}

/// An HTML response with the page CSP, never cached (pages name an organisation's holdings).
/// Its forms tell this site, and no other, which page sent them (`Referrer-Policy: same-origin`,
/// where the API says `no-referrer`): a form sent after the session ended is given back on that
/// page after signing in (`kept_form`).
pub fn html(status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, PAGE_CSP))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::REFERRER_POLICY, "same-origin"))
        .body(body)
}

/// Renders a template into a page response.
pub fn render(status: StatusCode, template: &impl Template) -> WebResult<HttpResponse> {
    let body = template.render().map_err(|e| WebError::Internal(format!("template: {e}")))?;
    Ok(html(status, body))
}

/// A redirect after a form is handled (303: the browser follows with GET).
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header((header::LOCATION, location)).finish()
}

/// A local path to return to, from a form or query: anything else (another host, a scheme,
/// `//host`, backslashes) becomes `/`, so a link can never send someone off the site.
pub fn local_path(candidate: Option<&str>) -> String {
    match candidate {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.contains('\\')
                && !path.chars().any(char::is_control) =>
        {
            path.to_owned()
        }
        _ => "/".to_owned(),
    }
}

/// Percent-encodes a query parameter value.
pub fn query_value(value: &str) -> String {
    serde_urlencoded::to_string([("v", value)]).map(|s| s[2..].to_owned()).unwrap_or_default()
}

/// Why a page cannot be shown. Each becomes an HTML page (or, for a missing session, a
/// redirect to the sign-in page), never the API's problem JSON.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("sign in to continue")]
    SignIn { next: String },
    /// A form sent after the session ended, kept while its author signs in again (`kept_form`).
    #[error("sign in to send the kept form")]
    SignInToSend { next: String, kept: kept_form::KeptCookie },
    /// A form sent after the session ended, too long to keep (`kept_form::MAX_SEALED_BYTES`).
    #[error("the form is too long to keep")]
    TooLongToKeep { next: String },
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("page not found")]
    NotFound,
    /// A file larger than a page may send.
    #[error("the file is too large")]
    TooLarge,
    #[error("too many attempts")]
    TooManyRequests { retry_after_seconds: u64 },
    #[error("internal error: {0}")]
    Internal(String),
}

pub type WebResult<T> = Result<T, WebError>;

impl From<ApiError> for WebError {
    fn from(error: ApiError) -> WebError {
        match error {
            ApiError::Unauthorized => WebError::SignIn { next: "/".into() },
            ApiError::Forbidden(detail) => WebError::Forbidden(detail),
            ApiError::NotFound(_) => WebError::NotFound,
            ApiError::PayloadTooLarge => WebError::TooLarge,
            ApiError::TooManyRequests { retry_after_seconds } => {
                WebError::TooManyRequests { retry_after_seconds }
            }
            ApiError::BadRequest(detail) | ApiError::Unprocessable(detail) | ApiError::Conflict(detail) => {
                WebError::BadRequest(detail)
            }
            other => WebError::Internal(other.to_string()),
        }
    }
}

/// A refusal the person can act on: the form is shown again with its message, under the status the
/// API gives the same refusal. Every other error stops the page (`WebError`). The one place pages
/// tell the two apart, so none matches `ApiError` variants by hand.
pub struct Refusal {
    pub detail: String,
    pub status: StatusCode,
}

impl Refusal {
    pub fn of(error: ApiError) -> Result<Refusal, WebError> {
        let (detail, status) = match error {
            ApiError::Unprocessable(detail) => (detail, StatusCode::UNPROCESSABLE_ENTITY),
            ApiError::Conflict(detail) => (detail, StatusCode::CONFLICT),
            ApiError::SeatsExhausted { remaining } => (
                format!("Only {} seats are left: claim {} or fewer", count(remaining), count(remaining)),
                StatusCode::CONFLICT,
            ),
            other => return Err(other.into()),
        };
        Ok(Refusal { detail, status })
    }
}

impl From<db::DbError> for WebError {
    fn from(error: db::DbError) -> WebError {
        ApiError::from(error).into()
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    chrome: Chrome,
    heading: String,
    message: String,
    /// A sign-in link to offer instead of the start page, with the page to come back to.
    sign_in: Option<String>,
}

impl ResponseError for WebError {
    fn status_code(&self) -> StatusCode {
        match self {
            WebError::SignIn { .. } | WebError::SignInToSend { .. } => StatusCode::SEE_OTHER,
            WebError::TooLongToKeep { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::Forbidden(_) => StatusCode::FORBIDDEN,
            WebError::NotFound => StatusCode::NOT_FOUND,
            WebError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            WebError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            WebError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut sign_in = None;
        let (heading, message) = match self {
            WebError::SignIn { next } => {
                let mut response = see_other(&format!("/login?next={}", query_value(next)));
                // Whatever session cookie came with the request no longer works: forget it.
                let _ = response.add_removal_cookie(&session::session_cookie_template());
                return response;
            }
            WebError::SignInToSend { next, kept } => {
                let mut response = see_other(&format!("/login?next={}", query_value(next)));
                let _ = response.add_removal_cookie(&session::session_cookie_template());
                let _ = response.add_cookie(&kept.0);
                return response;
            }
            WebError::TooLongToKeep { next } => {
                sign_in = Some(format!("/login?next={}", query_value(next)));
                (
                    "Your form could not be kept",
                    "You were signed out before your form was sent, and what you typed is too long to keep while \
                     you sign in again. Go back to copy what you typed, then sign in again and send the form."
                        .to_owned(),
                )
            }
            WebError::BadRequest(detail) => ("There is a problem with the request", detail.clone()),
            WebError::Forbidden(detail) => ("You cannot do this", detail.clone()),
            WebError::NotFound => (
                "Page not found",
                "If you typed the web address, check it is correct. If you pasted the web address, check you \
                 copied the entire address."
                    .to_owned(),
            ),
            WebError::TooLarge => (
                "The file is too large",
                format!(
                    "A file sent from these pages may be at most {} MB: split it into smaller files (an \
                     estate export can also be imported with catalogue estate import).",
                    crate::body::MAX_ODS_FILE_BYTES / (1024 * 1024)
                ),
            ),
            WebError::TooManyRequests { retry_after_seconds } => (
                "Too many attempts",
                format!("Wait {} minutes, then try again.", retry_after_seconds.div_ceil(60)),
            ),
            WebError::Internal(cause) => {
                tracing::error!(%cause, "internal error on a page");
                ("Sorry, there is a problem with the service", "Try again later.".to_owned())
            }
        };
        let page =
            ErrorPage { chrome: Chrome::anonymous(heading), heading: heading.to_owned(), message, sign_in };
        let body = page.render().unwrap_or_else(|_| heading.to_owned());
        let mut response = html(self.status_code(), body);
        if let WebError::TooLongToKeep { .. } = self {
            let _ = response.add_removal_cookie(&session::session_cookie_template());
        }
        if let WebError::TooManyRequests { retry_after_seconds } = self
            && let Ok(value) = HeaderValue::from_str(&retry_after_seconds.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

/// A form that sends nothing but its CSRF token: a confirmation, or a button like "Enable".
#[derive(serde::Deserialize)]
pub struct NoFields {}

/// One choice of a list's filter (the `select` component): its value, its label and whether it
/// is the one chosen.
pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

impl Choice {
    /// The choice of `value`, shown as `label`, chosen when it is what was `typed`.
    pub fn new(value: &str, label: impl Into<String>, typed: &str) -> Choice {
        Choice { value: value.to_owned(), label: label.into(), selected: value == typed }
    }
}

/// A column heading that orders a list (the `sort_heading` component): a link to the list in its
/// order, or, for the order shown, the heading marked as sorting the table.
pub struct SortHeading {
    pub label: &'static str,
    pub href: String,
    pub current: bool,
    /// `ascending` or `descending`, as `aria-sort` says.
    pub direction: &'static str,
}

impl SortHeading {
    /// A heading that orders the list A to Z (or oldest first).
    pub fn ascending(label: &'static str, href: String, current: bool) -> SortHeading {
        SortHeading { label, href, current, direction: "ascending" }
    }

    /// A heading that orders the list with the latest first.
    pub fn descending(label: &'static str, href: String, current: bool) -> SortHeading {
        SortHeading { label, href, current, direction: "descending" }
    }
}

/// The order a list kept in the order records were added is asked for in (`sort`), or
/// `default`; one not offered is named against the field.
pub fn added_order(typed: &str, default: AddedOrder, errors: &mut Vec<FieldError>) -> AddedOrder {
    match typed.trim() {
        "" => default,
        typed => AddedOrder::parse(typed).unwrap_or_else(|| {
            errors.push(FieldError::new("sort", "Choose an order from the list"));
            default
        }),
    }
}

/// The choices of a list's sort select, with what each order is called on that list.
pub fn added_order_choices(order: AddedOrder, oldest: &str, newest: &str) -> Vec<Choice> {
    [(AddedOrder::OldestFirst, oldest), (AddedOrder::NewestFirst, newest)]
        .into_iter()
        .map(|(by, label)| Choice::new(by.as_str(), label, order.as_str()))
        .collect()
}

/// One problem with what was typed into a form, and the id of the field to correct: the error
/// summary lists every one, linked to its field, and the field shows its message beside it.
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &'static str, message: &str) -> FieldError {
        FieldError { field, message: message.to_owned() }
    }
}

/// What the error summary links to when a form's record changed since the form was shown: the
/// link to the record as it is now (the `changed_meanwhile` macro of `templates/components.html`).
pub const CHANGED_FIELD: &str = "changed-meanwhile";

/// The problem of a change refused because its record (`what`: "product") changed since the form
/// was shown (`Precondition::Revision`): nothing was written, and sending the form again, which
/// now carries the new revision, replaces the other change knowingly.
pub fn changed_meanwhile(what: &str) -> FieldError {
    let message = format!(
        "Someone changed this {what} since you opened it, so your changes have not been saved. Check the \
         {what} as it is now: sending this form again will replace it with what you typed"
    );
    FieldError { field: CHANGED_FIELD, message }
}

/// The message for `field`, when it has one.
pub fn error_for<'a>(errors: &'a [FieldError], field: &str) -> Option<&'a str> {
    errors.iter().find(|error| error.field == field).map(|error| error.message.as_str())
}

/// The text with its first letter a capital: a refusal's message as a sentence on a page (the data
/// layer's and the API's messages begin in lower case, "a user with this email already exists").
pub fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A form's free text, trimmed; `None` when nothing was typed.
pub fn optional_text(text: &str) -> Option<String> {
    Some(text.trim()).filter(|t| !t.is_empty()).map(str::to_owned)
}

pub use crate::dates::today;

/// The hint beside a new password: the service's rule in a few words, then `then`.
pub fn password_hint(then: &str) -> String {
    let least = crate::auth::password::MIN_PASSWORD_CHARS;
    format!("At least {least} characters; a few unrelated words make a strong one. {then}")
}

/// Formats a date as people in the NHS write it: 14 October 2025.
pub fn long_date(date: chrono::NaiveDate) -> String {
    date.format("%-d %B %Y").to_string()
}

/// A moment as people in the NHS write it: "12 May 2017 at 18:00 UTC".
pub fn date_time(at: chrono::NaiveDateTime) -> String {
    format!("{} at {} UTC", long_date(at.date()), at.format("%H:%M"))
}

/// Formats a count with thousands separators: 1,200,000.
pub fn count(value: i64) -> String {
    let digits = value.unsigned_abs().to_string();
    let mut grouped = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    if value < 0 { format!("-{grouped}") } else { grouped }
}

/// A count and what it counts: "1 holding", "1,200 holdings".
pub fn counted(n: i64, one: &str, many: &str) -> String {
    format!("{} {}", count(n), if n == 1 { one } else { many })
}

/// An organisation as people know it, with its code beside the name ("Leeds Teaching Hospitals NHS
/// Trust (RR8)"); the code alone when `names` (from `db::organisations::names`) lacks it.
pub fn named(code: &str, names: &std::collections::BTreeMap<String, String>) -> String {
    match names.get(code) {
        Some(name) => format!("{name} ({code})"),
        None => code.to_owned(),
    }
}

/// A whole number as people type it: `1200`, `1,200` or ` 1 200 ` (thousands grouped by commas
/// or spaces). Nothing for anything else, a sign or a fraction included.
pub fn whole_number(text: &str) -> Option<i64> {
    let digits: String = text.trim().chars().filter(|c| *c != ',' && *c != ' ').collect();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_returned_to() {
        assert_eq!(local_path(Some("/organisations/RR8")), "/organisations/RR8");
        assert_eq!(local_path(Some("/?q=Windows%2010")), "/?q=Windows%2010");
        for bad in ["https://evil.example", "//evil.example", "/\\evil.example", "evil", "/a\nb"] {
            assert_eq!(local_path(Some(bad)), "/", "{bad}");
        }
        assert_eq!(local_path(None), "/");
    }

    #[test]
    fn counts_and_dates_read_naturally() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1_200_000), "1,200,000");
        assert_eq!(count(-4500), "-4,500");
        let date = chrono::NaiveDate::from_ymd_opt(2025, 10, 14).unwrap_or_default();
        assert_eq!(long_date(date), "14 October 2025");
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(query_value("Windows 10 & more"), "Windows+10+%26+more");
    }
}
