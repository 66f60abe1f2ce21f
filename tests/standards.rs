//! "Buy against" standards, assessments and local purchases on both engines.

use std::sync::Arc;

use catalogue_tests::{Role, TestApp, expect_bare_internal_error, on_both_engines};
use serde_json::{Value, json};

async fn get_json(app: &TestApp, token: &str, path: &str) -> Value {
    let response = app.get(path).bearer_auth(token).send().await.unwrap();
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.unwrap()
}

async fn post(app: &TestApp, token: &str, path: &str, body: Value) -> (u16, Value) {
    let response = app.post(path).bearer_auth(token).json(&body).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn product_id(app: &TestApp, token: &str, sku: &str) -> i64 {
    let page = get_json(app, token, &format!("/v1/products?q={sku}")).await;
    page["items"].as_array().unwrap().iter().find(|p| p["sku"] == sku).unwrap()["id"].as_i64().unwrap()
}

async fn seeded_standard(app: &TestApp, token: &str, title: &str) -> Value {
    let page = get_json(app, token, "/v1/standards?limit=100").await;
    page["items"].as_array().unwrap().iter().find(|s| s["title"] == title).unwrap().clone()
}

fn requirements() -> Value {
    json!([
        {"code": "SEC-01", "text": "The device MUST receive security updates for five years.", "level": "MUST",
         "criterion": {"kind": "min_extended_support_years", "years": 5}},
        {"code": "SEC-02", "text": "The supplier MUST provide an MDS2 form.", "level": "MUST", "criterion": {"kind": "mds2_supplied"}},
        {"code": "SEC-03", "text": "The device SHOULD support network segmentation.", "level": "SHOULD"}
    ])
}

async fn an_exemplar_runs_the_whole_lifecycle(app: TestApp) {
    let (_, author) = app.sign_in(Role::Exemplar, Some("RTH")).await;
    let (status, standard) = post(&app, &author, "/v1/standards", json!({
        "publisher": "RTH", "category": "imaging-device", "title": "Imaging devices", "summary": "First draft",
        "requirements": requirements()
    }))
    .await;
    assert_eq!(status, 201, "{standard}");
    let id = standard["id"].as_i64().unwrap();
    assert_eq!(standard["versions"][0]["status"], "draft");
    assert!(standard["published_version"].is_null());

    // Edit the draft with its ETag.
    let version_path = format!("/v1/standards/{id}/versions/1");
    let draft = app.get(&version_path).bearer_auth(&author).send().await.unwrap();
    let etag = draft.headers()["etag"].to_str().unwrap().to_owned();
    let edit = json!({"summary": "Reviewed draft"});
    let url = app.url(&version_path);
    assert_eq!(app.client.patch(&url).bearer_auth(&author).json(&edit).send().await.unwrap().status(), 428);
    let edited = app
        .client
        .patch(&url)
        .bearer_auth(&author)
        .header("if-match", &etag)
        .json(&edit)
        .send()
        .await
        .unwrap();
    assert_eq!(edited.status(), 200);
    let stale = app
        .client
        .patch(&url)
        .bearer_auth(&author)
        .header("if-match", &etag)
        .json(&edit)
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 412);

    let (status, published) = post(&app, &author, &format!("{version_path}/publish"), json!(null)).await;
    assert_eq!(status, 200, "{published}");
    assert_eq!(published["status"], "published");
    assert_eq!(published["summary"], "Reviewed draft");

    // A new draft copies the latest version; publishing it supersedes version 1.
    let (status, v2) = post(&app, &author, &format!("/v1/standards/{id}/versions"), json!(null)).await;
    assert_eq!(status, 201);
    assert_eq!(v2["number"], 2);
    assert_eq!(v2["requirements"].as_array().unwrap().len(), 3, "copied from version 1");
    assert_eq!(
        post(&app, &author, &format!("/v1/standards/{id}/versions"), json!(null)).await.0,
        409,
        "one draft at a time"
    );
    let change = json!({"requirements": [
        {"code": "SEC-01", "text": "The device MUST receive security updates for seven years.", "level": "MUST",
         "criterion": {"kind": "min_extended_support_years", "years": 7}}
    ]});
    let v2_url = app.url(&format!("/v1/standards/{id}/versions/2"));
    let edited = app
        .client
        .patch(&v2_url)
        .bearer_auth(&author)
        .header("if-match", "*")
        .json(&change)
        .send()
        .await
        .unwrap();
    assert_eq!(edited.status(), 200);
    assert_eq!(
        post(&app, &author, &format!("/v1/standards/{id}/versions/2/publish"), json!(null)).await.0,
        200
    );
    let standard = get_json(&app, &author, &format!("/v1/standards/{id}")).await;
    assert_eq!(standard["published_version"], 2);
    assert_eq!(standard["versions"][0]["status"], "superseded");
    assert!(standard["versions"][0]["superseded_at"].is_string());

    // Published and superseded versions never change.
    for number in [1, 2] {
        let url = app.url(&format!("/v1/standards/{id}/versions/{number}"));
        let response = app
            .client
            .patch(&url)
            .bearer_auth(&author)
            .header("if-match", "*")
            .json(&change)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 409, "version {number} is immutable");
    }
    assert_eq!(
        post(&app, &author, &format!("/v1/standards/{id}/versions/1/publish"), json!(null)).await.0,
        409
    );
    let frozen = app.with_connection(|conn| {
        use db::schema::requirements::dsl::*;
        use diesel::prelude::*;
        diesel::update(requirements.filter(code.eq("SEC-01"))).set(text.eq("rewritten")).execute(conn)
    });
    assert!(frozen.is_err(), "the database refuses to change a published version's requirements");

    // Coverage now points officers at version 2; withdrawing it leaves no guidance.
    let (_, officer) = app.sign_in(Role::Officer, Some("RR8")).await;
    let coverage = get_json(&app, &officer, "/v1/coverage?organisation=RR8&category=imaging-device").await;
    assert_eq!(coverage["decision"], "buy_locally");
    assert_eq!(coverage["standards"][0]["version"], 2);
    assert_eq!(
        post(&app, &author, &format!("/v1/standards/{id}/versions/2/withdraw"), json!(null)).await.0,
        200
    );
    let coverage = get_json(&app, &officer, "/v1/coverage?organisation=RR8&category=imaging-device").await;
    assert_eq!(coverage["decision"], "no_guidance");
    assert_eq!(
        post(&app, &author, &format!("/v1/standards/{id}/versions/2/withdraw"), json!(null)).await.0,
        409
    );

    let filtered = get_json(&app, &officer, "/v1/standards?publisher=RTH&status=withdrawn").await;
    assert_eq!(filtered["items"].as_array().unwrap().len(), 1);
    let by_category = get_json(&app, &officer, "/v1/standards?category=medical-device-software").await;
    assert!(
        by_category["items"].as_array().unwrap().iter().all(|s| s["category"] == "medical-device-software")
    );
}

