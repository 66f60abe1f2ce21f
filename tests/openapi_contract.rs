//! The committed `openapi/openapi.json` must equal what the code generates.

const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi/openapi.json");

#[test]
fn committed_document_matches_the_code() {
    let generated = api::openapi::to_pretty_json(&api::app::openapi_document());
    if std::env::var("UPDATE_OPENAPI").is_ok_and(|v| v == "1") {
        std::fs::write(COMMITTED, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(COMMITTED).unwrap_or_default();
    assert!(
        committed == generated,
        "openapi/openapi.json differs from the document the code generates.\n\
         Regenerate it with:  cargo run -q -p api --bin catalogue -- openapi > openapi/openapi.json\n\
         (or UPDATE_OPENAPI=1 cargo test -p catalogue-tests openapi) and commit the result."
    );
}

#[test]
fn every_operation_has_an_id_a_tag_and_documented_responses() {
    let document = serde_json::to_value(api::app::openapi_document()).unwrap();
    let paths = document["paths"].as_object().unwrap();
    assert!(!paths.is_empty());
    for (path, item) in paths {
        for (method, operation) in item.as_object().unwrap() {
            let name = format!("{} {path}", method.to_uppercase());
            assert!(operation["operationId"].is_string(), "{name} has no operationId");
            assert!(operation["tags"].as_array().is_some_and(|t| !t.is_empty()), "{name} has no tag");
            assert!(
                operation["responses"].as_object().is_some_and(|r| !r.is_empty()),
                "{name} has no responses"
            );
        }
    }
}

/// Every documented operation is served: without a token it gets 401 (or, for the public
/// ones, an answer), never 404 or 405 from the router.
#[actix_web::test]
async fn every_documented_operation_is_served() {
    let Some(app) = catalogue_tests::spawn_app(catalogue_tests::Engine::Sqlite).await else { return };
    let document = serde_json::to_value(api::app::openapi_document()).unwrap();
    let mut checked = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        let concrete = path.replace("{code}", "RR8").replace("{id}", "1").replace("{n}", "1");
        for method in item.as_object().unwrap().keys() {
            let method: reqwest::Method = method.to_uppercase().parse().unwrap();
            let response = app.client.request(method.clone(), app.url(&concrete)).send().await.unwrap();
            let status = response.status().as_u16();
            assert!(status != 404 && status != 405, "{method} {path} is documented but answered {status}");
            checked += 1;
        }
    }
    assert!(checked > 50, "{checked} operations");
    // And an undocumented path under /v1 is not served.
    assert_eq!(app.get("/v1/undocumented").send().await.unwrap().status(), 404);
}

/// Response fields are always sent (null when empty), so clients may rely on every key: a
/// response schema's nullable fields are required. Request schemas keep them optional, and a
/// field serde skips when empty stays optional.
#[test]
fn response_fields_that_are_always_sent_are_required() {
    let document = serde_json::to_value(api::app::openapi_document()).unwrap();
    let schemas = &document["components"]["schemas"];
    let required = |schema: &str| -> Vec<String> {
        schemas[schema]["required"]
            .as_array()
            .map(|names| names.iter().map(|name| name.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default()
    };
    for (schema, nullable) in [
        ("Allocation", &["reference", "created_by", "transferred_to_id"][..]),
        ("Organisation", &["region", "closed_on", "successor_code", "source"][..]),
        ("AllocationPage", &["next_cursor"][..]),
        ("Coverage", &["product"][..]),
    ] {
        for field in nullable {
            assert!(required(schema).iter().any(|name| name == field), "{schema}.{field} is not required");
        }
    }
    // Every property of a response-only schema is required, but what serde skips when empty.
    for schema in ["Allocation", "Organisation", "Product", "StandardVersion", "AuditEvent"] {
        let properties = schemas[schema]["properties"].as_object().unwrap();
        let mut all: Vec<&String> = properties.keys().collect();
        let mut listed = required(schema);
        all.sort();
        listed.sort();
        assert_eq!(all, listed.iter().collect::<Vec<_>>(), "{schema}");
    }
    assert!(
        !required("Problem").contains(&"seats_remaining".to_owned()),
        "seats_remaining is skipped when empty"
    );
    // Request bodies are as utoipa describes them: an optional field may be left out.
    assert_eq!(required("ClaimRequest"), ["organisation", "quantity"]);
    assert!(schemas["UpdateProduct"].get("required").is_none());
}

/// A status sent as text lists its values, the ones the code writes (tests/ledger.rs and
/// tests/advisories.rs see them written).
#[test]
fn status_fields_list_their_values() {
    let document = serde_json::to_value(api::app::openapi_document()).unwrap();
    let schemas = &document["components"]["schemas"];
    for (schema, field, values) in [
        ("Allocation", "status", &["live", "released", "transferred"][..]),
        ("Holding", "via", &["allocation", "purchase", "estate"][..]),
        ("RequirementSummary", "level", &["MUST", "SHOULD", "MAY"][..]),
        ("Health", "status", &["ok", "unavailable"][..]),
        ("TokenResponse", "token_type", &["Bearer"][..]),
    ] {
        let property = &schemas[schema]["properties"][field];
        let target = property["$ref"].as_str().and_then(|r| r.strip_prefix("#/components/schemas/"));
        let listed = match target {
            Some(name) => &schemas[name]["enum"],
            None => &property["enum"],
        };
        assert_eq!(listed, &serde_json::json!(values), "{schema}.{field}");
    }
}

/// An update refuses what the create refuses (empty text, an empty list, a malformed code): the
/// server validates the merged record with the same rule, so the update schema says the same.
#[test]
fn update_schemas_constrain_fields_as_the_create_schemas_do() {
    let document = serde_json::to_value(api::app::openapi_document()).unwrap();
    let schemas = &document["components"]["schemas"];
    const CONSTRAINTS: &[&str] =
        &["minLength", "maxLength", "pattern", "minItems", "maxItems", "minimum", "maximum"];
    for resource in ["Advisory", "Agreement", "Entitlement", "Organisation", "Product", "User"] {
        let create = schemas[format!("Create{resource}")]["properties"].as_object().unwrap();
        let update = schemas[format!("Update{resource}")]["properties"].as_object().unwrap();
        for (field, updated) in update {
            let Some(created) = create.get(field) else { continue };
            for constraint in CONSTRAINTS {
                assert_eq!(
                    updated.get(*constraint),
                    created.get(*constraint),
                    "Update{resource}.{field} {constraint} differs from Create{resource}'s"
                );
            }
        }
    }
}

/// Rules across the fields of one request body are in the document as JSON Schema `if`/`then`,
/// naming fields the schema has (a renamed field would leave a rule that never applies).
#[test]
fn rules_across_fields_are_in_the_request_schemas() {
    let document = serde_json::to_value(api::app::openapi_document()).unwrap();
    let schemas = &document["components"]["schemas"];
    for (schema, condition, consequence) in [
        ("CreatePurchase", "product_id", "description"),
        ("CreateUser", "role", "organisation_code"),
        ("UpdateUser", "role", "organisation_code"),
    ] {
        let rule = &schemas[schema]["allOf"][0];
        assert!(rule["if"]["properties"].get(condition).is_some(), "{schema}: if {condition}");
        assert!(rule["then"]["properties"].get(consequence).is_some(), "{schema}: then {consequence}");
        for part in ["if", "then"] {
            for field in rule[part]["properties"].as_object().unwrap().keys() {
                assert!(schemas[schema]["properties"].get(field).is_some(), "{schema} has no {field}");
            }
        }
    }
    let user = &schemas["CreateUser"]["allOf"][0];
    assert_eq!(user["if"]["properties"]["role"]["enum"], serde_json::json!(["exemplar", "officer"]));
    assert_eq!(user["then"]["required"], serde_json::json!(["organisation_code"]));
    assert_eq!(schemas["CreatePurchase"]["allOf"][0]["then"]["required"], serde_json::json!(["description"]));
}
