//! Adding an account, and changing one's own password: the one place the password rule is
//! applied and the password hashed before `db::users::create` or `db::users::set_password`, for
//! `POST /v1/users` and the new-user page, and `POST /v1/me/password` and the "Change your
//! password" page, alike.

use db::Actor;
use db::users::{NewUser, Role, User};

use crate::auth::{password, throttle};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// What an admin asks for when adding an account.
pub struct AccountRequest {
    pub email: String,
    pub display_name: String,
    pub role: Role,
    /// Upper-cased here: ODS codes are stored in capitals.
    pub organisation_code: Option<String>,
    pub password: String,
}

/// Adds the account. A password the rule refuses is 422 before anything is hashed or written;
/// the data layer refuses a taken email (409) and a role the organisation cannot take (422).
pub async fn create(state: &AppState, actor: Actor, request: AccountRequest) -> ApiResult<User> {
    if let Some(weakness) = password::weakness(&request.password, &request.email) {
        return Err(ApiError::Unprocessable(weakness));
    }
    let secret = request.password;
    let password_hash = state
        .run_password_work(move || password::hash(&secret))
        .await?
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let new = NewUser {
        email: request.email,
        display_name: request.display_name,
        role: request.role,
        organisation_code: request.organisation_code.map(|code| code.to_uppercase()),
        password_hash,
    };
    state.run(move |db| db::users::create(db, &actor, new)).await
}

/// Changes user `id`'s own password, as `actor`. A new password the rule refuses is 422 before
/// anything is counted or checked. The guess at the current password is counted before it is
/// checked, like a sign-in (`throttle::password_change_attempt`), so that a stolen session cannot
/// become a way to test passwords: too many is 429, a wrong one 403. On success every token the
/// account holds, every web session included, stops working (`db::users::set_password`).
pub async fn change_password(
    state: &AppState,
    actor: Actor,
    id: i64,
    current_password: String,
    new_password: String,
) -> ApiResult<()> {
    let email = state.read(move |conn| db::users::get(conn, id)).await?.email;
    if let Some(weakness) = password::weakness(&new_password, &email) {
        return Err(ApiError::Unprocessable(weakness));
    }
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
        .ok_or_else(|| ApiError::Forbidden(WRONG_CURRENT_PASSWORD.into()))?;
    state.run(move |db| attempt.succeeded(db)).await?;
    state.run(move |db| db::users::set_password(db, &actor, id, &new_hash)).await
}

/// The refusal of a wrong current password (403), as the API words it.
pub const WRONG_CURRENT_PASSWORD: &str = "the current password is not correct";