/// A requirement code's maxLength (32) is counted in characters, as JSON Schema counts it: the
/// server counted bytes and refused 32 accented letters that the document allows.
async fn requirement_codes_are_counted_in_characters(app: TestApp) {
    let (_, author) = app.sign_in(Role::Exemplar, Some("RTH")).await;
    let with_code = |code: String| {
        json!({"publisher": "RTH", "category": "imaging-device", "title": "Codes",
               "requirements": [{"code": code, "text": "Encrypts data at rest", "level": "MUST"}]})
    };
    let (status, body) = post(&app, &author, "/v1/standards", with_code("É".repeat(32))).await;
    assert_eq!(status, 201, "32 characters of 2 bytes each: {body}");
    let (status, _) = post(&app, &author, "/v1/standards", with_code("A".repeat(33))).await;
    assert_eq!(status, 422, "33 characters");
}

async fn only_the_publishers_exemplars_may_publish(app: TestApp) {
    let (_, officer) = app.sign_in(Role::Officer, Some("RR8")).await;
    let (_, other_exemplar) = app.sign_in(Role::Exemplar, Some("RGT")).await;
    let (_, own_exemplar) = app.sign_in(Role::Exemplar, Some("RM3")).await;
    let body = json!({"publisher": "RM3", "category": "imaging-device", "title": "X", "requirements": requirements()});
    assert_eq!(post(&app, &officer, "/v1/standards", body.clone()).await.0, 403, "officers do not publish");
    assert_eq!(
        post(&app, &other_exemplar, "/v1/standards", body.clone()).await.0,
        403,
        "not for another organisation"
    );
    let non_exemplar = json!({"publisher": "RR8", "category": "imaging-device", "title": "X"});
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    assert_eq!(post(&app, &admin, "/v1/standards", non_exemplar).await.0, 422, "RR8 is not an exemplar");
    // The publisher is a value in the body: naming no organisation is bad input, not a 404.
    let nobody = json!({"publisher": "ZZZ99", "category": "imaging-device", "title": "X"});
    let (status, problem) = post(&app, &admin, "/v1/standards", nobody).await;
    assert_eq!((status, problem["detail"].as_str()), (422, Some("the publisher ZZZ99 does not exist")));

    let devices = seeded_standard(&app, &own_exemplar, "Medical device security").await;
    let id = devices["id"].as_i64().unwrap();
    assert_eq!(
        post(&app, &other_exemplar, &format!("/v1/standards/{id}/versions"), json!(null)).await.0,
        403
    );
    assert_eq!(post(&app, &officer, &format!("/v1/standards/{id}/versions"), json!(null)).await.0, 403);
    let (status, draft) =
        post(&app, &own_exemplar, &format!("/v1/standards/{id}/versions"), json!(null)).await;
    assert_eq!(status, 201);
    let publish = format!("/v1/standards/{id}/versions/{}/publish", draft["number"]);
    assert_eq!(post(&app, &other_exemplar, &publish, json!(null)).await.0, 403);
    assert_eq!(post(&app, &officer, &publish, json!(null)).await.0, 403);
    assert_eq!(post(&app, &own_exemplar, &publish, json!(null)).await.0, 200);
}

