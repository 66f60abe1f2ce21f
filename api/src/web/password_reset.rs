//! "Forgotten your password?": the pages over `auth::password_reset`, for people who are not
//! signed in.
//!
//! `/password-reset` asks for an email address and always gives the same answer, whether or not
//! an account has it, is disabled, was sent a link a minute ago, or the email fails: nothing
//! here tells anyone which addresses have accounts. When the service has no SMTP server or no
//! public address configured, it says that reset by email is not available and to ask the
//! national team (the same for every address).
//!
//! `/password-reset/{token}` is the link in the email: the new-password form, with the same
//! problems as "Change your password" (`account::new_password_problems`). A link that does not
//! work (unknown, expired, spent, replaced, or its account disabled) gets one plain page, 404,
//! that does not say which, offering a new link. These pages say `Referrer-Policy: no-referrer`,
//! so that the token never leaves in a `Referer`, and the request log shows their path without
//! it ([`loggable_target`]). Their form needs no CSRF token: the link's token is a secret no
//! other site knows, and a form sent without it changes nothing.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use tracing_actix_web::RequestId;

use crate::auth::password_reset::{self, Reset};
use crate::notify::password_reset::PATH;
use crate::state::AppState;
use crate::web::account::new_password_problems;
use crate::web::session::{signed_out_form, signed_out_form_accepted};
use crate::web::{Chrome, FieldError, WebError, WebResult, error_for, password_hint, render, see_other};

/// The cookie the request form's CSRF token is bound to, and the token's purpose.
const REQUEST_COOKIE: &str = "catalogue_password_reset";
const PURPOSE: &str = "password-reset";

/// The answer to every request for a link.
pub fn sent_message() -> String {
    format!(
        "If an account exists for that address, we have sent a link to it. It works for {} minutes.",
        password_reset::lifetime_minutes()
    )
}

/// A request's path as the request log may show it: a reset link's token replaced by `{token}`
/// (and any query left out), so that the log holds no working link.
pub fn loggable_target(path_and_query: &str) -> std::borrow::Cow<'_, str> {
    let path = path_and_query.split('?').next().unwrap_or_default();
    match path.strip_prefix(PATH).and_then(|rest| rest.strip_prefix('/')) {
        Some(token) if !token.is_empty() => format!("{PATH}/{{token}}").into(),
        _ => path_and_query.into(),
    }
}

#[derive(Template)]
#[template(path = "password_reset_request.html")]
struct RequestPage {
    chrome: Chrome,
    csrf_token: String,
    email: String,
    errors: Vec<FieldError>,
    /// Reset by email is off in this service.
    unavailable: bool,
    /// The answer after the form was sent.
    sent: Option<String>,
}

impl RequestPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        error_for(&self.errors, field)
    }

    fn email_hint(&self) -> String {
        format!("The link works for {} minutes, once.", password_reset::lifetime_minutes())
    }

    fn resend_minutes(&self) -> i64 {
        db::password_resets::RESEND_AFTER.num_minutes()
    }
}

#[derive(Deserialize)]
pub struct RequestQuery {
    sent: Option<String>,
}

/// The request page. `csrf_token` is the token of a form sent back with its problems, which keeps
/// working (its cookie is kept); `None` gives the page a new token and cookie.
fn render_request(
    request: &HttpRequest,
    state: &AppState,
    email: String,
    errors: Vec<FieldError>,
    sent: bool,
    csrf_token: Option<String>,
) -> WebResult<HttpResponse> {
    let unavailable = state.password_reset_mail.is_none();
    let title = match (unavailable, sent, errors.is_empty()) {
        (true, _, _) => "Reset by email is not available",
        (false, true, _) => "Check your email",
        (false, false, true) => "Reset your password",
        (false, false, false) => "Error: Reset your password",
    };
    let (csrf_token, bound) = match csrf_token {
        Some(token) => (token, None),
        None => {
            let (token, bound) = signed_out_form(request, &state.auth, REQUEST_COOKIE, PURPOSE);
            (token, Some(bound))
        }
    };
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let page = RequestPage {
        chrome: Chrome::anonymous(title),
        csrf_token,
        email,
        errors,
        unavailable,
        sent: sent.then(sent_message),
    };
    let mut response = render(status, &page)?;
    if let (false, false, Some(bound)) = (unavailable, sent, bound) {
        response.add_cookie(&bound).map_err(|e| WebError::Internal(e.to_string()))?;
    }
    Ok(response)
}

/// The form asking for an email address; with `?sent=1`, the answer.
pub async fn request_page(
    request: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<RequestQuery>,
) -> WebResult<HttpResponse> {
    render_request(&request, &state, String::new(), Vec::new(), query.sent.is_some(), None)
}

#[derive(Deserialize)]
pub struct RequestForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    csrf_token: String,
}

