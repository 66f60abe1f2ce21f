//! Security advisories, exposure, responses, the 48-hour rule, lifecycle risk and risk
//! acceptances, on both engines.

use catalogue_tests::{Role, TestApp, on_both_engines};
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

/// Claims seats of the entitlement covering `sku` today for `organisation`.
async fn hold(app: &TestApp, admin: &str, sku: &str, organisation: &str, quantity: i64) -> Value {
    let product = product_id(app, admin, sku).await;
    let coverage =
        get_json(app, admin, &format!("/v1/coverage?organisation={organisation}&product={product}")).await;
    let entitlement = coverage["licences"][0]["entitlement_id"].as_i64().unwrap();
    let (status, allocation) = post(
        app,
        admin,
        &format!("/v1/entitlements/{entitlement}/allocations"),
        json!({"organisation": organisation, "quantity": quantity}),
    )
    .await;
    assert_eq!(status, 201, "{allocation}");
    allocation
}

/// Buys a medical device product for `organisation` on `purchased_on` against the standard then.
async fn buy_device(app: &TestApp, organisation: &str, sku: &str, purchased_on: &str) {
    let (_, officer) = app.sign_in(Role::Officer, Some(organisation)).await;
    let product = product_id(app, &officer, sku).await;
    let standards = get_json(app, &officer, "/v1/standards?category=medical-device-software").await;
    let id = standards["items"][0]["id"].as_i64().unwrap();
    let standard = get_json(app, &officer, &format!("/v1/standards/{id}")).await;
    let version = standard["versions"]
        .as_array()
        .unwrap()
        .iter()
        .rfind(|v| v["published_at"].as_str().is_some_and(|p| p[..10] <= *purchased_on))
        .unwrap()["number"]
        .as_i64()
        .unwrap();
    let detail = get_json(app, &officer, &format!("/v1/standards/{id}/versions/{version}")).await;
    let declarations: Vec<Value> = detail["requirements"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["level"] == "MUST")
        .map(|r| json!({"requirement": r["code"], "met": true}))
        .collect();
    let body = json!({"product_id": product, "category": "medical-device-software", "standard_id": id, "version": version,
                      "purchased_on": purchased_on, "quantity": 3, "unit_cost_pence": 100, "order_reference": "PO-DEV",
                      "declarations": declarations});
    let (status, purchase) =
        post(app, &officer, &format!("/v1/organisations/{organisation}/purchases"), body).await;
    assert_eq!(status, 201, "{purchase}");
}

fn hours_ago(hours: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::hours(hours)).to_rfc3339()
}

