//! Web pages for people, server-rendered from the same binary: views over the same `db`
//! operations the API handlers call, with the same authorisation (the `CurrentUser` methods and
//! role sets). No business rule lives here or in a template: each handler extracts, authorises,
//! calls the data layer and renders. The pages are not part of the OpenAPI document.
//!
//! One module per page group; the templates are in `api/templates/`, the NHS.UK frontend files
//! that the binary carries in `api/assets/`.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError, web};
use askama::Template;
use db::users::Role;

use crate::error::ApiError;

pub mod advisories;
pub mod agreements;
pub mod assessments;
pub mod assets;
pub mod chart;
pub mod organisations;
pub mod products;
pub mod purchases;
pub mod reports;
pub mod risk;
pub mod session;
pub mod standards;
pub mod start;
pub mod users;

pub use session::{Session, Submitted};

/// The policy for pages: their own scripts, styles and images only; no inline script or style,
/// no framing, and forms post only here.
pub const PAGE_CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
                            frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

/// Registers every page. Called by `app::build_app`, outside the documented `/v1` scope.
pub fn configure(config: &mut web::ServiceConfig) {
    config
        .app_data(web::FormConfig::default().limit(crate::app::MAX_BODY_BYTES))
        .service(assets::service())
        .service(web::resource("/").route(web::get().to(start::start_page)))
        .service(
            web::resource("/login")
                .route(web::get().to(session::login_page))
                .route(web::post().to(session::login)),
        )
        .service(
            web::resource("/logout")
                .route(web::get().to(session::logout_page))
                .route(web::post().to(session::logout)),
        )
        .service(web::resource("/entitlements/{id}/claim").route(web::post().to(start::claim)))
        .service(web::resource("/allocations/{id}/release").route(web::post().to(start::release)))
        .service(
            web::resource("/organisations/{code}").route(web::get().to(organisations::organisation_page)),
        )
        .service(
            web::resource("/organisations/{code}/purchases/new")
                .route(web::get().to(purchases::new_purchase_page)),
        )
        .service(
            web::resource("/organisations/{code}/purchases")
                .route(web::post().to(purchases::record_purchase)),
        )
        .service(
            web::resource("/organisations/{code}/risk-acceptances/new")
                .route(web::get().to(risk::new_acceptance_page)),
        )
        .service(
            web::resource("/organisations/{code}/risk-acceptances")
                .route(web::post().to(risk::record_acceptance)),
        )
        .service(web::resource("/products/{id}").route(web::get().to(products::product_page)))
        .service(web::resource("/agreements").route(web::get().to(agreements::agreements_page)))
        .service(web::resource("/agreements/{id}").route(web::get().to(agreements::agreement_page)))
        .service(web::resource("/users").route(web::get().to(users::users_page)))
        .service(web::resource("/advisories").route(web::get().to(advisories::advisories_page)))
        .service(web::resource("/reports/unsupported").route(web::get().to(reports::unsupported_page)))
        .service(web::resource("/advisories/{id}").route(web::get().to(advisories::advisory_page)))
        .service(
            web::resource("/organisations/{code}/advisories/{id}")
                .route(web::get().to(advisories::response_page)),
        )
        .service(
            web::resource("/organisations/{code}/advisories/{id}/acknowledge")
                .route(web::post().to(advisories::acknowledge)),
        )
        .service(
            web::resource("/organisations/{code}/advisories/{id}/applicability")
                .route(web::post().to(advisories::set_applicability)),
        )
        .service(
            web::resource("/organisations/{code}/advisories/{id}/close")
                .route(web::post().to(advisories::close)),
        )
        .service(web::resource("/standards").route(web::get().to(standards::standards_page)))
        .service(web::resource("/standards/{id}").route(web::get().to(standards::standard_page)))
        .service(web::resource("/standards/{id}/versions").route(web::post().to(standards::new_draft)))
        .service(
            web::resource("/standards/{id}/versions/{n}/requirements")
                .route(web::post().to(standards::add_requirement)),
        )
        .service(
            web::resource("/standards/{id}/versions/{n}/requirements/edit")
                .route(web::get().to(standards::edit_requirement_page))
                .route(web::post().to(standards::edit_requirement)),
        )
        .service(
            web::resource("/standards/{id}/versions/{n}/requirements/remove")
                .route(web::post().to(standards::remove_requirement)),
        )
        .service(
            web::resource("/standards/{id}/versions/{n}/withdraw")
                .route(web::get().to(standards::withdraw_page))
                .route(web::post().to(standards::withdraw)),
        )
        .service(
            web::resource("/standards/{id}/versions/{n}/publish")
                .route(web::get().to(standards::publish_page))
                .route(web::post().to(standards::publish)),
        )
        .service(
            web::resource("/standards/{id}/versions/{n}/assessments")
                .route(web::get().to(assessments::assessments_page))
                .route(web::post().to(assessments::assess)),
        );
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
        nav.push(NavItem { label: "Agreements", href: "/agreements".into(), current: false });
        nav.push(NavItem { label: "Standards", href: "/standards".into(), current: false });
        nav.push(NavItem { label: "Advisories", href: "/advisories".into(), current: false });
        if matches!(user.role(), Role::Admin | Role::Auditor) {
            nav.push(NavItem {
                label: "Unsupported software",
                href: "/reports/unsupported".into(),
                current: false,
            });
            nav.push(NavItem { label: "Users", href: "/users".into(), current: false });
        }
        for item in &mut nav {
            item.current = item.href == current;
        }
        Chrome {
            title: title.into(),
            assets: assets::prefix(),
            user: Some(NavUser {
                name: user.principal.email.clone(),
                role: role_label(user.role()),
                organisation: user.organisation().map(str::to_owned),
                csrf_token: session.csrf_token.clone(),
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
pub fn html(status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, PAGE_CSP))
        .insert_header((header::CACHE_CONTROL, "no-store"))
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
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("page not found")]
    NotFound,
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
}

impl ResponseError for WebError {
    fn status_code(&self) -> StatusCode {
        match self {
            WebError::SignIn { .. } => StatusCode::SEE_OTHER,
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::Forbidden(_) => StatusCode::FORBIDDEN,
            WebError::NotFound => StatusCode::NOT_FOUND,
            WebError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            WebError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let (heading, message) = match self {
            WebError::SignIn { next } => {
                let mut response = see_other(&format!("/login?next={}", query_value(next)));
                // Whatever session cookie came with the request no longer works: forget it.
                let _ = response.add_removal_cookie(&session::session_cookie_template());
                return response;
            }
            WebError::BadRequest(detail) => ("There is a problem with the request", detail.clone()),
            WebError::Forbidden(detail) => ("You cannot do this", detail.clone()),
            WebError::NotFound => (
                "Page not found",
                "If you typed the web address, check it is correct. If you pasted the web address, check you \
                 copied the entire address."
                    .to_owned(),
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
        let page = ErrorPage { chrome: Chrome::anonymous(heading), heading: heading.to_owned(), message };
        let body = page.render().unwrap_or_else(|_| heading.to_owned());
        let mut response = html(self.status_code(), body);
        if let WebError::TooManyRequests { retry_after_seconds } = self
            && let Ok(value) = HeaderValue::from_str(&retry_after_seconds.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

/// A form's free text, trimmed; `None` when nothing was typed.
pub fn optional_text(text: &str) -> Option<String> {
    Some(text.trim()).filter(|t| !t.is_empty()).map(str::to_owned)
}

/// Today's date (UTC), as the API handlers use.
pub fn today() -> chrono::NaiveDate {
    crate::routes::today()
}

/// Formats a date as people in the NHS write it: 14 October 2025.
pub fn long_date(date: chrono::NaiveDate) -> String {
    date.format("%-d %B %Y").to_string()
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
