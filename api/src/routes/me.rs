use actix_web::{HttpResponse, get, post, web};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::auth::{CurrentUser, accounts};
use crate::body::Json;
use crate::error::ApiResult;
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
    accounts::change_password(&state, user.actor(), user.id(), current_password, new_password).await?;
    Ok(HttpResponse::NoContent().finish())
}