async fn two_concurrent_publishes_leave_one_published_version(app: TestApp) {
    let (_, author) = app.sign_in(Role::Exemplar, Some("RM3")).await;
    let devices = seeded_standard(&app, &author, "Medical device security").await;
    let id = devices["id"].as_i64().unwrap();
    for _round in 0..3 {
        let (status, draft) = post(&app, &author, &format!("/v1/standards/{id}/versions"), json!(null)).await;
        assert_eq!(status, 201);
        let path = format!("/v1/standards/{id}/versions/{}/publish", draft["number"]);
        let app_ref = Arc::new((app.url(&path), author.clone()));
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let (client, shared) = (app.client.clone(), app_ref.clone());
            tasks.push(actix_web::rt::spawn(async move {
                client.post(&shared.0).bearer_auth(&shared.1).send().await.unwrap().status().as_u16()
            }));
        }
        let mut statuses = Vec::new();
        for task in tasks {
            statuses.push(task.await.unwrap());
        }
        statuses.sort();
        assert_eq!(statuses, vec![200, 409, 409, 409], "exactly one publish wins");
        let standard = get_json(&app, &author, &format!("/v1/standards/{id}")).await;
        let published =
            standard["versions"].as_array().unwrap().iter().filter(|v| v["status"] == "published").count();
        assert_eq!(published, 1);
        assert_eq!(standard["published_version"], draft["number"]);
    }
}

