//! Deny by default, proven over every route: the operations are taken from the OpenAPI document
//! (and the document is checked against the served routes), so a new route cannot escape. Each
//! is called with no token, a tampered token, an expired token and a disabled user's token, and
//! as each role; the table below says who may call what, and an operation missing from the table
//! fails the test.

use catalogue_tests::{Role, TestApp, on_both_engines};
use jsonwebtoken::{EncodingKey, Header, encode};
use serde_json::{Value, json};

enum Access {
    /// No token needed.
    Public,
    /// Only these roles; every other role gets 403.
    Roles(&'static [Role]),
}

use Access::{Public, Roles};
use Role::{Admin, Auditor, Exemplar, Officer};

const EVERYONE: &[Role] = &[Admin, Exemplar, Officer, Auditor];

/// Who may call each operation, by operation id.
const ACCESS: &[(&str, Access)] = &[
    ("healthz", Public),
    ("readyz", Public),
    ("create_token", Public),
    ("get_me", Roles(EVERYONE)),
    ("change_my_password", Roles(EVERYONE)),
    ("list_users", Roles(&[Admin, Auditor])),
    ("get_user", Roles(&[Admin, Auditor])),
    ("create_user", Roles(&[Admin])),
    ("update_user", Roles(&[Admin])),
    ("list_organisations", Roles(EVERYONE)),
    ("get_organisation", Roles(EVERYONE)),
    ("create_organisation", Roles(&[Admin])),
    ("update_organisation", Roles(&[Admin])),
    ("list_suppliers", Roles(EVERYONE)),
    ("create_supplier", Roles(&[Admin])),
    ("list_products", Roles(EVERYONE)),
    ("get_product", Roles(EVERYONE)),
    ("create_product", Roles(&[Admin])),
    ("update_product", Roles(&[Admin])),
    ("list_agreements", Roles(EVERYONE)),
    ("get_agreement", Roles(EVERYONE)),
    ("create_agreement", Roles(&[Admin])),
    ("update_agreement", Roles(&[Admin])),
    ("list_agreement_entitlements", Roles(EVERYONE)),
    ("create_entitlement", Roles(&[Admin])),
    ("get_entitlement", Roles(EVERYONE)),
    ("update_entitlement", Roles(&[Admin])),
    // Scoped by its `organisation` query parameter: see tests/catalogue.rs.
    ("get_coverage", Roles(EVERYONE)),
    ("claim_seats", Roles(&[Admin, Officer])),
    ("claim_seats_bulk", Roles(&[Admin])),
    ("list_entitlement_allocations", Roles(EVERYONE)),
    ("release_seats", Roles(&[Admin, Officer])),
    ("list_organisation_allocations", Roles(EVERYONE)),
    ("record_succession", Roles(&[Admin])),
    ("utilisation_report", Roles(&[Admin, Auditor])),
    ("obligations_report", Roles(EVERYONE)),
    ("compliance_report", Roles(EVERYONE)),
    ("list_standards", Roles(EVERYONE)),
    ("create_standard", Roles(&[Admin, Exemplar])),
    ("get_standard", Roles(EVERYONE)),
    ("get_standard_version", Roles(EVERYONE)),
    ("create_standard_version", Roles(&[Admin, Exemplar])),
    ("update_standard_version", Roles(&[Admin, Exemplar])),
    ("publish_standard_version", Roles(&[Admin, Exemplar])),
    ("withdraw_standard_version", Roles(&[Admin, Exemplar])),
    ("create_assessment", Roles(&[Admin, Exemplar])),
    ("list_assessments", Roles(EVERYONE)),
    ("create_purchase", Roles(&[Admin, Officer])),
    ("list_purchases", Roles(EVERYONE)),
    ("list_advisories", Roles(EVERYONE)),
    ("get_advisory", Roles(EVERYONE)),
    ("create_advisory", Roles(&[Admin])),
    ("update_advisory", Roles(&[Admin])),
    ("get_advisory_exposure", Roles(&[Admin, Auditor])),
    ("acknowledge_advisory", Roles(&[Admin, Officer])),
    ("set_advisory_applicability", Roles(&[Admin, Officer])),
    ("close_advisory", Roles(&[Admin, Officer])),
    ("advisories_report", Roles(EVERYONE)),
    ("unsupported_report", Roles(&[Admin, Auditor])),
    ("create_risk_acceptance", Roles(&[Admin, Officer])),
    ("list_risk_acceptances", Roles(EVERYONE)),
    ("list_audit_events", Roles(&[Admin, Auditor])),
    ("export_audit_events", Roles(&[Admin, Auditor])),
];

/// Operations that act on or reveal one organisation's private data: an officer of another
/// organisation must get 404 (never the data). The value is the path with RR8 as the target.
const ORGANISATION_SCOPED: &[&str] = &[
    "/v1/organisations/{code}/allocations",
    "/v1/organisations/{code}/succession",
    "/v1/organisations/{code}/purchases",
    "/v1/organisations/{code}/risk-acceptances",
    "/v1/organisations/{code}/advisories/{id}/acknowledge",
    "/v1/organisations/{code}/advisories/{id}/applicability",
    "/v1/organisations/{code}/advisories/{id}/close",
];

struct Operation {
    id: String,
    method: reqwest::Method,
    path: String,
}

fn operations() -> Vec<Operation> {
    let document = serde_json::to_value(api::app::openapi_document()).unwrap();
    let mut operations = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            operations.push(Operation {
                id: operation["operationId"].as_str().unwrap().to_owned(),
                method: method.to_uppercase().parse().unwrap(),
                path: path.clone(),
            });
        }
    }
    operations
}

