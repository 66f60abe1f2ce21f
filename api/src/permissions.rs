//! Who may call each operation, by operation id: the table the OpenAPI document publishes (an
//! `x-roles` extension and a "Who may call" sentence on every operation) and the route matrix
//! test proves by calling every operation as every role. The handlers enforce it with their
//! extractors (`Authorised<R>`, `OrganisationPath<S>`); keeping the published rule in one table
//! that the test checks against real calls means the document cannot drift from the code.

use db::users::Role;
use utoipa::openapi::OpenApi;
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::path::Operation;

use crate::auth::extractors::{AdminOnly, AdminOrAuditor, AdminOrExemplar, AdminOrOfficer, AnyRole, RoleSet};

/// Who may call an operation.
pub enum Callers {
    /// Anyone, without a token.
    Public,
    /// Only these roles; every other role gets 403.
    Roles(&'static [Role]),
}

use Callers::{Public, Roles};

/// One operation's rule: its callers, and where the caller's organisation narrows what they may
/// reach, a sentence that says how.
pub struct Permission {
    pub operation_id: &'static str,
    pub callers: Callers,
    pub scope: Option<&'static str>,
}

/// The name published in `x-roles` for an operation that needs no token.
pub const PUBLIC: &str = "public";

const OWN_ORGANISATION: &str = "Officers and exemplars: their own organisation only (an ICB's officers also the \
     organisations it commissions for, once it has granted it).";
const OFFICERS_OWN: &str = "Officers: for their own organisation only (an ICB's officers also the organisations \
     it commissions for, once it has granted it).";
const OWN_SUBSCRIPTIONS: &str = "Each user their own subscriptions; admins and auditors everyone's (another user's is 404 to anyone else).";
const MANAGES_SUBSCRIPTIONS: &str = "Each user their own subscriptions; admins everyone's (auditors: 403 for another's; \
     anyone else: 404).";
const SUBSCRIBES_FOR: &str = "Officers and exemplars: for their own organisation only. Admins and auditors: any \
     organisation, or every organisation's events.";
const PUBLISHERS: &str = "Exemplars: only standards their own organisation publishes.";

const fn rule(operation_id: &'static str, callers: Callers, scope: Option<&'static str>) -> Permission {
    Permission { operation_id, callers, scope }
}

const ADMIN: Callers = Roles(AdminOnly::ROLES);
const READERS: Callers = Roles(AdminOrAuditor::ROLES);
const OFFICERS: Callers = Roles(AdminOrOfficer::ROLES);
const EXEMPLARS: Callers = Roles(AdminOrExemplar::ROLES);
const ANYONE_SIGNED_IN: Callers = Roles(AnyRole::ROLES);

/// Every operation of the API. The role sets are the extractors' own, so a handler that asks for
/// `Authorised<AdminOrAuditor>` is listed here with `READERS`.
pub const PERMISSIONS: &[Permission] = &[
    rule("healthz", Public, None),
    rule("readyz", Public, None),
    rule("create_token", Public, None),
    rule("get_me", ANYONE_SIGNED_IN, Some("Each user reads their own account.")),
    rule("change_my_password", ANYONE_SIGNED_IN, Some("Each user changes their own password.")),
    rule("list_users", READERS, None),
    rule("get_user", READERS, None),
    rule("create_user", ADMIN, None),
    rule("update_user", ADMIN, None),
    rule("list_organisations", ANYONE_SIGNED_IN, None),
    rule("get_organisation", ANYONE_SIGNED_IN, None),
    rule("create_organisation", ADMIN, None),
    rule("update_organisation", ADMIN, None),
    rule("get_nhsmail_service", ANYONE_SIGNED_IN, Some(OWN_ORGANISATION)),
    rule("replace_nhsmail_service", OFFICERS, Some(OFFICERS_OWN)),
    rule(
        "set_icb_acting_grant",
        OFFICERS,
        Some("Officers: of the ICB itself only (not through its grant); admins for any ICB."),
    ),
    rule("list_changes", ANYONE_SIGNED_IN, None),
    rule("list_subscriptions", ANYONE_SIGNED_IN, Some(OWN_SUBSCRIPTIONS)),
    rule("create_subscription", ANYONE_SIGNED_IN, Some(SUBSCRIBES_FOR)),
    rule("get_subscription", ANYONE_SIGNED_IN, Some(OWN_SUBSCRIPTIONS)),
    rule("delete_subscription", ANYONE_SIGNED_IN, Some(MANAGES_SUBSCRIPTIONS)),
    rule("list_deliveries", ANYONE_SIGNED_IN, Some(OWN_SUBSCRIPTIONS)),
    rule("redeliver", ANYONE_SIGNED_IN, Some(MANAGES_SUBSCRIPTIONS)),
    rule("list_webhook_hosts", ADMIN, None),
    rule("allow_webhook_host", ADMIN, None),
    rule("forbid_webhook_host", ADMIN, None),
    rule("import_estate", OFFICERS, Some(OFFICERS_OWN)),
    rule("apply_seat_changes", OFFICERS, Some(OFFICERS_OWN)),
    rule("get_estate", ANYONE_SIGNED_IN, Some(OWN_ORGANISATION)),
    rule("list_unmatched_software", READERS, None),
    rule("map_software_name", ADMIN, None),
    rule("create_ods_import", ADMIN, None),
    rule("list_ods_successions", READERS, None),
    rule("confirm_ods_succession", ADMIN, None),
    rule("reject_ods_succession", ADMIN, None),
    rule("list_closed_without_successor", READERS, None),
    rule("list_suppliers", ANYONE_SIGNED_IN, None),
    rule("create_supplier", ADMIN, None),
    rule("list_products", ANYONE_SIGNED_IN, None),
    rule("get_product", ANYONE_SIGNED_IN, None),
    rule("create_product", ADMIN, None),
    rule("update_product", ADMIN, None),
    rule("list_product_releases", ANYONE_SIGNED_IN, None),
    rule("list_lifecycle_sources", ANYONE_SIGNED_IN, None),
    rule("replace_lifecycle_sources", ADMIN, None),
    rule("list_lifecycle_holds", ADMIN, None),
    rule("confirm_lifecycle_hold", ADMIN, None),
    rule("reject_lifecycle_hold", ADMIN, None),
    rule("list_agreements", ANYONE_SIGNED_IN, None),
    rule("get_agreement", ANYONE_SIGNED_IN, None),
    rule("list_agreements_ocds", ANYONE_SIGNED_IN, None),
    rule("get_agreement_ocds", ANYONE_SIGNED_IN, None),
    rule("get_agreement_ocds_record", ANYONE_SIGNED_IN, None),
    rule("create_agreement", ADMIN, None),
    rule("update_agreement", ADMIN, None),
    rule("list_agreement_entitlements", ANYONE_SIGNED_IN, None),
    rule("create_entitlement", ADMIN, None),
    rule("get_entitlement", ANYONE_SIGNED_IN, None),
    rule("update_entitlement", ADMIN, None),
    rule("get_coverage", ANYONE_SIGNED_IN, Some(OWN_ORGANISATION)),
    rule("claim_seats", OFFICERS, Some(OFFICERS_OWN)),
    rule("claim_seats_bulk", ADMIN, None),
    rule(
        "list_entitlement_allocations",
        ANYONE_SIGNED_IN,
        Some("Officers and exemplars see only their own organisation's allocations."),
    ),
    rule("release_seats", OFFICERS, Some("Officers: only their own organisation's allocations.")),
    rule("list_organisation_allocations", ANYONE_SIGNED_IN, Some(OWN_ORGANISATION)),
    rule("record_succession", ADMIN, None),
    rule(
        "list_seat_requests",
        ANYONE_SIGNED_IN,
        Some("Officers and exemplars see only their own organisation's requests."),
    ),
    rule("get_seat_request", ANYONE_SIGNED_IN, Some(OWN_ORGANISATION)),
    rule("approve_seat_request", ADMIN, None),
    rule("refuse_seat_request", ADMIN, None),
    rule("withdraw_seat_request", OFFICERS, Some("Officers: only their own organisation's requests.")),
    rule("utilisation_report", READERS, None),
    rule("obligations_report", ANYONE_SIGNED_IN, Some(OWN_ORGANISATION)),
    rule("reconciliation_report", ANYONE_SIGNED_IN, Some(OWN_ORGANISATION)),
    rule("compliance_report", ANYONE_SIGNED_IN, Some(OWN_ORGANISATION)),
    rule("list_standards", ANYONE_SIGNED_IN, None),
    rule("create_standard", EXEMPLARS, Some(PUBLISHERS)),
    rule("get_standard", ANYONE_SIGNED_IN, None),
    rule("get_standard_version", ANYONE_SIGNED_IN, None),
    rule("create_standard_version", EXEMPLARS, Some(PUBLISHERS)),
    rule("update_standard_version", EXEMPLARS, Some(PUBLISHERS)),
    rule("publish_standard_version", EXEMPLARS, Some(PUBLISHERS)),
    rule("withdraw_standard_version", EXEMPLARS, Some(PUBLISHERS)),
    rule("create_assessment", EXEMPLARS, Some(PUBLISHERS)),
    rule("list_assessments", ANYONE_SIGNED_IN, None),
    rule("create_purchase", OFFICERS, Some(OFFICERS_OWN)),
    rule("list_purchases", ANYONE_SIGNED_IN, Some(OWN_ORGANISATION)),
    rule("list_advisories", ANYONE_SIGNED_IN, None),
    rule("get_advisory", ANYONE_SIGNED_IN, None),
    rule("create_advisory", ADMIN, None),
    rule("update_advisory", ADMIN, None),
    rule("get_advisory_exposure", READERS, None),
    rule("acknowledge_advisory", OFFICERS, Some(OFFICERS_OWN)),
    rule("set_advisory_applicability", OFFICERS, Some(OFFICERS_OWN)),
    rule("close_advisory", OFFICERS, Some(OFFICERS_OWN)),
    rule("advisories_report", ANYONE_SIGNED_IN, Some(OWN_ORGANISATION)),
    rule("unsupported_report", READERS, None),
    rule("create_risk_acceptance", OFFICERS, Some(OFFICERS_OWN)),
    rule("list_risk_acceptances", ANYONE_SIGNED_IN, Some(OWN_ORGANISATION)),
    rule("list_audit_events", READERS, None),
    rule("export_audit_events", READERS, None),
];

/// The rule for an operation, if the table has one.
pub fn permission(operation_id: &str) -> Option<&'static Permission> {
    PERMISSIONS.iter().find(|permission| permission.operation_id == operation_id)
}

