//! "Change your password", for every signed-in user: the page over `auth::accounts::change_password`,
//! the function `POST /v1/me/password` calls, so the password rule, the throttle on guesses at the
//! current password and the effect are the API's. Changing the password ends every token of the
//! account, this session's included: the page then removes the session cookie and sends the
//! person to sign in with the new password, which the sign-in page says. A fresh session handed
//! out here instead would be one more token that outlived the change, and signing in proves the
//! new password is the one they meant.
//!
//! The page adds only what a form needs and the API has no use for: the current password typed
//! at all, and the new one typed twice the same. Passwords are never shown back, and never kept
//! while signing in again (`kept_form` leaves out every field named like a password).

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::auth::{accounts, password};
use crate::error::ApiError;
use crate::state::AppState;
use crate::web::{
    Chrome, FieldError, Session, Submitted, WebResult, capitalised, error_for, render, see_other, session,
};

/// What the form sends; nothing of it is shown back.
#[derive(Deserialize, Default)]
pub struct PasswordForm {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    confirm_password: String,
}

#[derive(Template)]
#[template(path = "change_password.html")]
struct PasswordPage {
    chrome: Chrome,
    errors: Vec<FieldError>,
}

impl PasswordPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        error_for(&self.errors, field)
    }

    fn password_hint(&self) -> String {
        crate::web::password_hint("Not a common password, and not your email address or the service's name.")
    }
}

const PATH: &str = "/account/password";

fn render_form(session: &Session, errors: Vec<FieldError>, status: StatusCode) -> WebResult<HttpResponse> {
    let title = if errors.is_empty() { "Change your password" } else { "Error: Change your password" };
    render(status, &PasswordPage { chrome: Chrome::for_session(title, session, PATH), errors })
}

/// The form.
pub async fn password_page(session: Session) -> WebResult<HttpResponse> {
    render_form(&session, Vec::new(), StatusCode::OK)
}

/// Every problem with what was typed, each against its field, before anything is counted or
/// checked: the new password by the API's own rule (`password::weakness`, which
/// `accounts::change_password` applies again).
fn problems(form: &PasswordForm, email: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if form.current_password.is_empty() {
        errors.push(FieldError::new("current_password", "Enter your current password"));
    }
    errors.extend(new_password_problems(&form.new_password, &form.confirm_password, email));
    errors
}

/// Every problem with a new password typed twice for the account `email`, each against its field
/// (`new_password`, `confirm_password`): the password rule is the API's (`password::weakness`).
/// The one statement of what a new password needs on a page, here and when a forgotten one is
/// reset (`web::password_reset`).
pub fn new_password_problems(new_password: &str, confirm_password: &str, email: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if new_password.is_empty() {
        errors.push(FieldError::new("new_password", "Enter a new password"));
    } else if let Some(weakness) = password::weakness(new_password, email) {
        errors.push(FieldError::new("new_password", &capitalised(&weakness)));
    }
    if confirm_password.is_empty() {
        errors.push(FieldError::new("confirm_password", "Enter your new password again"));
    } else if !new_password.is_empty() && confirm_password != new_password {
        errors.push(FieldError::new(
            "confirm_password",
            "The new passwords do not match: type the same one twice",
        ));
    }
    errors
}

/// Changes the password through `accounts::change_password`; then signs the person out (the
/// change has ended the session's token already) and sends them to sign in again.
pub async fn change_password(
    state: web::Data<AppState>,
    submitted: Submitted<PasswordForm>,
) -> WebResult<HttpResponse> {
    let (session, form) = (submitted.session, submitted.form);
    let errors = problems(&form, &session.user.principal.email);
    if !errors.is_empty() {
        return render_form(&session, errors, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let (actor, id) = (session.user.actor(), session.user.id());
    let outcome =
        accounts::change_password(&state, actor, id, form.current_password, form.new_password).await;
    let (field, message, status, retry_after) = match outcome {
        Ok(()) => {
            let mut response = see_other("/login?password_changed=1");
            let _ = response.add_removal_cookie(&session::session_cookie_template());
            return Ok(response);
        }
        Err(ApiError::Forbidden(_)) => (
            "current_password",
            "Your current password is not correct".to_owned(),
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
        ),
        Err(ApiError::TooManyRequests { retry_after_seconds }) => (
            "current_password",
            format!(
                "You have entered a wrong current password too many times. Wait {} minutes, then try again",
                retry_after_seconds.div_ceil(60)
            ),
            StatusCode::TOO_MANY_REQUESTS,
            Some(retry_after_seconds),
        ),
        Err(ApiError::Unprocessable(weakness)) => {
            ("new_password", capitalised(&weakness), StatusCode::UNPROCESSABLE_ENTITY, None)
        }
        Err(other) => return Err(other.into()),
    };
    let mut response = render_form(&session, vec![FieldError { field, message }], status)?;
    if let Some(value) = retry_after.and_then(|seconds| HeaderValue::from_str(&seconds.to_string()).ok()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    Ok(response)
}
