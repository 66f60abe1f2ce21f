//! The catalogue: organisations, suppliers and products, agreements and entitlements, and the
//! coverage answer, on both engines.

use catalogue_tests::{Role, TestApp, on_both_engines};
use serde_json::{Value, json};

async fn get_json(app: &TestApp, token: &str, path: &str) -> (u16, Value) {
    let response = app.get(path).bearer_auth(token).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Walks every page of a list and returns all items, checking the page size on the way.
async fn all_pages(app: &TestApp, token: &str, path: &str, limit: usize) -> Vec<Value> {
    let separator = if path.contains('?') { '&' } else { '?' };
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("{path}{separator}limit={limit}&cursor={c}"),
            None => format!("{path}{separator}limit={limit}"),
        };
        let (status, page) = get_json(app, token, &url).await;
        assert_eq!(status, 200, "{url}: {page}");
        let page_items = page["items"].as_array().unwrap();
        assert!(page_items.len() <= limit);
        items.extend(page_items.iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => {
                assert_eq!(page_items.len(), limit, "only the last page may be short");
                cursor = Some(next.to_owned());
            }
            None => return items,
        }
    }
}

async fn product_id(app: &TestApp, token: &str, sku: &str) -> i64 {
    let (_, page) = get_json(app, token, &format!("/v1/products?q={sku}")).await;
    page["items"].as_array().unwrap().iter().find(|p| p["sku"] == sku).unwrap()["id"].as_i64().unwrap()
}

async fn organisations_are_listed_filtered_and_paged(app: TestApp) {
    let (_, token) = app.sign_in(Role::Officer, Some("RR8")).await;
    let everything = all_pages(&app, &token, "/v1/organisations?include_closed=true", 500).await;
    let paged = all_pages(&app, &token, "/v1/organisations?include_closed=true", 4).await;
    assert_eq!(paged, everything, "pages hold every organisation once, in order");
    let codes: Vec<&str> = everything.iter().map(|o| o["code"].as_str().unwrap()).collect();
    let mut sorted = codes.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(codes, sorted, "ordered by code, no duplicates");
    for listed in ["RR8", "RJ1", "RTH", "RBA", "RC1"] {
        assert!(codes.contains(&listed), "{listed} is seeded");
    }

    let open = all_pages(&app, &token, "/v1/organisations", 3).await;
    assert!(open.iter().all(|o| o["closed"] == false), "closed ones are left out by default");
    assert_eq!(open.len() + 2, everything.len(), "exactly the two predecessors are closed");

    let (_, exemplars) = get_json(&app, &token, "/v1/organisations?exemplar=true&kind=trust").await;
    let exemplars = exemplars["items"].as_array().unwrap();
    assert!(exemplars.len() >= 10);
    assert!(exemplars.iter().all(|o| o["exemplar"] == true && o["kind"] == "trust"));

    // Several trusts from ODS have Leeds in their names (RGD, Leeds and York Partnership, sorts
    // first): the search names the one this test means.
    let (_, leeds) = get_json(&app, &token, "/v1/organisations?q=LEEDS%20TEACHING").await;
    assert_eq!(leeds["items"][0]["code"], "RR8");
    let (_, london) = get_json(&app, &token, "/v1/organisations?region=London").await;
    assert!(london["items"].as_array().unwrap().iter().all(|o| o["region"] == "London"));
    let (_, wildcard) = get_json(&app, &token, "/v1/organisations?q=%25").await;
    assert_eq!(wildcard["items"].as_array().unwrap().len(), 0, "% is a character, not a wildcard");

    let response = app.get("/v1/organisations/rba").bearer_auth(&token).send().await.unwrap();
    assert_eq!(response.status(), 200, "a closed organisation still answers");
    assert!(response.headers().get("etag").is_some());
    let predecessor: Value = response.json().await.unwrap();
    assert_eq!(predecessor["closed"], true);
    assert_eq!(predecessor["successor_code"], "RH5");

    assert_eq!(get_json(&app, &token, "/v1/organisations/ZZZ9").await.0, 404);
    assert_eq!(get_json(&app, &token, "/v1/organisations?limit=0").await.0, 400);
    assert_eq!(get_json(&app, &token, "/v1/organisations?limit=501").await.0, 400);
    assert_eq!(get_json(&app, &token, "/v1/organisations?kind=castle").await.0, 400);
    assert_eq!(get_json(&app, &token, "/v1/organisations?colour=blue").await.0, 400);
}