impl Permission {
    /// The names published in `x-roles`.
    pub fn role_names(&self) -> Vec<&'static str> {
        match self.callers {
            Public => vec![PUBLIC],
            Roles(roles) => roles.iter().map(|role| role.as_str()).collect(),
        }
    }

    /// The sentence appended to the operation's description.
    fn sentence(&self) -> String {
        let who = match self.callers {
            Public => "anyone, without a token".to_owned(),
            Roles(_) => self.role_names().join(", "),
        };
        match self.scope {
            Some(scope) => format!("Who may call: {who}. {scope}"),
            None => format!("Who may call: {who}."),
        }
    }
}

/// Publishes the table in the document. An operation the table does not name is left without
/// `x-roles`, and the route matrix test fails on it: the document generation itself cannot fail.
pub fn publish(document: &mut OpenApi) {
    for item in document.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
        ];
        for operation in operations.into_iter().flatten() {
            publish_one(operation);
        }
    }
}

fn publish_one(operation: &mut Operation) {
    let Some(permission) = operation.operation_id.as_deref().and_then(permission) else { return };
    operation
        .extensions
        .get_or_insert_with(Extensions::default)
        .insert("x-roles".to_owned(), permission.role_names().into());
    let sentence = permission.sentence();
    operation.description = Some(match operation.description.take() {
        Some(description) if !description.trim().is_empty() => {
            format!("{}\n\n{sentence}", description.trim_end())
        }
        _ => sentence,
    });
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Every operation of the generated document, by id.
    fn documented_operations() -> Vec<(String, Operation)> {
        let document = crate::app::openapi_document();
        let mut found = Vec::new();
        for item in document.paths.paths.into_values() {
            let operations =
                [item.get, item.put, item.post, item.delete, item.options, item.head, item.patch, item.trace];
            for operation in operations.into_iter().flatten() {
                found.push((operation.operation_id.clone().unwrap_or_default(), operation));
            }
        }
        found
    }

    #[test]
    fn every_operation_has_exactly_one_rule_and_every_rule_an_operation() {
        let operations = documented_operations();
        for (id, _) in &operations {
            let rules = PERMISSIONS.iter().filter(|p| p.operation_id == id).count();
            assert_eq!(rules, 1, "{id:?} has {rules} rules in api/src/permissions.rs");
        }
        for permission in PERMISSIONS {
            assert!(
                operations.iter().any(|(id, _)| id == permission.operation_id),
                "{} has a rule but is not in the document",
                permission.operation_id
            );
        }
    }

    #[test]
    fn the_document_publishes_roles_and_a_sentence() {
        let operations = documented_operations();
        let published = |wanted: &str| {
            let (_, operation) = operations.iter().find(|(id, _)| id == wanted).cloned().unwrap_or_default();
            let roles =
                operation.extensions.as_ref().and_then(|extensions| extensions.get("x-roles")).cloned();
            (roles, operation.description)
        };
        assert_eq!(
            published("create_token"),
            (Some(json!(["public"])), Some("Who may call: anyone, without a token.".to_owned()))
        );
        assert_eq!(
            published("list_audit_events"),
            (Some(json!(["admin", "auditor"])), Some("Who may call: admin, auditor.".to_owned()))
        );
        assert_eq!(
            published("create_purchase"),
            (
                Some(json!(["admin", "officer"])),
                Some(format!("Who may call: admin, officer. {OFFICERS_OWN}"))
            )
        );
    }
}
