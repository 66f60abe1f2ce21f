//! One module per resource. Each handler is a few lines: extract, authorise, call the data layer,
//! map the result; each is documented with `#[utoipa::path]` where it is defined.

use utoipa_actix_web::service_config::ServiceConfig;

pub mod health;

pub fn configure(config: &mut ServiceConfig) {
    config.service(health::healthz).service(health::readyz);
}
