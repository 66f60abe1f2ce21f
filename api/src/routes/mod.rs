//! One module per resource. Each handler is a few lines: extract, authorise, call the data layer,
//! map the result; each is documented with `#[utoipa::path]` where it is defined.

use utoipa_actix_web::scope;
use utoipa_actix_web::service_config::ServiceConfig;

pub mod auth;
pub mod health;
pub mod me;
pub mod users;

pub fn configure(config: &mut ServiceConfig) {
    config.service(health::healthz).service(health::readyz).service(
        scope::scope("/v1")
            .service(auth::create_token)
            .service(me::get_me)
            .service(me::change_my_password)
            .service(users::list_users)
            .service(users::create_user)
            .service(users::get_user)
            .service(users::update_user),
    );
}
