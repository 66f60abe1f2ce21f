//! One module per resource. Each handler is a few lines: extract, authorise, call the data layer,
//! map the result; each is documented with `#[utoipa::path]` where it is defined.

use utoipa_actix_web::scope;
use utoipa_actix_web::service_config::ServiceConfig;

pub mod advisories;
pub mod agreements;
pub mod allocations;
pub mod audit;
pub mod auth;
pub mod changes;
pub mod coverage;
pub mod estates;
pub mod health;
pub mod lifecycle;
pub mod me;
pub mod nhsmail;
pub mod ods;
pub mod organisations;
pub mod products;
pub mod purchases;
pub mod reports;
pub mod risk;
pub mod seat_requests;
pub mod standards;
pub mod subscriptions;
pub mod users;

pub use crate::dates::today;

pub fn configure(config: &mut ServiceConfig) {
    config.service(health::healthz).service(health::readyz).service(
        scope::scope("/v1")
            // The router tries resources in the order they are registered, testing each
            // templated path (`/users/{id}`, ...) with a regex: the hot path comes first.
            .service(coverage::get_coverage)
            .service(auth::create_token)
            .service(me::get_me)
            .service(me::change_my_password)
            .service(users::list_users)
            .service(users::create_user)
            .service(users::get_user)
            .service(users::update_user)
            .service(organisations::list_organisations)
            .service(organisations::create_organisation)
            .service(organisations::get_organisation)
            .service(organisations::update_organisation)
            .service(nhsmail::get_nhsmail_service)
            .service(estates::import_estate)
            .service(estates::get_estate)
            .service(estates::list_unmatched_software)
            .service(estates::map_software_name)
            .service(nhsmail::replace_nhsmail_service)
            .service(organisations::set_icb_acting_grant)
            .service(ods::create_ods_import)
            .service(ods::list_ods_successions)
            .service(ods::confirm_ods_succession)
            .service(ods::reject_ods_succession)
            .service(ods::list_closed_without_successor)
            .service(products::list_suppliers)
            .service(products::create_supplier)
            .service(products::list_products)
            .service(products::create_product)
            .service(products::get_product)
            .service(products::update_product)
            .service(lifecycle::list_product_releases)
            .service(lifecycle::list_lifecycle_sources)
            .service(lifecycle::replace_lifecycle_sources)
            .service(lifecycle::list_lifecycle_holds)
            .service(lifecycle::confirm_lifecycle_hold)
            .service(lifecycle::reject_lifecycle_hold)
            .service(agreements::list_agreements)
            // Before `/agreements/{id}`, which would otherwise take `ocds` for an id.
            .service(agreements::list_agreements_ocds)
            .service(agreements::get_agreement_ocds)
            .service(agreements::get_agreement_ocds_record)
            .service(agreements::create_agreement)
            .service(agreements::get_agreement)
            .service(agreements::update_agreement)
            .service(agreements::list_agreement_entitlements)
            .service(agreements::create_entitlement)
            .service(agreements::get_entitlement)
            .service(agreements::update_entitlement)
            .service(allocations::claim_seats)
            .service(allocations::claim_seats_bulk)
            .service(allocations::apply_seat_changes)
            .service(allocations::list_entitlement_allocations)
            .service(allocations::release_seats)
            .service(allocations::list_organisation_allocations)
            .service(allocations::record_succession)
            .service(seat_requests::list_seat_requests)
            .service(seat_requests::get_seat_request)
            .service(seat_requests::approve_seat_request)
            .service(seat_requests::refuse_seat_request)
            .service(seat_requests::withdraw_seat_request)
            .service(reports::utilisation_report)
            .service(reports::reconciliation_report)
            .service(reports::obligations_report)
            .service(reports::compliance_report)
            .service(standards::list_standards)
            .service(standards::create_standard)
            .service(standards::get_standard)
            .service(standards::get_standard_version)
            .service(standards::create_standard_version)
            .service(standards::update_standard_version)
            .service(standards::publish_standard_version)
            .service(standards::withdraw_standard_version)
            .service(standards::create_assessment)
            .service(standards::list_assessments)
            .service(purchases::create_purchase)
            .service(purchases::list_purchases)
            .service(advisories::list_advisories)
            .service(advisories::create_advisory)
            .service(advisories::get_advisory)
            .service(advisories::update_advisory)
            .service(advisories::get_advisory_exposure)
            .service(advisories::acknowledge_advisory)
            .service(advisories::set_advisory_applicability)
            .service(advisories::close_advisory)
            .service(reports::advisories_report)
            .service(reports::unsupported_report)
            .service(risk::create_risk_acceptance)
            .service(risk::list_risk_acceptances)
            .service(changes::list_changes)
            .service(subscriptions::list_subscriptions)
            .service(subscriptions::create_subscription)
            .service(subscriptions::get_subscription)
            .service(subscriptions::delete_subscription)
            .service(subscriptions::list_deliveries)
            .service(subscriptions::redeliver)
            .service(subscriptions::list_webhook_hosts)
            .service(subscriptions::allow_webhook_host)
            .service(subscriptions::forbid_webhook_host)
            .service(audit::list_audit_events)
            .service(audit::export_audit_events),
    );
}