async fn exposure_covers_allocations_and_purchases(app: TestApp) {
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    hold(&app, &admin, "MS-WIN10-ENT", "RR8", 500).await;
    hold(&app, &admin, "MS-WIN10-ENT", "RTH", 20).await;
    buy_device(&app, "RJ1", "EXIMG-CTWS-4", "2020-02-01").await;
    let windows = product_id(&app, &admin, "MS-WIN10-ENT").await;
    let device = product_id(&app, &admin, "EXIMG-CTWS-4").await;
    let body = json!({"reference": "CC-2026-0042", "title": "SMB remote code execution", "severity": "critical",
                      "published_at": hours_ago(1), "remediation": "Patch and disable SMBv1",
                      "links": [], "affected_product_ids": [windows, device]});
    let (status, advisory) = post(&app, &admin, "/v1/advisories", body.clone()).await;
    assert_eq!(status, 201, "{advisory}");
    assert_eq!(post(&app, &admin, "/v1/advisories", body).await.0, 409);
    let id = advisory["id"].as_i64().unwrap();
    assert!(advisory["acknowledge_by"].is_string(), "critical: a 48-hour deadline");

    let exposure = get_json(&app, &admin, &format!("/v1/advisories/{id}/exposure")).await;
    let exposed: Vec<&str> = exposure["organisations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["organisation_code"].as_str().unwrap())
        .collect();
    assert_eq!(exposed, vec!["RJ1", "RR8", "RTH"], "not yet due: ordered by code");
    let rr8 = exposure["organisations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["organisation_code"] == "RR8")
        .unwrap();
    assert_eq!(rr8["holdings"][0]["via"], "allocation");
    assert_eq!(rr8["holdings"][0]["quantity"], 500);
    assert_eq!(rr8["status"], "not_acknowledged");
    let rj1 = exposure["organisations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["organisation_code"] == "RJ1")
        .unwrap();
    assert_eq!(rj1["holdings"][0]["via"], "purchase");
    assert_eq!(rj1["holdings"][0]["product_id"], device);

    // Responses, for one's own organisation only.
    let (_, rr8_officer) = app.sign_in(Role::Officer, Some("RR8")).await;
    let base = format!("/v1/organisations/RR8/advisories/{id}");
    assert_eq!(
        post(&app, &rr8_officer, &format!("{base}/close"), json!({"remediation_note": "done"})).await.0,
        409,
        "acknowledge first"
    );
    let (status, acknowledged) = post(&app, &rr8_officer, &format!("{base}/acknowledge"), json!(null)).await;
    assert_eq!(status, 200);
    assert!(acknowledged["acknowledged_at"].is_string());
    assert_eq!(post(&app, &rr8_officer, &format!("{base}/acknowledge"), json!(null)).await.0, 409);
    let (_, applicable) = post(
        &app,
        &rr8_officer,
        &format!("{base}/applicability"),
        json!({"applicable": true, "reason": "SMBv1 in use"}),
    )
    .await;
    assert_eq!(applicable["applicable"], true);
    assert_eq!(
        post(&app, &rr8_officer, &format!("{base}/close"), json!({"remediation_note": "  "})).await.0,
        422
    );
    let (_, closed) = post(
        &app,
        &rr8_officer,
        &format!("{base}/close"),
        json!({"remediation_note": "Patched 500 devices"}),
    )
    .await;
    assert!(closed["closed_at"].is_string());
    assert_eq!(
        post(&app, &rr8_officer, &format!("/v1/organisations/RTH/advisories/{id}/acknowledge"), json!(null))
            .await
            .0,
        404
    );
    let (_, auditor) = app.sign_in(Role::Auditor, None).await;
    assert_eq!(post(&app, &auditor, &format!("{base}/acknowledge"), json!(null)).await.0, 403);
    assert_eq!(
        app.get(&format!("/v1/advisories/{id}/exposure"))
            .bearer_auth(&rr8_officer)
            .send()
            .await
            .unwrap()
            .status(),
        403
    );

    let exposure = get_json(&app, &auditor, &format!("/v1/advisories/{id}/exposure")).await;
    let statuses: Vec<(&str, &str)> = exposure["organisations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["organisation_code"].as_str().unwrap(), o["status"].as_str().unwrap()))
        .collect();
    assert_eq!(statuses, vec![("RJ1", "not_acknowledged"), ("RTH", "not_acknowledged"), ("RR8", "closed")]);
}

async fn high_severity_acknowledgements_are_due_within_48_hours(app: TestApp) {
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    hold(&app, &admin, "MS-WIN11-ENT", "RR8", 5).await;
    hold(&app, &admin, "MS-WIN11-ENT", "RJ1", 5).await;
    hold(&app, &admin, "MS-WIN11-ENT", "RTH", 5).await;
    let windows11 = product_id(&app, &admin, "MS-WIN11-ENT").await;
    let advisory = |reference: &str, severity: &str, hours: i64| {
        json!({"reference": reference, "title": "Test", "severity": severity, "published_at": hours_ago(hours),
               "remediation": "Patch", "affected_product_ids": [windows11]})
    };
    let (_, old_high) = post(&app, &admin, "/v1/advisories", advisory("CC-T-1", "high", 72)).await;
    let (_, fresh_high) = post(&app, &admin, "/v1/advisories", advisory("CC-T-2", "high", 47)).await;
    let (_, old_low) = post(&app, &admin, "/v1/advisories", advisory("CC-T-3", "low", 500)).await;
    assert!(old_low["acknowledge_by"].is_null(), "low severity has no deadline");

    // RJ1 acknowledges the old one late; RTH acknowledges the fresh one in time.
    let (_, rj1) = app.sign_in(Role::Officer, Some("RJ1")).await;
    let (_, acknowledged) = post(
        &app,
        &rj1,
        &format!("/v1/organisations/RJ1/advisories/{}/acknowledge", old_high["id"]),
        json!(null),
    )
    .await;
    // The acknowledgement's own answer says it was late, as the report and exposure do (it said
    // false before while they said true).
    assert_eq!(acknowledged["acknowledged_late"], true, "{acknowledged}");
    let (_, closed) = post(
        &app,
        &rj1,
        &format!("/v1/organisations/RJ1/advisories/{}/close", old_high["id"]),
        json!({"remediation_note": "patched"}),
    )
    .await;
    assert_eq!(closed["acknowledged_late"], true, "{closed}");
    let (_, rth) = app.sign_in(Role::Officer, Some("RTH")).await;
    post(
        &app,
        &rth,
        &format!("/v1/organisations/RTH/advisories/{}/acknowledge", fresh_high["id"]),
        json!(null),
    )
    .await;

    let report = get_json(&app, &admin, "/v1/reports/advisories").await;
    let lines = report["lines"].as_array().unwrap();
    let overdue: Vec<(i64, &str)> = lines
        .iter()
        .filter(|l| l["status"] == "overdue")
        .map(|l| (l["advisory_id"].as_i64().unwrap(), l["organisation_code"].as_str().unwrap()))
        .collect();
    let old_id = old_high["id"].as_i64().unwrap();
    assert_eq!(overdue, vec![(old_id, "RR8"), (old_id, "RTH")], "unacknowledged past 48 hours");
    assert!(lines.iter().take(2).all(|l| l["status"] == "overdue"), "overdue organisations come first");
    let late = lines.iter().find(|l| l["advisory_id"] == old_id && l["organisation_code"] == "RJ1").unwrap();
    assert_eq!(late["status"], "closed");
    assert_eq!(late["acknowledged_late"], true);
    let exposure = get_json(&app, &admin, &format!("/v1/advisories/{old_id}/exposure")).await;
    let rj1_exposed = exposure["organisations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["organisation_code"] == "RJ1")
        .unwrap();
    assert_eq!(rj1_exposed["response"]["acknowledged_late"], true);
    let fresh = lines.iter().filter(|l| l["advisory_id"] == fresh_high["id"]).collect::<Vec<_>>();
    assert!(fresh.iter().all(|l| l["status"] != "overdue"), "47 hours is within the deadline");
    let low = lines.iter().filter(|l| l["advisory_id"] == old_low["id"]).collect::<Vec<_>>();
    assert!(low.iter().all(|l| l["status"] == "not_acknowledged"), "no deadline for low severity");

    let mine = get_json(&app, &rj1, "/v1/reports/advisories").await;
    assert!(mine["lines"].as_array().unwrap().iter().all(|l| l["organisation_code"] == "RJ1"));
}

async fn the_unsupported_report_answers_for_a_date(app: TestApp) {
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    // A historical agreement line for Windows 7, claimed in 2019 (backdated: the ledger only
    // records claims as they happen).
    let (_, suppliers) = (0, get_json(&app, &admin, "/v1/suppliers").await);
    let microsoft = suppliers["items"].as_array().unwrap().iter().find(|s| s["name"] == "Microsoft").unwrap()
        ["id"]
        .clone();
    let (_, agreement) = post(&app, &admin, "/v1/agreements", json!({"supplier_id": microsoft, "reference": "TEST-W7",
        "title": "Windows 7 support", "starts_on": "2015-01-01", "ends_on": "2030-01-01", "funding_model": "central",
        "status": "active", "eligible_kinds": ["trust"]})).await;
    let windows7 = product_id(&app, &admin, "MS-WIN7-ENT").await;
    let (_, line) = post(&app, &admin, &format!("/v1/agreements/{}/entitlements", agreement["id"]), json!({"product_id": windows7,
        "tier": "national_provision", "metric": "per_device", "eligible_kinds": ["trust"], "starts_on": "2015-01-01",
        "ends_on": "2030-01-01"})).await;
    let (_, allocation) = post(
        &app,
        &admin,
        &format!("/v1/entitlements/{}/allocations", line["id"]),
        json!({"organisation": "RR8", "quantity": 1200}),
    )
    .await;
    let allocation_id = allocation["id"].as_i64().unwrap();
    app.with_connection(|conn| {
        use db::schema::allocations::dsl::*;
        use diesel::prelude::*;
        let then = chrono::NaiveDate::from_ymd_opt(2019, 6, 1).unwrap().and_hms_opt(9, 0, 0).unwrap();
        diesel::update(allocations.find(allocation_id)).set(created_at.eq(then)).execute(conn).unwrap();
    });
    buy_device(&app, "RJ1", "EXIMG-CTWS-4", "2020-02-01").await;

    let report = get_json(&app, &admin, "/v1/reports/unsupported?on=2020-01-15").await;
    let held: Vec<(&str, &str)> = report["at_risk"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["organisation_code"].as_str().unwrap(), h["product"].as_str().unwrap()))
        .collect();
    assert!(
        held.iter().any(|(code, product)| *code == "RR8" && product.starts_with("Windows 7")),
        "{held:?}"
    );
    assert!(
        !held.iter().any(|(code, _)| *code == "RJ1"),
        "the device was bought later, and still supported then"
    );
    let rr8 = report["at_risk"].as_array().unwrap().iter().find(|h| h["organisation_code"] == "RR8").unwrap();
    assert_eq!(rr8["seats"], 1200);
    let leeds = get_json(&app, &admin, "/v1/organisations/RR8").await;
    assert_eq!(rr8["organisation_name"], leeds["name"]);
    assert_eq!(rr8["region"], leeds["region"]);
    assert_eq!(rr8["support_status"], "unsupported");
    assert_eq!(report["organisations_at_risk"], 1);

    let before = get_json(&app, &admin, "/v1/reports/unsupported?on=2019-12-01").await;
    assert!(before["at_risk"].as_array().unwrap().is_empty(), "Windows 7 was still supported");
    let soon = get_json(&app, &admin, "/v1/reports/unsupported?on=2019-12-01&within_months=2").await;
    assert_eq!(soon["at_risk"][0]["organisation_code"], "RR8", "support ending within two months");
    let later = get_json(&app, &admin, "/v1/reports/unsupported?on=2021-01-01").await;
    assert!(
        later["at_risk"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["organisation_code"] == "RJ1" && h["purchased"] == 3)
    );
    assert_eq!(
        app.get("/v1/reports/unsupported?within_months=121")
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .status(),
        400
    );

    // Risk acceptances: shown apart while in force, flagged once expired.
    let (_, officer) = app.sign_in(Role::Officer, Some("RJ1")).await;
    let device = product_id(&app, &officer, "EXIMG-CTWS-4").await;
    let tomorrow = (chrono::Utc::now().date_naive() + chrono::Duration::days(1)).to_string();
    let body = json!({"product_id": device, "compensating_controls": "Isolated VLAN, no internet", "mds2_reference": "MDS2-CTWS-4",
                      "expires_on": tomorrow});
    let (status, acceptance) =
        post(&app, &officer, "/v1/organisations/RJ1/risk-acceptances", body.clone()).await;
    assert_eq!(status, 201, "{acceptance}");
    let mut past = body.clone();
    past["expires_on"] = json!("2020-01-01");
    assert_eq!(post(&app, &officer, "/v1/organisations/RJ1/risk-acceptances", past).await.0, 422);
    assert_eq!(post(&app, &officer, "/v1/organisations/RR8/risk-acceptances", body).await.0, 404);
    let listed = get_json(&app, &officer, "/v1/organisations/RJ1/risk-acceptances").await;
    assert_eq!(listed.as_array().unwrap().len(), 1);

    let today = get_json(&app, &admin, "/v1/reports/unsupported").await;
    assert!(today["accepted"].as_array().unwrap().iter().any(|h| h["organisation_code"] == "RJ1"));
    assert!(!today["at_risk"].as_array().unwrap().iter().any(|h| h["organisation_code"] == "RJ1"));
    let next_week = (chrono::Utc::now().date_naive() + chrono::Duration::days(7)).to_string();
    let expired = get_json(&app, &admin, &format!("/v1/reports/unsupported?on={next_week}")).await;
    let flagged =
        expired["at_risk"].as_array().unwrap().iter().find(|h| h["organisation_code"] == "RJ1").unwrap();
    assert_eq!(flagged["acceptance"]["expired"], true);
    assert_eq!(expired["expired_acceptances"], 1);

    // A renewed acceptance that runs longer is the one that counts.
    let next_month = (chrono::Utc::now().date_naive() + chrono::Duration::days(30)).to_string();
    let renewal = json!({"product_id": device, "compensating_controls": "Isolated VLAN, no internet",
                         "expires_on": next_month});
    let (status, renewed) = post(&app, &officer, "/v1/organisations/RJ1/risk-acceptances", renewal).await;
    assert_eq!(status, 201, "{renewed}");
    let renewed_report = get_json(&app, &admin, &format!("/v1/reports/unsupported?on={next_week}")).await;
    let covered = renewed_report["accepted"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["organisation_code"] == "RJ1")
        .expect("the renewal covers next week");
    assert_eq!(covered["acceptance"]["risk_acceptance_id"], renewed["id"]);
    assert_eq!(renewed_report["expired_acceptances"], 0);
}

async fn the_wannacry_advisory_is_seeded_with_its_real_dates(app: TestApp) {
    let (_, auditor) = app.sign_in(Role::Auditor, None).await;
    let advisories = get_json(&app, &auditor, "/v1/advisories?severity=critical").await;
    let wannacry = advisories["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["title"].as_str().unwrap().contains("WannaCry"))
        .unwrap();
    assert!(wannacry["published_at"].as_str().unwrap().starts_with("2017-05-12"));
    let affected: Vec<&str> = wannacry["affected_products"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["product"].as_str().unwrap())
        .collect();
    assert!(affected.iter().any(|p| p.starts_with("Windows XP")));
    assert!(affected.iter().any(|p| p.starts_with("Windows 7")));
}

on_both_engines!(
    exposure_covers_allocations_and_purchases,
    high_severity_acknowledgements_are_due_within_48_hours,
    the_unsupported_report_answers_for_a_date,
    the_wannacry_advisory_is_seeded_with_its_real_dates,
);