/// A concrete URL for a path template: ids of 1, and RR8 for organisation codes.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|segment| match segment {
            "{code}" => "RR8".to_owned(),
            s if s.starts_with('{') => "1".to_owned(),
            s => s.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

async fn call(app: &TestApp, operation: &Operation, token: Option<&str>) -> u16 {
    let mut request = app.client.request(operation.method.clone(), app.url(&concrete(&operation.path)));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if matches!(operation.method, reqwest::Method::POST | reqwest::Method::PATCH | reqwest::Method::PUT) {
        request = request.header("if-match", "\"0\"").json(&json!({}));
    }
    request.send().await.unwrap().status().as_u16()
}

fn expired_token(app: &TestApp, user_id: i64) -> String {
    let now = jsonwebtoken::get_current_timestamp();
    let claims = json!({"sub": user_id.to_string(), "iat": now - 7200, "exp": now - 3600,
                        "iss": "nhs-licence-catalogue", "aud": "nhs-licence-catalogue-api", "gen": 0});
    encode(&Header::default(), &claims, &EncodingKey::from_secret(&app.jwt_secret).unwrap()).unwrap()
}

async fn every_route_denies_by_default(app: TestApp) {
    let operations = operations();
    let ids: Vec<&str> = operations.iter().map(|o| o.id.as_str()).collect();
    for operation in &operations {
        assert!(
            ACCESS.iter().any(|(id, _)| *id == operation.id),
            "operation {} is not in the access table of tests/route_matrix.rs: say who may call it",
            operation.id
        );
    }
    for (id, _) in ACCESS {
        assert!(ids.contains(id), "{id} is in the access table but not in the OpenAPI document");
    }

    let (admin, admin_token) = app.sign_in(Admin, None).await;
    let (_, auditor_token) = app.sign_in(Auditor, None).await;
    let (_, officer_token) = app.sign_in(Officer, Some("RR8")).await;
    let (_, exemplar_token) = app.sign_in(Exemplar, Some("RM3")).await;
    let (disabled, disabled_token) = app.sign_in(Officer, Some("RR8")).await;
    let disable = db::users::UserChanges { disabled: Some(true), ..Default::default() };
    db::users::update(app.db(), &db::Actor::system("test"), disabled.id, disable, db::Precondition::Exists)
        .unwrap();
    let mut tampered = admin_token.clone();
    tampered.insert(tampered.len() / 2, 'x');
    let expired = expired_token(&app, admin.id);

    for operation in &operations {
        let access = &ACCESS.iter().find(|(id, _)| *id == operation.id).unwrap().1;
        let roles = match access {
            Public => continue,
            Roles(roles) => *roles,
        };
        for (label, token) in [
            ("no token", None),
            ("a tampered token", Some(tampered.as_str())),
            ("an expired token", Some(expired.as_str())),
            ("a disabled user's token", Some(disabled_token.as_str())),
        ] {
            let status = call(&app, operation, token).await;
            assert_eq!(status, 401, "{} with {label}", operation.id);
        }
        for (role, token) in [
            (Admin, &admin_token),
            (Auditor, &auditor_token),
            (Officer, &officer_token),
            (Exemplar, &exemplar_token),
        ] {
            let status = call(&app, operation, Some(token)).await;
            if roles.contains(&role) {
                assert!(status != 401 && status != 403, "{} as {role:?} was refused: {status}", operation.id);
                assert!(status < 500, "{} as {role:?} failed: {status}", operation.id);
            } else {
                assert_eq!(status, 403, "{} as {role:?}", operation.id);
            }
        }
    }
}

async fn officers_cannot_reach_another_organisation(app: TestApp) {
    // An officer of RJ1 asks for RR8's private data: 404, whatever the method.
    let (_, token) = app.sign_in(Officer, Some("RJ1")).await;
    let operations = operations();
    for path in ORGANISATION_SCOPED {
        let matching: Vec<&Operation> = operations.iter().filter(|o| o.path == *path).collect();
        assert!(!matching.is_empty(), "{path} is not a documented path");
        for operation in matching {
            let status = call(&app, operation, Some(&token)).await;
            assert!(status == 404 || status == 403, "{} {path} answered {status}", operation.method);
        }
    }
    // Every documented path naming an organisation must be classified above or be public data.
    for operation in &operations {
        if operation.path.contains("{code}") {
            let body: Value = json!(operation.path);
            assert!(
                ORGANISATION_SCOPED.contains(&operation.path.as_str())
                    || PUBLIC_ORGANISATION_DATA.contains(&operation.id.as_str()),
                "{body} names an organisation: add it to ORGANISATION_SCOPED or PUBLIC_ORGANISATION_DATA"
            );
        }
    }
}

/// Operations on an organisation that any signed-in user may read (the organisation's public record).
const PUBLIC_ORGANISATION_DATA: &[&str] = &["get_organisation", "update_organisation"];

on_both_engines!(every_route_denies_by_default, officers_cannot_reach_another_organisation);
