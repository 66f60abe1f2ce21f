//! Adding an account: the one place the password rule is applied and the password hashed before
//! `db::users::create`, for `POST /v1/users` and the new-user page alike.

use db::Actor;
use db::users::{NewUser, Role, User};

use crate::auth::password;
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