/// Asks for a link; then the same answer for every address (303 to `?sent=1`).
pub async fn request_link(
    request: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> WebResult<HttpResponse> {
    let form: RequestForm = serde_urlencoded::from_bytes(&body)
        .map_err(|_| WebError::BadRequest("the form could not be read".into()))?;
    signed_out_form_accepted(&request, &state.auth, REQUEST_COOKIE, PURPOSE, &form.csrf_token)?;
    if state.password_reset_mail.is_none() {
        return Ok(see_other(PATH));
    }
    let email = form.email.trim().to_owned();
    let problem = if email.is_empty() {
        Some("Enter your email address")
    } else if !db::users::is_email_address(&db::users::normalise_email(&email)) {
        Some("Enter an email address in the correct format, like name@example.nhs.uk")
    } else {
        None
    };
    if let Some(message) = problem {
        let errors = vec![FieldError::new("email", message)];
        return render_request(&request, &state, email, errors, false, Some(form.csrf_token));
    }
    let actor = db::Actor {
        user_id: None,
        label: "anonymous:password-reset-request".into(),
        request_id: request_id(&request),
        acting_icb: None,
    };
    password_reset::request(&state, actor, email).await?;
    let mut response = see_other(&format!("{PATH}?sent=1"));
    let _ =
        response.add_removal_cookie(&actix_web::cookie::Cookie::build(REQUEST_COOKIE, "").path("/").finish());
    Ok(response)
}

fn request_id(request: &HttpRequest) -> Option<String> {
    request.extensions().get::<RequestId>().map(|id| id.to_string())
}

#[derive(Template)]
#[template(path = "password_reset_new.html")]
struct NewPasswordPage {
    chrome: Chrome,
    email: String,
    errors: Vec<FieldError>,
}

impl NewPasswordPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        error_for(&self.errors, field)
    }

    fn password_hint(&self) -> String {
        password_hint("Not a common password, and not your email address or the service's name.")
    }
}

#[derive(Template)]
#[template(path = "password_reset_link.html")]
struct LinkPage {
    chrome: Chrome,
    unavailable: bool,
}

impl LinkPage {
    fn minutes(&self) -> i64 {
        password_reset::lifetime_minutes()
    }
}

/// No `Referer` with the token leaves these pages, not even to this site.
fn without_referrer(mut response: HttpResponse) -> HttpResponse {
    response.headers_mut().insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

/// The link does not work; the page says nothing of why.
fn link_does_not_work(state: &AppState) -> WebResult<HttpResponse> {
    let page = LinkPage {
        chrome: Chrome::anonymous("This link no longer works"),
        unavailable: state.password_reset_mail.is_none(),
    };
    Ok(without_referrer(render(StatusCode::NOT_FOUND, &page)?))
}

fn render_new_password(email: String, errors: Vec<FieldError>) -> WebResult<HttpResponse> {
    let (title, status) = if errors.is_empty() {
        ("Choose a new password", StatusCode::OK)
    } else {
        ("Error: Choose a new password", StatusCode::UNPROCESSABLE_ENTITY)
    };
    let page = NewPasswordPage { chrome: Chrome::anonymous(title), email, errors };
    Ok(without_referrer(render(status, &page)?))
}

/// The link in the email: the new-password form, or the page saying the link does not work.
pub async fn new_password_page(
    state: web::Data<AppState>,
    token: web::Path<String>,
) -> WebResult<HttpResponse> {
    match password_reset::recipient(&state, token.into_inner()).await? {
        Some(found) => render_new_password(found.email, Vec::new()),
        None => link_does_not_work(&state),
    }
}

#[derive(Deserialize)]
pub struct NewPasswordForm {
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    confirm_password: String,
}

/// Sets the new password; then to sign in, with every session of the account ended.
pub async fn set_new_password(
    request: HttpRequest,
    state: web::Data<AppState>,
    token: web::Path<String>,
    body: web::Bytes,
) -> WebResult<HttpResponse> {
    let token = token.into_inner();
    let form: NewPasswordForm = serde_urlencoded::from_bytes(&body)
        .map_err(|_| WebError::BadRequest("the form could not be read".into()))?;
    let Some(found) = password_reset::recipient(&state, token.clone()).await? else {
        return link_does_not_work(&state);
    };
    let errors = new_password_problems(&form.new_password, &form.confirm_password, &found.email);
    if !errors.is_empty() {
        return render_new_password(found.email, errors);
    }
    match password_reset::reset(&state, request_id(&request), token, form.new_password).await? {
        Reset::Done => Ok(without_referrer(see_other("/login?password_reset=1"))),
        Reset::LinkDoesNotWork => link_does_not_work(&state),
        Reset::Weak(weakness) => render_new_password(
            found.email,
            vec![FieldError::new("new_password", &crate::web::capitalised(&weakness))],
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_never_shows_a_links_token() {
        assert_eq!(loggable_target("/password-reset/abcDEF-_123"), "/password-reset/{token}");
        assert_eq!(loggable_target("/password-reset/abc?x=1"), "/password-reset/{token}");
        assert_eq!(loggable_target("/password-reset/abc/more"), "/password-reset/{token}");
        assert_eq!(loggable_target("/password-reset?sent=1"), "/password-reset?sent=1");
        assert_eq!(loggable_target("/password-reset"), "/password-reset");
        assert_eq!(loggable_target("/password-resetx/abc"), "/password-resetx/abc");
        assert_eq!(loggable_target("/users/1?notice=x"), "/users/1?notice=x");
    }
}
