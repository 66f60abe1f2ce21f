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
