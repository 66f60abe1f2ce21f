use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiResult;
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `unavailable` when the database does not answer or migrations are pending.
    pub status: HealthStatus,
}

// A type rather than a string so that the document lists the values the handlers can send.
/// Whether the service can serve requests.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    Ok,
    Unavailable,
}

/// Liveness: 200 while the process serves.
#[utoipa::path(tag = "health", operation_id = "healthz",
    security(()), responses((status = 200, body = Health)))]
#[get("/healthz")]
pub async fn healthz() -> web::Json<Health> {
    web::Json(Health { status: HealthStatus::Ok })
}

/// Readiness: 200 only when the database answers and every migration is applied.
#[utoipa::path(
    tag = "health",
    operation_id = "readyz",
    security(()),
    responses(
        (status = 200, body = Health),
        (status = 503, description = "The database does not answer or migrations are pending", body = Health),
    )
)]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let ready = state.run(|db| Ok(db.is_ready())).await?;
    Ok(if ready {
        HttpResponse::Ok().json(Health { status: HealthStatus::Ok })
    } else {
        HttpResponse::ServiceUnavailable().json(Health { status: HealthStatus::Unavailable })
    })
}