async fn assessments_evaluate_machine_checkable_criteria(app: TestApp) {
    let (_, author) = app.sign_in(Role::Exemplar, Some("RM3")).await;
    let devices = seeded_standard(&app, &author, "Medical device security").await;
    let id = devices["id"].as_i64().unwrap();
    let version = devices["published_version"].as_i64().unwrap();
    let path = format!("/v1/standards/{id}/versions/{version}/assessments");
    let all_met = |codes: &[Value]| {
        Value::Array(codes.iter().map(|c| json!({"requirement": c, "met": true})).collect())
    };
    let current = get_json(&app, &author, &format!("/v1/standards/{id}/versions/{version}")).await;
    let codes: Vec<Value> =
        current["requirements"].as_array().unwrap().iter().map(|r| r["code"].clone()).collect();

    // A modern scanner with an MDS2 form and support to 2032 conforms.
    let modern = product_id(&app, &author, "EXIMG-US-9").await;
    let (status, good) = post(
        &app,
        &author,
        &path,
        json!({"product_id": modern, "outcomes": all_met(&codes), "evidence": ["mds2.pdf"]}),
    )
    .await;
    assert_eq!(status, 201, "{good}");
    assert_eq!(good["conforms"], true);
    // A workstation on embedded Windows 7: the assessor says met, the service knows better.
    let old = product_id(&app, &author, "EXIMG-CTWS-4").await;
    let (status, bad) =
        post(&app, &author, &path, json!({"product_id": old, "outcomes": all_met(&codes)})).await;
    assert_eq!(status, 201);
    assert_eq!(bad["conforms"], false);
    let support = bad["outcomes"].as_array().unwrap().iter().find(|o| o["requirement"] == "MDS-02").unwrap();
    assert_eq!(support["evaluated"], false);
    assert_eq!(support["met"], false);
    // A lab controller with no MDS2 form fails MDS-01.
    let lab = product_id(&app, &author, "EXDIAG-LABCTL-2").await;
    let (_, lab) = post(&app, &author, &path, json!({"product_id": lab, "outcomes": all_met(&codes)})).await;
    assert_eq!(lab["conforms"], false);

    assert_eq!(
        post(&app, &author, &path, json!({"product_id": modern, "outcomes": all_met(&codes)})).await.0,
        409,
        "once per product"
    );
    let missing = json!({"product_id": product_id(&app, &author, "MS-WIN11-ENT").await, "outcomes": [{"requirement": "MDS-01", "met": true}]});
    assert_eq!(post(&app, &author, &path, missing).await.0, 422, "every requirement needs an outcome");
    let unknown = json!({"product_id": modern, "outcomes": [{"requirement": "NOPE-1", "met": true}]});
    assert_eq!(post(&app, &author, &path, unknown).await.0, 422);
    assert_eq!(
        post(
            &app,
            &author,
            &format!("/v1/standards/{id}/versions/1/assessments"),
            json!({"product_id": modern, "outcomes": []})
        )
        .await
        .0,
        409
    );

    let conforming = get_json(&app, &author, &path).await;
    assert_eq!(conforming.as_array().unwrap().len(), 1);
    assert_eq!(conforming[0]["product_id"], modern);
    let everything = get_json(&app, &author, &format!("{path}?include_nonconforming=true")).await;
    assert_eq!(everything.as_array().unwrap().len(), 3);

    let (_, officer) = app.sign_in(Role::Officer, Some("RR8")).await;
    let coverage =
        get_json(&app, &officer, "/v1/coverage?organisation=RR8&category=medical-device-software").await;
    let named: Vec<i64> = coverage["standards"][0]["conforming_products"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["product_id"].as_i64().unwrap())
        .collect();
    assert_eq!(named, vec![modern], "coverage names the conforming products");
}