async fn admins_create_and_update_organisations(app: TestApp) {
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    // A code ODS does not list (R0A, used here before, is Manchester University NHS FT, which
    // the embedded default now loads from ODS's etr.csv).
    let body =
        json!({"code": "r9z", "name": "Example University NHS FT", "kind": "trust", "region": "North West"});
    let created = app.post("/v1/organisations").bearer_auth(&admin).json(&body).send().await.unwrap();
    assert_eq!(created.status(), 201);
    let etag = created.headers()["etag"].to_str().unwrap().to_owned();
    let organisation: Value = created.json().await.unwrap();
    assert_eq!(organisation["code"], "R9Z");
    assert_eq!(
        app.post("/v1/organisations").bearer_auth(&admin).json(&body).send().await.unwrap().status(),
        409
    );
    let bad_code = json!({"code": "r-0", "name": "X", "kind": "trust"});
    assert_eq!(
        app.post("/v1/organisations").bearer_auth(&admin).json(&bad_code).send().await.unwrap().status(),
        422
    );
    let bad_kind = json!({"code": "R0B", "name": "X", "kind": "castle"});
    assert_eq!(
        app.post("/v1/organisations").bearer_auth(&admin).json(&bad_kind).send().await.unwrap().status(),
        422
    );

    let url = app.url("/v1/organisations/R9Z");
    let patch = json!({"exemplar": true});
    assert_eq!(app.client.patch(&url).bearer_auth(&admin).json(&patch).send().await.unwrap().status(), 428);
    let updated = app
        .client
        .patch(&url)
        .bearer_auth(&admin)
        .header("if-match", &etag)
        .json(&patch)
        .send()
        .await
        .unwrap();
    assert_eq!(updated.status(), 200);
    assert_eq!(updated.json::<Value>().await.unwrap()["exemplar"], true);
    let stale =
        app.client.patch(&url).bearer_auth(&admin).header("if-match", &etag).json(&json!({"name": "Lost"}));
    assert_eq!(stale.send().await.unwrap().status(), 412);
    // A malformed If-Match is the client's bug (400), not a stale copy (412).
    for malformed in ["", "abc", "\"1", "*, \"1\""] {
        let request = app
            .client
            .patch(&url)
            .bearer_auth(&admin)
            .header("if-match", malformed)
            .json(&json!({"name": "Lost"}));
        assert_eq!(request.send().await.unwrap().status(), 400, "{malformed:?}");
    }
    let (_, after) = get_json(&app, &admin, "/v1/organisations/R9Z").await;
    assert_eq!(after["name"], "Example University NHS FT", "the stale update changed nothing");
}

