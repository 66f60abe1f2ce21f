//! Deny by default, proven over every route: the operations are taken from the OpenAPI document
//! (and the document is checked against the served routes), so a new route cannot escape. Each
//! is called with no token, a tampered token, an expired token and a disabled user's token, and
//! as each role. Who may call what is read from each operation's `x-roles` in the document (from
//! api/src/permissions.rs), so the matrix proves what the document publishes; an operation
//! without `x-roles` fails the test.

use catalogue_tests::{Role, TestApp, on_both_engines};
use jsonwebtoken::{EncodingKey, Header, encode};
use serde_json::{Value, json};

/// Who may call an operation, as the document's `x-roles` says.
enum Access {
    /// No token needed.
    Public,
    /// Only these roles; every other role gets 403.
    Roles(Vec<Role>),
}

use Role::{Admin, Auditor, Exemplar, Officer};

/// The operation's `x-roles`, which every operation must carry.
fn access(id: &str, operation: &Value) -> Access {
    let names: Vec<&str> = operation["x-roles"]
        .as_array()
        .unwrap_or_else(|| panic!("{id} has no x-roles: give it a rule in api/src/permissions.rs"))
        .iter()
        .map(|name| name.as_str().unwrap())
        .collect();
    if names == [api::permissions::PUBLIC] {
        return Access::Public;
    }
    assert!(!names.is_empty(), "{id} has an empty x-roles");
    Access::Roles(
        names
            .iter()
            .map(|name| Role::parse(name).unwrap_or_else(|| panic!("{id}: unknown role {name}")))
            .collect(),
    )
}

/// Operations that act on or reveal one organisation's private data: an officer of another
/// organisation must get 404 (never the data). The value is the path with RR8 as the target.
const ORGANISATION_SCOPED: &[&str] = &[
    "/v1/organisations/{code}/allocations",
    "/v1/organisations/{code}/succession",
    "/v1/organisations/{code}/acting-grant",
    "/v1/organisations/{code}/purchases",
    "/v1/organisations/{code}/risk-acceptances",
    "/v1/organisations/{code}/nhsmail-service",
    "/v1/organisations/{code}/estate",
    "/v1/organisations/{code}/seat-changes",
    "/v1/organisations/{code}/advisories/{id}/acknowledge",
    "/v1/organisations/{code}/advisories/{id}/applicability",
    "/v1/organisations/{code}/advisories/{id}/close",
];

struct Operation {
    id: String,
    method: reqwest::Method,
    path: String,
    access: Access,
}

fn operations() -> Vec<Operation> {
    let document = serde_json::to_value(api::app::openapi_document()).unwrap();
    let mut operations = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let id = operation["operationId"].as_str().unwrap().to_owned();
            operations.push(Operation {
                access: access(&id, operation),
                id,
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
    // Routes added since the matrix was written are in it because the document lists them; the
    // ODS import (a text/csv body, which the matrix's JSON body makes a 415 for admins) is named
    // here so that it cannot drop out unnoticed.
    let ods_import =
        operations.iter().find(|o| o.id == "create_ods_import").expect("the ODS import is documented");
    assert!(matches!(&ods_import.access, Access::Roles(roles) if roles == &[Admin]), "admins only");
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
        let roles = match &operation.access {
            Access::Public => {
                // Published as needing no token: it must answer without one.
                let status = call(&app, operation, None).await;
                assert!(status != 401 && status != 403, "{} is public but refused: {status}", operation.id);
                continue;
            }
            Access::Roles(roles) => roles,
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
    // An officer of RJ1 asks for RR8's private data, with ids that exist (an advisory RR8 is
    // exposed to): 404, as if it were not there, wherever officers may call; 403 where the role
    // may not call at all (before, either was accepted, with ids that might not exist).
    let (_, admin) = app.sign_in(Admin, None).await;
    let advisories: Value =
        app.get("/v1/advisories").bearer_auth(&admin).send().await.unwrap().json().await.unwrap();
    let advisory = advisories["items"][0]["id"].as_i64().expect("a seeded advisory");
    let (_, token) = app.sign_in(Officer, Some("RJ1")).await;
    let operations = operations();
    for path in ORGANISATION_SCOPED {
        let matching: Vec<&Operation> = operations.iter().filter(|o| o.path == *path).collect();
        assert!(!matching.is_empty(), "{path} is not a documented path");
        for operation in matching {
            let url =
                concrete(&operation.path).replace("/advisories/1/", &format!("/advisories/{advisory}/"));
            let mut request = app.client.request(operation.method.clone(), app.url(&url)).bearer_auth(&token);
            if operation.method == reqwest::Method::POST {
                request = request.json(&json!({}));
            }
            let status = request.send().await.unwrap().status().as_u16();
            let officers_may_call =
                matches!(&operation.access, Access::Roles(roles) if roles.contains(&Officer));
            let expected = if officers_may_call { 404 } else { 403 };
            assert_eq!(status, expected, "{} {url}", operation.method);
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