async fn purchases_are_validated_against_the_current_version(app: TestApp) {
    let (_, officer) = app.sign_in(Role::Officer, Some("RR8")).await;
    let devices = seeded_standard(&app, &officer, "Medical device security").await;
    let id = devices["id"].as_i64().unwrap();
    let current = devices["published_version"].as_i64().unwrap();
    let version = get_json(&app, &officer, &format!("/v1/standards/{id}/versions/{current}")).await;
    let musts: Vec<Value> = version["requirements"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["level"] == "MUST")
        .map(|r| json!({"requirement": r["code"], "met": true, "evidence": "contract schedule 4"}))
        .collect();
    let modern = product_id(&app, &officer, "EXIMG-US-9").await;
    let purchase = |version: i64, purchased_on: &str, declarations: Vec<Value>| {
        json!({"product_id": modern, "category": "medical-device-software", "standard_id": id, "version": version,
               "purchased_on": purchased_on, "quantity": 2, "unit_cost_pence": 1_250_000,
               "order_reference": "PO-2026-001", "declarations": declarations})
    };
    let path = "/v1/organisations/RR8/purchases";
    let (status, bought) = post(&app, &officer, path, purchase(current, "2026-11-01", musts.clone())).await;
    assert_eq!(status, 201, "{bought}");
    assert_eq!(bought["compliant"], true);

    let (status, stale) = post(&app, &officer, path, purchase(1, "2026-11-01", musts.clone())).await;
    assert_eq!(status, 422);
    assert!(stale["detail"].as_str().unwrap().contains(&format!("version {current} was")), "{stale}");
    // In 2020, version 1 was the published one.
    let v1 = get_json(&app, &officer, &format!("/v1/standards/{id}/versions/1")).await;
    let v1_musts: Vec<Value> = v1["requirements"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["level"] == "MUST")
        .map(|r| json!({"requirement": r["code"], "met": true}))
        .collect();
    let (status, old) = post(&app, &officer, path, purchase(1, "2020-02-01", v1_musts)).await;
    assert_eq!(status, 201, "{old}");
    assert_eq!(
        post(&app, &officer, path, purchase(current, "2018-01-01", musts.clone())).await.0,
        422,
        "nothing published then"
    );

    let mut missing = musts.clone();
    missing.pop();
    assert_eq!(
        post(&app, &officer, path, purchase(current, "2026-11-01", missing)).await.0,
        422,
        "every MUST needs a declaration"
    );
    let mut unmet = musts.clone();
    unmet[0]["met"] = json!(false);
    let (status, non_compliant) = post(&app, &officer, path, purchase(current, "2026-11-02", unmet)).await;
    assert_eq!(status, 201, "recorded, not refused");
    assert_eq!(non_compliant["compliant"], false);
    let mut wrong_category = purchase(current, "2026-11-01", musts.clone());
    wrong_category["category"] = json!("endpoint-protection");
    assert_eq!(post(&app, &officer, path, wrong_category).await.0, 422);
    let mut free_text = purchase(current, "2026-11-03", musts.clone());
    free_text.as_object_mut().unwrap().remove("product_id");
    free_text["description"] = json!("Bespoke ultrasound cart");
    assert_eq!(post(&app, &officer, path, free_text).await.0, 201, "a product not in the catalogue");

    // A correction supersedes; purchases never change.
    let mut correction = purchase(current, "2026-11-02", musts.clone());
    correction["supersedes"] = non_compliant["id"].clone();
    let (status, corrected) = post(&app, &officer, path, correction.clone()).await;
    assert_eq!(status, 201);
    assert_eq!(corrected["supersedes_id"], non_compliant["id"]);
    assert_eq!(post(&app, &officer, path, correction).await.0, 409, "already superseded");
    let listed = get_json(&app, &officer, path).await;
    assert!(listed["items"].as_array().unwrap().iter().all(|p| p["id"] != non_compliant["id"]));
    let all = get_json(&app, &officer, &format!("{path}?include_superseded=true")).await;
    let replaced =
        all["items"].as_array().unwrap().iter().find(|p| p["id"] == non_compliant["id"]).unwrap().clone();
    assert_eq!(replaced["superseded_by_id"], corrected["id"]);
    let changed = app.with_connection(|conn| {
        use db::schema::purchases::dsl::*;
        use diesel::prelude::*;
        diesel::update(purchases).set(quantity.eq(99)).execute(conn)
    });
    assert!(changed.is_err(), "the database refuses to change a purchase");

    // Scope: officers buy for their own organisation only.
    let (_, other) = app.sign_in(Role::Officer, Some("RJ1")).await;
    assert_eq!(post(&app, &other, path, purchase(current, "2026-11-01", musts.clone())).await.0, 404);
    assert_eq!(app.get(path).bearer_auth(&other).send().await.unwrap().status(), 404);
    let (_, author) = app.sign_in(Role::Exemplar, Some("RM3")).await;
    assert_eq!(
        post(&app, &author, "/v1/organisations/RM3/purchases", purchase(current, "2026-11-01", musts))
            .await
            .0,
        403
    );
}