async fn products_are_filtered_by_lifecycle_licensing_and_text(app: TestApp) {
    // A product licensed nationally today, made by the test (the shipped seeds license no Windows).
    app.license_nationally("MS-WIN10-ENT", None).await;
    let (_, token) = app.sign_in(Role::Auditor, None).await;
    let everything = all_pages(&app, &token, "/v1/products", 500).await;
    assert_eq!(all_pages(&app, &token, "/v1/products", 7).await, everything);
    let sku = |p: &Value| p["sku"].as_str().unwrap_or_default().to_owned();

    let (_, operating_systems) =
        get_json(&app, &token, "/v1/products?category=operating-system&limit=500").await;
    assert!(
        operating_systems["items"].as_array().unwrap().iter().all(|p| p["category"] == "operating-system")
    );

    // Who still ran unsupported software the day after Windows 7 support ended.
    let (_, unsupported) =
        get_json(&app, &token, "/v1/products?support_status=unsupported&on=2020-01-15&limit=500").await;
    let unsupported: Vec<String> = unsupported["items"].as_array().unwrap().iter().map(sku).collect();
    assert!(unsupported.contains(&"MS-WIN7-ENT".to_owned()));
    assert!(unsupported.contains(&"MS-WINXP-PRO".to_owned()));
    assert!(!unsupported.contains(&"MS-WIN10-ENT".to_owned()));
    let (_, day_before) = get_json(&app, &token, "/v1/products?q=MS-WIN7-ENT&on=2020-01-14").await;
    assert_eq!(day_before["items"][0]["support_status"], "extended");
    let (_, extended) =
        get_json(&app, &token, "/v1/products?support_status=extended&on=2020-01-14&limit=500").await;
    assert!(extended["items"].as_array().unwrap().iter().any(|p| p["sku"] == "MS-WIN7-ENT"));
    let (_, supported) = get_json(&app, &token, "/v1/products?support_status=supported&limit=500").await;
    assert!(supported["items"].as_array().unwrap().iter().all(|p| p["support_status"] == "supported"));

    let (_, licensed) = get_json(&app, &token, "/v1/products?nationally_licensed=true&limit=500").await;
    let licensed: Vec<String> = licensed["items"].as_array().unwrap().iter().map(sku).collect();
    assert!(licensed.contains(&"MS-WIN10-ENT".to_owned()));
    assert!(!licensed.contains(&"MS-WIN7-ENT".to_owned()));
    let (_, local) = get_json(&app, &token, "/v1/products?nationally_licensed=false&limit=500").await;
    let local: Vec<String> = local["items"].as_array().unwrap().iter().map(sku).collect();
    assert_eq!(licensed.len() + local.len(), everything.len(), "the two halves partition the catalogue");
    let (_, back_then) =
        get_json(&app, &token, "/v1/products?nationally_licensed=true&on=2019-01-01&limit=500").await;
    assert!(
        back_then["items"].as_array().unwrap().iter().any(|p| p["sku"] == "MS-WDATP"),
        "the 2018 agreement"
    );

    let (_, search) = get_json(&app, &token, "/v1/products?q=enterprise").await;
    assert!(search["items"].as_array().unwrap().iter().all(|p| {
        let text = format!("{} {} {}", p["name"], p["edition"], p["sku"]).to_lowercase();
        text.contains("enterprise")
    }));
    let id = product_id(&app, &token, "MS-WIN10-ENT").await;
    let response =
        app.get(&format!("/v1/products/{id}?on=2025-10-14")).bearer_auth(&token).send().await.unwrap();
    assert!(response.headers().get("etag").is_some());
    assert_eq!(response.json::<Value>().await.unwrap()["support_status"], "extended");
    assert_eq!(get_json(&app, &token, "/v1/products/999999").await.0, 404);
    assert_eq!(get_json(&app, &token, "/v1/products/abc").await.0, 404);
    assert_eq!(get_json(&app, &token, "/v1/products?on=yesterday").await.0, 400);
}

