//! Telling people and systems: signed webhooks, email, and the worker that delivers the outbox.

pub mod email;
pub mod password_reset;
pub mod webhook;
pub mod worker;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use webhook::Policy;

/// A webhook URL must be https (in production), and neither it nor what its host resolves to may
/// be loopback, link-local or private unless an admin allowed the host: the service must not be
/// turned into a way to reach its own network. The API and the pages both check a URL here.
pub async fn check_webhook_url(state: &AppState, url: &str) -> ApiResult<()> {
    let allowed = state.read(db::subscriptions::allowed_hosts).await?;
    let policy = Policy {
        allow_http: state.webhooks_allow_http,
        allowed_hosts: allowed.into_iter().map(|h| h.host).collect(),
        timeout: std::time::Duration::from_secs(10),
    };
    let parsed =
        webhook::check_url(url, &policy).map_err(|refused| ApiError::Unprocessable(refused.to_string()))?;
    webhook::check_resolves(&parsed, &policy)
        .await
        .map_err(|refused| ApiError::Unprocessable(refused.to_string()))
}
