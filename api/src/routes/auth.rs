use actix_web::{HttpRequest, post, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{claims, password};
use crate::error::{ApiError, ApiResult};
use crate::openapi::TokenErrors;
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    #[schema(example = "officer@rr8.nhs.uk")]
    pub email: String,
    #[schema(format = Password)]
    pub password: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `Bearer`.
    #[schema(example = "Bearer")]
    pub token_type: String,
    /// Seconds until the token expires.
    pub expires_in: u64,
}

/// Exchange an email and password for a short-lived access token.
#[utoipa::path(
    tag = "auth",
    operation_id = "create_token",
    request_body = TokenRequest,
    responses((status = 200, description = "A bearer token", body = TokenResponse), TokenErrors)
)]
#[post("/auth/token")]
pub async fn create_token(
    state: web::Data<AppState>,
    request: HttpRequest,
    body: web::Json<TokenRequest>,
) -> ApiResult<web::Json<TokenResponse>> {
    let TokenRequest { email, password } = body.into_inner();
    let address = request.peer_addr().map(|a| a.ip().to_string()).unwrap_or_default();
    if let Some(retry_after_seconds) = state.throttle.retry_after(&email, &address) {
        return Err(ApiError::TooManyRequests { retry_after_seconds });
    }
    let lookup_email = email.clone();
    let credentials =
        state.run(move |db| db.read(|conn| db::users::credentials(conn, &lookup_email))).await?;
    // An unknown email is checked against a dummy hash, so both failures take the same time.
    let (stored_hash, account) = match credentials {
        Some(c) => (c.password_hash.clone(), Some(c)),
        None => (state.auth.dummy_hash.clone(), None),
    };
    let matches = web::block(move || password::verify(&password, &stored_hash)).await?;
    match account {
        Some(account) if matches && !account.disabled => {
            state.throttle.record_success(&email);
            let issued = claims::issue(&state.auth, account.user_id, account.token_generation)
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            Ok(web::Json(TokenResponse {
                access_token: issued.token,
                token_type: "Bearer".into(),
                expires_in: issued.expires_in,
            }))
        }
        _ => {
            state.throttle.record_failure(&email, &address);
            Err(ApiError::Unauthorized)
        }
    }
}
