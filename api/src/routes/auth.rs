use actix_web::{HttpRequest, post, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::sign_in::sign_in;
use crate::body::Json;
use crate::error::ApiResult;
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

// A type rather than a string so that the document lists the one value the handler can send.
/// The kind of token issued: always a bearer token (RFC 6750).
#[derive(Serialize, Deserialize, ToSchema)]
pub enum TokenType {
    Bearer,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: TokenType,
    /// Seconds until the token expires.
    pub expires_in: u64,
}

/// Exchange an email and password for a short-lived access token.
#[utoipa::path(
    tag = "auth",
    operation_id = "create_token",
    security(()),
    request_body = TokenRequest,
    responses((status = 200, description = "A bearer token", body = TokenResponse), TokenErrors)
)]
#[post("/auth/token")]
pub async fn create_token(
    state: web::Data<AppState>,
    request: HttpRequest,
    body: Json<TokenRequest>,
) -> ApiResult<web::Json<TokenResponse>> {
    let TokenRequest { email, password } = body.into_inner();
    let address = state.trusted_proxies.address_key(&request);
    let issued = sign_in(&state, email, password, &address).await?;
    Ok(web::Json(TokenResponse {
        access_token: issued.token,
        token_type: TokenType::Bearer,
        expires_in: issued.expires_in,
    }))
}