async fn admins_manage_suppliers_and_products(app: TestApp) {
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    let supplier: Value = app
        .post("/v1/suppliers")
        .bearer_auth(&admin)
        .json(&json!({"name": "Example Scanners Ltd"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let supplier_id = supplier["id"].as_i64().unwrap();
    let product = json!({"supplier_id": supplier_id, "name": "ScanView", "edition": "Pro", "version": "3",
                         "sku": "EXSCAN-3", "category": "medical-device-software",
                         "mainstream_support_ends_on": "2030-01-01", "extended_support_ends_on": "2032-01-01"});
    let created = app.post("/v1/products").bearer_auth(&admin).json(&product).send().await.unwrap();
    assert_eq!(created.status(), 201);
    let etag = created.headers()["etag"].to_str().unwrap().to_owned();
    let id = created.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    assert_eq!(
        app.post("/v1/products").bearer_auth(&admin).json(&product).send().await.unwrap().status(),
        409
    );

    let mut bad = product.clone();
    bad["sku"] = json!("EXSCAN-4");
    bad["category"] = json!("Medical Devices");
    assert_eq!(app.post("/v1/products").bearer_auth(&admin).json(&bad).send().await.unwrap().status(), 422);
    bad["category"] = json!("medical-device-software");
    bad["mainstream_support_ends_on"] = json!("2040-01-01");
    assert_eq!(app.post("/v1/products").bearer_auth(&admin).json(&bad).send().await.unwrap().status(), 422);
    bad["mainstream_support_ends_on"] = json!(null);
    bad["supplier_id"] = json!(999999);
    assert_eq!(app.post("/v1/products").bearer_auth(&admin).json(&bad).send().await.unwrap().status(), 422);

    let url = app.url(&format!("/v1/products/{id}"));
    let change = json!({"extended_support_ends_on": "2020-01-01", "mainstream_support_ends_on": null});
    let updated = app
        .client
        .patch(&url)
        .bearer_auth(&admin)
        .header("if-match", &etag)
        .json(&change)
        .send()
        .await
        .unwrap();
    assert_eq!(updated.status(), 200);
    assert_eq!(updated.json::<Value>().await.unwrap()["support_status"], "unsupported");
    let stale = app.client.patch(&url).bearer_auth(&admin).header("if-match", &etag).json(&change);
    assert_eq!(stale.send().await.unwrap().status(), 412);
}

async fn agreements_and_entitlements_keep_their_history(app: TestApp) {
    let (_, token) = app.sign_in(Role::Officer, Some("RR8")).await;
    let current = all_pages(&app, &token, "/v1/agreements", 2).await;
    assert!(current.iter().all(|a| a["ended"] == false));
    let everything = all_pages(&app, &token, "/v1/agreements?include_ended=true", 2).await;
    assert!(everything.len() > current.len(), "ended agreements are kept and listed on request");
    let (_, expired) = get_json(&app, &token, "/v1/agreements?status=expired").await;
    assert!(!expired["items"].as_array().unwrap().is_empty(), "asking for a status shows it");
    let (_, rm6068) = get_json(&app, &token, "/v1/agreements?framework_reference=RM6068").await;
    let agreement = &rm6068["items"][0];
    assert_eq!(agreement["status"], "active");
    let agreement_id = agreement["id"].as_i64().unwrap();

    let lines = all_pages(&app, &token, &format!("/v1/agreements/{agreement_id}/entitlements"), 3).await;
    assert!(lines.len() >= 5);
    let capped = lines.iter().find(|l| l["seat_cap"].is_i64()).unwrap();
    assert_eq!(
        capped["seats_remaining"],
        capped["seat_cap"].as_i64().unwrap() - capped["seats_allocated"].as_i64().unwrap()
    );
    let uncapped = lines.iter().find(|l| l["seat_cap"].is_null()).unwrap();
    assert!(uncapped["seats_remaining"].is_null());
    let response =
        app.get(&format!("/v1/entitlements/{}", capped["id"])).bearer_auth(&token).send().await.unwrap();
    assert!(response.headers().get("etag").is_some());
    assert_eq!(response.json::<Value>().await.unwrap()["id"], capped["id"]);
    assert_eq!(get_json(&app, &token, "/v1/agreements/999999/entitlements").await.0, 404);
    assert_eq!(get_json(&app, &token, "/v1/entitlements/999999").await.0, 404);
}

async fn admins_write_agreements_and_entitlements(app: TestApp) {
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    let (_, suppliers) = get_json(&app, &admin, "/v1/suppliers").await;
    let microsoft = suppliers["items"].as_array().unwrap().iter().find(|s| s["name"] == "Microsoft").unwrap()
        ["id"]
        .clone();
    let body = json!({"supplier_id": microsoft, "reference": "TEST-2026", "title": "Test agreement",
                      "framework_reference": "RM6068", "starts_on": "2026-01-01", "ends_on": "2027-12-31",
                      "funding_model": "central", "status": "draft", "eligible_kinds": ["trust", "icb"]});
    let created = app.post("/v1/agreements").bearer_auth(&admin).json(&body).send().await.unwrap();
    assert_eq!(created.status(), 201);
    let etag = created.headers()["etag"].to_str().unwrap().to_owned();
    let id = created.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    assert_eq!(
        app.post("/v1/agreements").bearer_auth(&admin).json(&body).send().await.unwrap().status(),
        409
    );

    let product = product_id(&app, &admin, "MS-WIN11-ENT").await;
    let line = json!({"product_id": product, "tier": "top_up", "metric": "per_device", "seat_cap": 10,
                      "eligible_kinds": ["trust"], "starts_on": "2026-01-01", "ends_on": "2027-12-31",
                      "obligations": [{"description": "Enrol devices in Defender", "due_on": "2026-06-30"}]});
    let entitlements = format!("/v1/agreements/{id}/entitlements");
    let created = app.post(&entitlements).bearer_auth(&admin).json(&line).send().await.unwrap();
    assert_eq!(created.status(), 201);
    let entitlement: Value = created.json().await.unwrap();
    assert_eq!(entitlement["obligations"][0]["due_on"], "2026-06-30");
    assert_eq!(entitlement["seats_remaining"], 10);
    let mut outside = line.clone();
    outside["ends_on"] = json!("2029-01-01");
    assert_eq!(
        app.post(&entitlements).bearer_auth(&admin).json(&outside).send().await.unwrap().status(),
        422
    );
    let mut not_admitted = line.clone();
    not_admitted["eligible_kinds"] = json!(["gp_practice"]);
    assert_eq!(
        app.post(&entitlements).bearer_auth(&admin).json(&not_admitted).send().await.unwrap().status(),
        422
    );
    let mut bad_tier = line.clone();
    bad_tier["tier"] = json!("platinum");
    assert_eq!(
        app.post(&entitlements).bearer_auth(&admin).json(&bad_tier).send().await.unwrap().status(),
        422
    );

    // Status moves forward only; nothing is deleted.
    let url = app.url(&format!("/v1/agreements/{id}"));
    let activate = app
        .client
        .patch(&url)
        .bearer_auth(&admin)
        .header("if-match", &etag)
        .json(&json!({"status": "active"}));
    let activated = activate.send().await.unwrap();
    assert_eq!(activated.status(), 200);
    let back =
        app.client.patch(&url).bearer_auth(&admin).header("if-match", "*").json(&json!({"status": "draft"}));
    assert_eq!(back.send().await.unwrap().status(), 409);
    assert_eq!(app.client.delete(&url).bearer_auth(&admin).send().await.unwrap().status(), 405);

    // The cap cannot drop below what is allocated under `block`.
    let entitlement_id = entitlement["id"].as_i64().unwrap();
    app.with_connection(|conn| {
        use db::schema::entitlements::dsl::*;
        use diesel::prelude::*;
        diesel::update(entitlements.find(entitlement_id)).set(seats_allocated.eq(8)).execute(conn).unwrap();
    });
    let url = app.url(&format!("/v1/entitlements/{entitlement_id}"));
    let lower =
        app.client.patch(&url).bearer_auth(&admin).header("if-match", "*").json(&json!({"seat_cap": 5}));
    let refused = lower.send().await.unwrap();
    assert_eq!(refused.status(), 409);
    assert!(refused.json::<Value>().await.unwrap()["detail"].as_str().unwrap().contains("8 seats"));
    let flag = json!({"seat_cap": 5, "over_allocation_policy": "allow_and_flag"});
    let flagged =
        app.client.patch(&url).bearer_auth(&admin).header("if-match", "*").json(&flag).send().await.unwrap();
    assert_eq!(flagged.status(), 200);
    let flagged: Value = flagged.json().await.unwrap();
    assert_eq!(flagged["seats_over_cap"], 3, "the excess is flagged for true-up");
    assert_eq!(flagged["seats_remaining"], 0);
}

async fn coverage_answers_the_three_decisions_with_warnings(app: TestApp) {
    let (_, officer) = app.sign_in(Role::Officer, Some("RR8")).await;
    let win10 = product_id(&app, &officer, "MS-WIN10-ENT").await;
    let win7 = product_id(&app, &officer, "MS-WIN7-ENT").await;

    // Windows 10 Enterprise: licensed nationally under an agreement from June 2023 to March 2028
    // (made here: the shipped seeds license no Windows today), but past support.
    let (agreement, _) = app.license_nationally("MS-WIN10-ENT", Some("2028-03-31")).await;
    let (status, answer) =
        get_json(&app, &officer, &format!("/v1/coverage?organisation=RR8&product={win10}")).await;
    assert_eq!(status, 200);
    assert_eq!(answer["decision"], "nationally_licensed");
    assert_eq!(answer["licences"][0]["agreement_id"], agreement);
    assert_eq!(answer["licences"][0]["agreement_reference"], "TEST-NATIONAL-MS-WIN10-ENT");
    assert!(answer["standards"].as_array().unwrap().is_empty());
    // In April 2019, under the 2018 agreement, with its obligations.
    let (_, in_2019) =
        get_json(&app, &officer, &format!("/v1/coverage?organisation=RR8&product={win10}&on=2019-04-01"))
            .await;
    assert_eq!(in_2019["decision"], "nationally_licensed");
    assert_eq!(in_2019["licences"][0]["agreement_reference"], "NHSE-MS-W10E-2018");
    let obligations = in_2019["licences"][0]["obligations"].as_array().unwrap();
    assert!(obligations.iter().any(|o| o["due_on"] == "2020-01-14"));
    assert!(in_2019["warnings"].as_array().unwrap().is_empty(), "{}", in_2019["warnings"]);
    // Support ending within 12 months.
    let (_, in_2025) =
        get_json(&app, &officer, &format!("/v1/coverage?organisation=RR8&product={win10}&on=2025-01-01"))
            .await;
    assert!(in_2025["warnings"].as_array().unwrap().iter().any(|w| w["code"] == "support_ending"));
    // After every agreement has ended.
    let (_, in_2030) =
        get_json(&app, &officer, &format!("/v1/coverage?organisation=RR8&product={win10}&on=2030-01-01"))
            .await;
    // No agreement and no standard for operating systems: no guidance (issue 17 makes this a stop).
    assert_eq!(in_2030["decision"], "no_guidance");
    assert!(in_2030["warnings"].as_array().unwrap().iter().any(|w| w["code"] == "entitlement_ended"));

    // Windows 7 warns it is unsupported.
    let (_, windows7) =
        get_json(&app, &officer, &format!("/v1/coverage?organisation=RR8&product={win7}")).await;
    assert!(windows7["warnings"].as_array().unwrap().iter().any(|w| w["code"] == "unsupported"));

    // Medical device software is bought locally against the exemplar's published standard.
    let (_, devices) =
        get_json(&app, &officer, "/v1/coverage?organisation=RR8&category=medical-device-software").await;
    assert_eq!(devices["decision"], "buy_locally");
    let standard = &devices["standards"][0];
    assert_eq!(standard["publisher_code"], "RM3");
    assert!(standard["requirements"].as_array().unwrap().iter().any(|r| r["level"] == "MUST"));

    // A category nobody has written guidance for.
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    let (_, suppliers) = get_json(&app, &admin, "/v1/suppliers").await;
    let supplier = suppliers["items"][0]["id"].clone();
    let new =
        json!({"supplier_id": supplier, "name": "Rota planner", "sku": "ROTA-1", "category": "workforce"});
    let rota: Value =
        app.post("/v1/products").bearer_auth(&admin).json(&new).send().await.unwrap().json().await.unwrap();
    let (_, nothing) =
        get_json(&app, &officer, &format!("/v1/coverage?organisation=RR8&product={}", rota["id"])).await;
    assert_eq!(nothing["decision"], "no_guidance");
    assert!(
        nothing["licences"].as_array().unwrap().is_empty()
            && nothing["standards"].as_array().unwrap().is_empty()
    );
}

async fn coverage_warns_about_eligibility_and_closure(app: TestApp) {
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    let defender = product_id(&app, &admin, "MS-MDE-P2").await;
    let practice = json!({"code": "Y99999", "name": "Example Surgery", "kind": "gp_practice"});
    assert_eq!(
        app.post("/v1/organisations").bearer_auth(&admin).json(&practice).send().await.unwrap().status(),
        201
    );
    let (_, answer) =
        get_json(&app, &admin, &format!("/v1/coverage?organisation=Y99999&product={defender}")).await;
    // Defender for Endpoint is not for GP practices: they buy against the endpoint standard.
    assert_eq!(answer["decision"], "buy_locally", "Defender for Endpoint is not for GP practices");
    assert!(answer["warnings"].as_array().unwrap().iter().any(|w| w["code"] == "not_eligible"));
    let (_, trust) =
        get_json(&app, &admin, &format!("/v1/coverage?organisation=RR8&product={defender}")).await;
    assert_eq!(trust["decision"], "nationally_licensed");
    assert!(!trust["warnings"].as_array().unwrap().iter().any(|w| w["code"] == "no_seats_remaining"));
    // A line with no seats left is still the answer, with the warning.
    let line = trust["licences"][0]["entitlement_id"].as_i64().unwrap();
    let full = app
        .patch_any_version(&format!("/v1/entitlements/{line}"))
        .bearer_auth(&admin)
        .json(&json!({"seat_cap": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(full.status(), 200);
    let (_, full) =
        get_json(&app, &admin, &format!("/v1/coverage?organisation=RR8&product={defender}")).await;
    assert_eq!(full["decision"], "nationally_licensed");
    assert_eq!(full["licences"][0]["seats_remaining"], 0);
    assert!(full["warnings"].as_array().unwrap().iter().any(|w| w["code"] == "no_seats_remaining"), "{full}");

    let (_, closed) =
        get_json(&app, &admin, &format!("/v1/coverage?organisation=RBA&product={defender}")).await;
    assert!(closed["warnings"].as_array().unwrap().iter().any(|w| w["code"] == "organisation_closed"));
    assert_eq!(closed["decision"], "buy_locally", "a closed organisation claims nothing");
}

async fn coverage_is_scoped_to_the_officers_organisation(app: TestApp) {
    let (_, officer) = app.sign_in(Role::Officer, Some("RJ1")).await;
    let (_, auditor) = app.sign_in(Role::Auditor, None).await;
    let (_, exemplar) = app.sign_in(Role::Exemplar, Some("RM3")).await;
    let win10 = product_id(&app, &officer, "MS-WIN10-ENT").await;
    let path = |org: &str| format!("/v1/coverage?organisation={org}&product={win10}");
    assert_eq!(get_json(&app, &officer, &path("RR8")).await.0, 404, "another trust's answer is not shown");
    assert_eq!(get_json(&app, &officer, &path("RJ1")).await.0, 200);
    assert_eq!(get_json(&app, &officer, &path("rj1")).await.0, 200);
    assert_eq!(get_json(&app, &auditor, &path("RR8")).await.0, 200);
    assert_eq!(get_json(&app, &exemplar, &path("RR8")).await.0, 404);
    assert_eq!(get_json(&app, &exemplar, &path("RM3")).await.0, 200);

    let both = format!("/v1/coverage?organisation=RJ1&product={win10}&category=operating-system");
    assert_eq!(get_json(&app, &officer, &both).await.0, 400);
    assert_eq!(get_json(&app, &officer, "/v1/coverage?organisation=RJ1").await.0, 400);
    assert_eq!(get_json(&app, &officer, "/v1/coverage?organisation=RJ1&product=999999").await.0, 404);
    assert_eq!(get_json(&app, &officer, "/v1/coverage?organisation=RJ1&category=no-such-thing").await.0, 404);
}

/// The security test's finding: on SQLite dates past year 9999 compared as text, so the two
/// engines answered `on=+10000-01-01` differently. Such dates are now refused everywhere.
async fn dates_the_service_cannot_compare_are_refused(app: TestApp) {
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    for path in [
        "/v1/products?on=%2B10000-01-01",
        "/v1/products?support_status=unsupported&on=%2B10000-01-01",
        "/v1/coverage?organisation=RR8&product=1&on=%2B10000-01-01",
        "/v1/reports/utilisation?on=%2B10000-01-01",
        "/v1/reports/obligations?on=-0001-01-01",
    ] {
        let response = app.get(path).bearer_auth(&admin).send().await.unwrap();
        assert_eq!(response.status(), 400, "{path}");
        assert_eq!(response.headers()["content-type"], "application/problem+json");
    }
    let (status, _) = get_json(&app, &admin, "/v1/products?on=9999-12-31").await;
    assert_eq!(status, 200, "the last comparable date is fine");
    let product = product_id(&app, &admin, "MS-WIN10-ENT").await;
    let response = app
        .patch_any_version(&format!("/v1/products/{product}"))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"extended_support_ends_on": "+10000-01-01"}))
        .send()
        .await
        .unwrap();
    assert!([400, 422].contains(&response.status().as_u16()), "{}", response.status());
    let (_, after) = get_json(&app, &admin, &format!("/v1/products/{product}")).await;
    assert_ne!(after["extended_support_ends_on"], "+10000-01-01", "nothing was written");
}

on_both_engines!(
    dates_the_service_cannot_compare_are_refused,
    organisations_are_listed_filtered_and_paged,
    admins_create_and_update_organisations,
    products_are_filtered_by_lifecycle_licensing_and_text,
    admins_manage_suppliers_and_products,
    agreements_and_entitlements_keep_their_history,
    admins_write_agreements_and_entitlements,
    coverage_answers_the_three_decisions_with_warnings,
    coverage_warns_about_eligibility_and_closure,
    coverage_is_scoped_to_the_officers_organisation,
);
