use actix_web::{HttpResponse, get, post, web};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::auth::{CurrentUser, password, throttle};
use crate::body::Json;
use crate::error::{ApiError, ApiResult};
use crate::openapi::{PasswordChangeErrors, ReadErrors, WriteErrors};
use crate::state::AppState;
use db::users::User;

/// The signed-in user.
#[utoipa::path(
    tag = "auth",
    operation_id = "get_me",
    security(("bearer" = [])),
    responses((status = 200, body = User), ReadErrors)
)]
#[get("/me")]
pub async fn get_me(state: web::Data<AppState>, user: CurrentUser) -> ApiResult<web::Json<User>> {
    let id = user.id();
    Ok(web::Json(state.read(move |conn| db::users::get(conn, id)).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    #[schema(format = Password)]
    pub current_password: String,
    /// 12 to 256 characters; long passphrases are welcome and there are no composition rules.
    /// Refused with 422 (NCSC password guidance, OWASP ASVS 2.1): common and breached passwords,
    /// dictionary words and names, keyboard patterns, repeats and sequences (`aaaaaaaaaaaa`,
    /// `123456789012`, `Password1234`), and passwords containing the user's email, its name part
    /// or the service's name.
    #[schema(format = Password)]
    #[schema(min_length = 12, max_length = 256)]
    pub new_password: String,
}

/// Change the signed-in user's password. Every token issued before stops working.
#[utoipa::path(
    tag = "auth",
    operation_id = "change_my_password",
    security(("bearer" = [])),
    request_body = PasswordChange,
    responses((status = 204, description = "Changed; sign in again"), WriteErrors, PasswordChangeErrors)
)]
#[post("/me/password")]
pub async fn change_my_password(
    state: web::Data<AppState>,
    user: CurrentUser,
    body: Json<PasswordChange>,
) -> ApiResult<HttpResponse> {
    let PasswordChange { current_password, new_password } = body.into_inner();
    let id = user.id();
    let email = state.read(move |conn| db::users::get(conn, id)).await?.email;
    if let Some(weakness) = password::weakness(&new_password, &email) {
        return Err(ApiError::Unprocessable(weakness));
    }
    // Guesses at the current password are counted before it is checked, like sign-ins: a stolen
    // session must not become a way to test passwords.
    let (stored, attempt) = state
        .run(move |db| {
            let attempt = throttle::password_change_attempt(db, id)?;
            Ok((db.read(|conn| db::users::password_hash(conn, id))?, attempt))
        })
        .await?;
    let attempt = attempt.map_err(|retry_after_seconds| ApiError::TooManyRequests { retry_after_seconds })?;
    let new_hash = state
        .run_password_work(move || {
            if password::verify(&current_password, &stored) {
                password::hash(&new_password).map(Some)
            } else {
                Ok(None)
            }
        })
        .await?
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .ok_or_else(|| ApiError::Forbidden("the current password is not correct".into()))?;
    state.run(move |db| attempt.succeeded(db)).await?;
    let actor = user.actor();
    state.run(move |db| db::users::set_password(db, &actor, id, &new_hash)).await?;
    Ok(HttpResponse::NoContent().finish())
}