async fn the_compliance_report_adds_up(app: TestApp) {
    let (_, officer) = app.sign_in(Role::Officer, Some("RR8")).await;
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    let endpoint = seeded_standard(&app, &officer, "Endpoint protection for locally managed devices").await;
    let id = endpoint["id"].as_i64().unwrap();
    let version = endpoint["published_version"].as_i64().unwrap();
    let detail = get_json(&app, &officer, &format!("/v1/standards/{id}/versions/{version}")).await;
    let musts: Vec<Value> = detail["requirements"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["level"] == "MUST")
        .map(|r| json!({"requirement": r["code"], "met": true}))
        .collect();
    let good = product_id(&app, &officer, "EXSEC-EPS-7").await;
    let weak = product_id(&app, &officer, "EXSEC-LAV-3").await;
    let buy = |product: i64, quantity: i64, pence: i64| {
        json!({"product_id": product, "category": "endpoint-protection", "standard_id": id, "version": version,
               "purchased_on": "2026-11-20", "quantity": quantity, "unit_cost_pence": pence,
               "order_reference": "PO-EPP", "declarations": musts.clone()})
    };
    let (_, first) = post(&app, &officer, "/v1/organisations/RR8/purchases", buy(good, 100, 500)).await;
    assert_eq!(first["compliant"], true);
    // The weak product fails DTAC and support length: non-compliant although declared met.
    let (_, second) = post(&app, &officer, "/v1/organisations/RR8/purchases", buy(weak, 10, 300)).await;
    assert_eq!(second["compliant"], false);
    // Another trust buys too, so "officers see their own" below is a real scoping check.
    let (_, rj1_officer) = app.sign_in(Role::Officer, Some("RJ1")).await;
    let (status, _) = post(&app, &rj1_officer, "/v1/organisations/RJ1/purchases", buy(good, 5, 500)).await;
    assert_eq!(status, 201);
    let national = get_json(&app, &admin, "/v1/reports/compliance").await;
    assert!(national["lines"].as_array().unwrap().iter().any(|l| l["organisation_code"] == "RJ1"));

    let report = get_json(&app, &admin, "/v1/reports/compliance?organisation=RR8").await;
    let line = report["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["category"] == "endpoint-protection")
        .unwrap()
        .clone();
    assert_eq!(line["purchases"], 2);
    assert_eq!(line["compliant"], 1);
    assert_eq!(line["non_compliant"], 1);
    assert_eq!(line["spend_pence"], 100 * 500 + 10 * 300);
    assert_eq!(line["against_superseded_versions"], 0);
    assert_eq!(line["region"], "North East and Yorkshire");

    // Once a new version is published, those purchases were made against a superseded one.
    let (_, author) = app.sign_in(Role::Exemplar, Some("RRK")).await;
    let (_, draft) = post(&app, &author, &format!("/v1/standards/{id}/versions"), json!(null)).await;
    assert_eq!(
        post(&app, &author, &format!("/v1/standards/{id}/versions/{}/publish", draft["number"]), json!(null))
            .await
            .0,
        200
    );
    let report = get_json(&app, &officer, "/v1/reports/compliance").await;
    let line = report["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["category"] == "endpoint-protection")
        .unwrap()
        .clone();
    assert_eq!(line["against_superseded_versions"], 2);
    assert!(
        report["lines"].as_array().unwrap().iter().all(|l| l["organisation_code"] == "RR8"),
        "officers see their own"
    );
    let regional = get_json(&app, &admin, "/v1/reports/compliance?region=London").await;
    let regional = regional["lines"].as_array().unwrap();
    assert!(!regional.is_empty() && regional.iter().all(|l| l["organisation_code"] == "RJ1"), "{regional:?}");
}

/// Assesses `sku` against the published version of the seeded standard `title`, every
/// requirement declared met; answers the standard's id, the version and the assessment's id.
async fn assessed(app: &TestApp, exemplar: &str, title: &str, sku: &str) -> (i64, i64, i64) {
    let standard = seeded_standard(app, exemplar, title).await;
    let (id, version) = (standard["id"].as_i64().unwrap(), standard["published_version"].as_i64().unwrap());
    let detail = get_json(app, exemplar, &format!("/v1/standards/{id}/versions/{version}")).await;
    let outcomes: Vec<Value> = detail["requirements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| json!({"requirement": r["code"], "met": true}))
        .collect();
    let product = product_id(app, exemplar, sku).await;
    let body = json!({"product_id": product, "outcomes": outcomes, "evidence": ["assessment.pdf"]});
    let assessment =
        app.created(exemplar, &format!("/v1/standards/{id}/versions/{version}/assessments"), &body).await;
    (id, version, assessment["id"].as_i64().unwrap())
}

/// Stored JSON that no longer reads back (an assessment's outcomes, a requirement's criterion)
/// is a corrupt record: reading it is an internal error, never an empty list or a requirement
/// with no check, and the other standards' records still read.
async fn corrupt_stored_assessments_and_criteria_are_internal_errors(app: TestApp) {
    use db::schema::{assessments, requirements};
    use diesel::prelude::*;
    let (_, devices_author) = app.sign_in(Role::Exemplar, Some("RM3")).await;
    let (_, endpoint_author) = app.sign_in(Role::Exemplar, Some("RRK")).await;
    let (devices, devices_version, corrupt) =
        assessed(&app, &devices_author, "Medical device security", "EXIMG-US-9").await;
    let (endpoint, endpoint_version, sound) =
        assessed(&app, &endpoint_author, "Endpoint protection for locally managed devices", "EXSEC-EPS-7")
            .await;
    let assessments_of = |id: i64, version: i64| format!("/v1/standards/{id}/versions/{version}/assessments");

    app.with_connection(|conn| {
        diesel::update(assessments::table.find(corrupt))
            .set(assessments::outcomes.eq(r#"[{"requirement": "corrupt-outcome-51c2", "met": "#))
            .execute(conn)
    })
    .unwrap();
    let path = format!("{}?include_nonconforming=true", assessments_of(devices, devices_version));
    expect_bare_internal_error(app.get(&path).bearer_auth(&devices_author), "corrupt-outcome-51c2").await;
    let others = get_json(&app, &endpoint_author, &assessments_of(endpoint, endpoint_version)).await;
    assert_eq!(others.as_array().unwrap().len(), 1, "{others}");
    assert_eq!(others[0]["id"], sound);
    assert!(!others[0]["outcomes"].as_array().unwrap().is_empty());

    // The requirements of a published version never change (a trigger refuses it): corrupt a
    // draft's, copied from the published version.
    let (_, draft) =
        post(&app, &devices_author, &format!("/v1/standards/{devices}/versions"), json!(null)).await;
    let draft_number = draft["number"].as_i64().unwrap();
    app.with_connection(|conn| {
        let requirement: i64 = requirements::table
            .inner_join(db::schema::standard_versions::table)
            .filter(db::schema::standard_versions::standard_id.eq(devices))
            .filter(db::schema::standard_versions::number.eq(draft_number as i32))
            .filter(requirements::code.eq("MDS-01"))
            .select(requirements::id)
            .first(conn)?;
        diesel::update(requirements::table.find(requirement))
            .set(requirements::criterion.eq(Some(r#"{"kind": "corrupt-criterion-9e0d"}"#)))
            .execute(conn)
    })
    .unwrap();
    let draft_path = format!("/v1/standards/{devices}/versions/{draft_number}");
    expect_bare_internal_error(app.get(&draft_path).bearer_auth(&devices_author), "corrupt-criterion-9e0d")
        .await;
    let published =
        get_json(&app, &devices_author, &format!("/v1/standards/{devices}/versions/{devices_version}")).await;
    let mds_01 =
        published["requirements"].as_array().unwrap().iter().find(|r| r["code"] == "MDS-01").unwrap();
    assert_eq!(mds_01["criterion"], json!({"kind": "mds2_supplied"}), "{published}");
}

on_both_engines!(
    requirement_codes_are_counted_in_characters,
    an_exemplar_runs_the_whole_lifecycle,
    only_the_publishers_exemplars_may_publish,
    two_concurrent_publishes_leave_one_published_version,
    assessments_evaluate_machine_checkable_criteria,
    purchases_are_validated_against_the_current_version,
    the_compliance_report_adds_up,
    corrupt_stored_assessments_and_criteria_are_internal_errors,
);

/// A version published in the last second of a day (times are stored to the microsecond) was
/// published on that day: it is the guidance for that day, from the database and from the read
/// model, and the version an assessment dated that day is held to.
async fn a_version_published_in_a_days_last_second_counts_for_that_day(app: TestApp) {
    use db::schema::{standard_versions, standards};
    use diesel::prelude::*;
    let (version_id, standard_id, category): (i64, i64, String) = app
        .db()
        .read(|conn| {
            Ok(standard_versions::table
                .inner_join(standards::table)
                .filter(standard_versions::status.eq("published"))
                // A category no national line covers, so that coverage lists its standards.
                .filter(standards::category.eq("medical-device-software"))
                .select((standard_versions::id, standards::id, standards::category))
                .first(conn)?)
        })
        .unwrap();
    let day: chrono::NaiveDate = "2019-06-30".parse().unwrap();
    let last_second = day.and_hms_micro_opt(23, 59, 59, 500_000).unwrap();
    app.db()
        .transaction(|conn| {
            diesel::update(standard_versions::table.find(version_id))
                .set(standard_versions::published_at.eq(last_second))
                .execute(conn)?;
            Ok(())
        })
        .unwrap();
    let published = |on: chrono::NaiveDate| {
        app.db()
            .read(|conn| db::guidance::published_for_category(conn, &category, on))
            .unwrap()
            .iter()
            .any(|g| g.version_id == version_id)
    };
    assert!(published(day), "published at {last_second}, it is guidance on {day}");
    assert!(!published(day.pred_opt().unwrap()), "but not the day before");
    let held_to = app.db().read(|conn| db::standards::published_on(conn, standard_id, day)).unwrap();
    assert_eq!(held_to.map(|v| v.id), Some(version_id), "the version an assessment on {day} is held to");
    // The read model, reloaded, agrees.
    let model = db::read_model::ReadModel::load(app.db()).unwrap();
    let product: Option<i64> = app
        .db()
        .read(|conn| {
            use db::schema::products;
            Ok(products::table
                .filter(products::category.eq(&category))
                .select(products::id)
                .first(conn)
                .optional()?)
        })
        .unwrap();
    let answer = model.coverage("RR8", db::coverage::Subject::Product(product.unwrap(), None), day).unwrap();
    assert!(
        answer.standards.iter().any(|g| g.version_id == version_id),
        "the read model on {day}: {answer:?}"
    );
}

on_both_engines!(a_version_published_in_a_days_last_second_counts_for_that_day);
