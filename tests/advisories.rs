//! Security advisories, exposure, responses, the 48-hour rule, lifecycle risk and risk
//! acceptances, on both engines.

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
    // The shipped seeds license no Windows today: the test makes the line it claims from.
    app.license_nationally("MS-WIN10-ENT", None).await;
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
    // The shipped seeds license no Windows today: the test makes the line it claims from.
    app.license_nationally("MS-WIN11-ENT", None).await;
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

/// A national agreement line for Windows 7 (support ended 2020-01-14) from 2015: claims on it
/// must be backdated to be history, as the ledger records claims when they happen.
async fn windows_7_line(app: &TestApp, admin: &str) -> i64 {
    let suppliers = get_json(app, admin, "/v1/suppliers").await;
    let microsoft = suppliers["items"].as_array().unwrap().iter().find(|s| s["name"] == "Microsoft").unwrap()
        ["id"]
        .clone();
    let (_, agreement) = post(app, admin, "/v1/agreements", json!({"supplier_id": microsoft, "reference": "TEST-W7",
        "title": "Windows 7 support", "starts_on": "2015-01-01", "ends_on": "2030-01-01", "funding_model": "central",
        "status": "active", "eligible_kinds": ["trust"]})).await;
    let windows7 = product_id(app, admin, "MS-WIN7-ENT").await;
    let (_, line) = post(app, admin, &format!("/v1/agreements/{}/entitlements", agreement["id"]), json!({"product_id": windows7,
        "tier": "national_provision", "metric": "per_device", "eligible_kinds": ["trust"], "starts_on": "2015-01-01",
        "ends_on": "2030-01-01"})).await;
    line["id"].as_i64().unwrap()
}

/// A national agreement line for the CT workstation too, so that a trust can hold it both
/// through allocations and through a local purchase (one holding, counted once).
async fn device_line(app: &TestApp, admin: &str, device: i64) -> i64 {
    let product = get_json(app, admin, &format!("/v1/products/{device}")).await;
    let (_, agreement) = post(app, admin, "/v1/agreements", json!({"supplier_id": product["supplier_id"],
        "reference": "TEST-CT", "title": "CT workstation support", "starts_on": "2015-01-01", "ends_on": "2030-01-01",
        "funding_model": "central", "status": "active", "eligible_kinds": ["trust"]})).await;
    let (_, line) = post(app, admin, &format!("/v1/agreements/{}/entitlements", agreement["id"]), json!({"product_id": device,
        "tier": "national_provision", "metric": "per_device", "eligible_kinds": ["trust"], "starts_on": "2015-01-01",
        "ends_on": "2030-01-01"})).await;
    line["id"].as_i64().unwrap_or_else(|| panic!("{line}"))
}

/// Claims `quantity` seats of the entitlement for `organisation`; returns the allocation's id.
async fn claim(app: &TestApp, admin: &str, entitlement: i64, organisation: &str, quantity: i64) -> i64 {
    let (status, allocation) = post(
        app,
        admin,
        &format!("/v1/entitlements/{entitlement}/allocations"),
        json!({"organisation": organisation, "quantity": quantity}),
    )
    .await;
    assert_eq!(status, 201, "{allocation}");
    allocation["id"].as_i64().unwrap()
}

fn at(text: &str) -> chrono::NaiveDateTime {
    chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f").unwrap()
}

/// Rewrites when an allocation was made and last changed (released), as if long ago.
fn backdate_allocation(app: &TestApp, allocation: i64, created: &str, updated: Option<&str>) {
    app.with_connection(|conn| {
        use db::schema::allocations::dsl::*;
        use diesel::prelude::*;
        diesel::update(allocations.find(allocation)).set(created_at.eq(at(created))).execute(conn).unwrap();
        if let Some(updated) = updated {
            diesel::update(allocations.find(allocation))
                .set(updated_at.eq(at(updated)))
                .execute(conn)
                .unwrap();
        }
    });
}

/// Records a risk acceptance through the API, then rewrites when it was recorded and when it
/// expires (the API only takes expiries in the future).
async fn accept_risk(app: &TestApp, organisation: &str, product: i64, recorded: &str, expires: &str) {
    let (_, officer) = app.sign_in(Role::Officer, Some(organisation)).await;
    let next_year = (chrono::Utc::now().date_naive() + chrono::Duration::days(365)).to_string();
    let body =
        json!({"product_id": product, "compensating_controls": "Isolated VLAN", "expires_on": next_year});
    let (status, acceptance) =
        post(app, &officer, &format!("/v1/organisations/{organisation}/risk-acceptances"), body).await;
    assert_eq!(status, 201, "{acceptance}");
    let acceptance = acceptance["id"].as_i64().unwrap();
    app.with_connection(|conn| {
        use db::schema::risk_acceptances::dsl::*;
        use diesel::prelude::*;
        let expiry = chrono::NaiveDate::parse_from_str(expires, "%Y-%m-%d").unwrap();
        diesel::update(risk_acceptances.find(acceptance))
            .set((created_at.eq(at(recorded)), expires_on.eq(expiry)))
            .execute(conn)
            .unwrap();
    });
}

/// Who held software at risk on 2021-01-01, after Windows 7 (2020-01-14) and the CT workstation
/// (2020-10-13) lost support: Windows 7 seats at seven trusts (RR8 through two claims), the
/// workstation bought by RJ1 (risk accepted until June) and RR8 (its acceptance expired in
/// December), each of which also holds seats of it. RGR claimed in the last second of 1 January and RRK released then; RTH's
/// acceptance was recorded later. Returns the ids of Windows 7 and the workstation.
async fn risky_estate(app: &TestApp) -> (i64, i64) {
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    let line = windows_7_line(app, &admin).await;
    for (code, quantity) in
        [("RR8", 300), ("RR8", 900), ("RTH", 10), ("RGT", 20), ("RTD", 30), ("RM3", 40), ("RBL", 50)]
    {
        let allocation = claim(app, &admin, line, code, quantity).await;
        backdate_allocation(app, allocation, "2019-06-01 09:00:00", None);
    }
    let last_second = "2021-01-01 23:59:59.500";
    let late = claim(app, &admin, line, "RGR", 60).await;
    backdate_allocation(app, late, last_second, None);
    let released = claim(app, &admin, line, "RRK", 70).await;
    let (status, _) = post(app, &admin, &format!("/v1/allocations/{released}/release"), json!(null)).await;
    assert_eq!(status, 200);
    backdate_allocation(app, released, "2019-06-01 09:00:00", Some(last_second));
    buy_device(app, "RJ1", "EXIMG-CTWS-4", "2020-02-01").await;
    buy_device(app, "RR8", "EXIMG-CTWS-4", "2020-03-01").await;
    let windows7 = product_id(app, &admin, "MS-WIN7-ENT").await;
    let device = product_id(app, &admin, "EXIMG-CTWS-4").await;
    let devices = device_line(app, &admin, device).await;
    for (code, quantity) in [("RJ1", 5), ("RR8", 7)] {
        let allocation = claim(app, &admin, devices, code, quantity).await;
        backdate_allocation(app, allocation, "2019-06-01 09:00:00", None);
    }
    accept_risk(app, "RJ1", device, "2020-12-01 10:00:00", "2021-06-01").await;
    accept_risk(app, "RR8", device, "2020-11-01 10:00:00", "2020-12-15").await;
    accept_risk(app, "RTH", windows7, "2021-02-01 10:00:00", "2021-12-31").await;
    (windows7, device)
}

/// Reads every page of `path` (which sets a `limit`): the holdings in order, the totals (on the
/// first page only) and how many pages there were.
async fn every_page(app: &TestApp, token: &str, path: &str) -> (Vec<Value>, Value, usize) {
    let (mut items, mut totals, mut pages) = (Vec::new(), Value::Null, 0);
    let mut cursor: Option<String> = None;
    loop {
        let mut request = app.get(path).bearer_auth(token);
        if let Some(cursor) = &cursor {
            request = request.query(&[("cursor", cursor)]);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200, "{path} after {cursor:?}");
        let page: Value = response.json().await.unwrap();
        pages += 1;
        if pages == 1 {
            totals = page["totals"].clone();
            assert!(totals.is_object(), "the first page has the whole report's totals");
        } else {
            assert!(page["totals"].is_null(), "later pages do not count the whole report again");
        }
        items.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => {
                assert!(!page["items"].as_array().unwrap().is_empty(), "a page before the end has holdings");
                cursor = Some(next.to_owned());
            }
            None => break,
        }
        assert!(pages < 100, "the cursor moves on");
    }
    (items, totals, pages)
}

fn holding_keys(items: &[Value]) -> Vec<(String, i64)> {
    items
        .iter()
        .map(|h| (h["organisation_code"].as_str().unwrap().to_owned(), h["product_id"].as_i64().unwrap()))
        .collect()
}

fn find<'a>(items: &'a [Value], code: &str, product: i64) -> &'a Value {
    items
        .iter()
        .find(|h| h["organisation_code"] == code && h["product_id"] == product)
        .unwrap_or_else(|| panic!("no holding of {product} at {code}"))
}

async fn the_unsupported_report_answers_for_a_date(app: TestApp) {
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    let line = windows_7_line(&app, &admin).await;
    let allocation = claim(&app, &admin, line, "RR8", 1200).await;
    backdate_allocation(&app, allocation, "2019-06-01 09:00:00", None);
    buy_device(&app, "RJ1", "EXIMG-CTWS-4", "2020-02-01").await;

    let report = get_json(&app, &admin, "/v1/reports/unsupported?on=2020-01-15").await;
    assert_eq!(report["status"], "at_risk", "at risk unless asked otherwise");
    let held: Vec<(&str, &str)> = report["items"]
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
    let rr8 = report["items"].as_array().unwrap().iter().find(|h| h["organisation_code"] == "RR8").unwrap();
    assert_eq!(rr8["seats"], 1200);
    let leeds = get_json(&app, &admin, "/v1/organisations/RR8").await;
    assert_eq!(rr8["organisation_name"], leeds["name"]);
    assert_eq!(rr8["region"], leeds["region"]);
    assert_eq!(rr8["support_status"], "unsupported");
    assert_eq!(report["totals"]["organisations_at_risk"], 1);
    assert_eq!(report["totals"]["holdings_at_risk"], 1);

    let before = get_json(&app, &admin, "/v1/reports/unsupported?on=2019-12-01").await;
    assert!(before["items"].as_array().unwrap().is_empty(), "Windows 7 was still supported");
    let soon = get_json(&app, &admin, "/v1/reports/unsupported?on=2019-12-01&within_months=2").await;
    assert_eq!(soon["items"][0]["organisation_code"], "RR8", "support ending within two months");
    assert_eq!(soon["items"][0]["support_status"], "extended");
    let later = get_json(&app, &admin, "/v1/reports/unsupported?on=2021-01-01").await;
    assert!(
        later["items"]
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

    // Risk acceptances: listed apart while in force, flagged once expired.
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
    assert!(!today["items"].as_array().unwrap().iter().any(|h| h["organisation_code"] == "RJ1"));
    assert_eq!(today["totals"]["holdings_accepted"], 1);
    let accepted = get_json(&app, &admin, "/v1/reports/unsupported?status=accepted").await;
    assert!(accepted["items"].as_array().unwrap().iter().any(|h| h["organisation_code"] == "RJ1"));
    let next_week = (chrono::Utc::now().date_naive() + chrono::Duration::days(7)).to_string();
    let expired = get_json(&app, &admin, &format!("/v1/reports/unsupported?on={next_week}")).await;
    let flagged =
        expired["items"].as_array().unwrap().iter().find(|h| h["organisation_code"] == "RJ1").unwrap();
    assert_eq!(flagged["acceptance"]["expired"], true);
    assert_eq!(expired["totals"]["expired_acceptances"], 1);

    // A renewed acceptance that runs longer is the one that counts.
    let next_month = (chrono::Utc::now().date_naive() + chrono::Duration::days(30)).to_string();
    let renewal = json!({"product_id": device, "compensating_controls": "Isolated VLAN, no internet",
                         "expires_on": next_month});
    let (status, renewed) = post(&app, &officer, "/v1/organisations/RJ1/risk-acceptances", renewal).await;
    assert_eq!(status, 201, "{renewed}");
    let renewed_report =
        get_json(&app, &admin, &format!("/v1/reports/unsupported?on={next_week}&status=accepted")).await;
    let covered = renewed_report["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["organisation_code"] == "RJ1")
        .expect("the renewal covers next week");
    assert_eq!(covered["acceptance"]["risk_acceptance_id"], renewed["id"]);
    assert_eq!(renewed_report["totals"]["expired_acceptances"], 0);
}

async fn the_unsupported_report_pages_through_every_holding_once(app: TestApp) {
    let (windows7, device) = risky_estate(&app).await;
    let (_, auditor) = app.sign_in(Role::Auditor, None).await;
    let (items, totals, pages) =
        every_page(&app, &auditor, "/v1/reports/unsupported?on=2021-01-01&limit=3").await;
    let mut expected: Vec<(String, i64)> = ["RBL", "RGR", "RGT", "RM3", "RR8", "RTD", "RTH"]
        .into_iter()
        .map(|code| (code.to_owned(), windows7))
        .chain([("RR8".to_owned(), device)])
        .collect();
    expected.sort();
    assert_eq!(holding_keys(&items), expected, "each holding once, by organisation then product");
    assert_eq!(pages, 3, "eight holdings, three to a page");
    assert_eq!(
        totals,
        json!({"holdings_at_risk": 8, "holdings_accepted": 1, "organisations_at_risk": 7, "expired_acceptances": 1})
    );
    let whole = get_json(&app, &auditor, "/v1/reports/unsupported?on=2021-01-01&limit=500").await;
    assert_eq!(whole["items"], Value::Array(items.clone()), "small pages add up to one big one");
    assert!(whole["next_cursor"].is_null());

    let rr8 = find(&items, "RR8", windows7);
    assert_eq!(
        (rr8["seats"].as_i64(), rr8["purchased"].as_i64()),
        (Some(1200), Some(0)),
        "two claims, one holding"
    );
    let rr8_device = find(&items, "RR8", device);
    assert_eq!(
        (rr8_device["seats"].as_i64(), rr8_device["purchased"].as_i64()),
        (Some(7), Some(3)),
        "claimed and bought: one holding"
    );
    assert_eq!(rr8_device["acceptance"]["expired"], true);
    assert_eq!(rr8_device["acceptance"]["expires_on"], "2020-12-15");
    assert!(find(&items, "RTH", windows7)["acceptance"].is_null(), "recorded after the date");

    let (accepted, accepted_totals, _) =
        every_page(&app, &auditor, "/v1/reports/unsupported?on=2021-01-01&status=accepted&limit=1").await;
    assert_eq!(holding_keys(&accepted), vec![("RJ1".to_owned(), device)]);
    assert_eq!(accepted[0]["acceptance"]["expired"], false);
    assert_eq!((accepted[0]["seats"].as_i64(), accepted[0]["purchased"].as_i64()), (Some(5), Some(3)));
    assert_eq!(accepted_totals, totals, "the totals do not depend on the status listed");

    // A day ends at the next midnight: the claim made in the last second of 1 January counts on
    // it and the release made then still leaves the seats held; a day earlier it is the other
    // way round.
    let eve = get_json(&app, &auditor, "/v1/reports/unsupported?on=2020-12-31&limit=500").await;
    let eve_codes: Vec<&str> =
        eve["items"].as_array().unwrap().iter().map(|h| h["organisation_code"].as_str().unwrap()).collect();
    assert!(eve_codes.contains(&"RRK") && !eve_codes.contains(&"RGR"), "{eve_codes:?}");
    assert!(!holding_keys(&items).iter().any(|(code, _)| code == "RRK"));
}

async fn problem(app: &TestApp, token: &str, path: &str) -> (u16, Value) {
    let response = app.get(path).bearer_auth(token).send().await.unwrap();
    let status = response.status().as_u16();
    let content_type = response.headers()["content-type"].to_str().unwrap_or_default().to_owned();
    assert_eq!(content_type, "application/problem+json", "{path}");
    (status, response.json().await.unwrap())
}

async fn the_unsupported_report_filters_by_status_organisation_and_region(app: TestApp) {
    let (windows7, device) = risky_estate(&app).await;
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    let report = |query: &str| format!("/v1/reports/unsupported?on=2021-01-01&limit=500&{query}");

    let leeds = get_json(&app, &admin, &report("organisation=rr8")).await;
    let mut expected = vec![("RR8".to_owned(), windows7), ("RR8".to_owned(), device)];
    expected.sort();
    assert_eq!(holding_keys(leeds["items"].as_array().unwrap()), expected);
    assert_eq!(
        leeds["totals"],
        json!({"holdings_at_risk": 2, "holdings_accepted": 0, "organisations_at_risk": 1, "expired_acceptances": 1})
    );
    let none_accepted = get_json(&app, &admin, &report("organisation=RR8&status=accepted")).await;
    assert!(none_accepted["items"].as_array().unwrap().is_empty());

    let north_west = get_json(&app, &admin, &report("region=North West")).await;
    assert_eq!(
        holding_keys(north_west["items"].as_array().unwrap()),
        vec![("RBL".to_owned(), windows7), ("RM3".to_owned(), windows7)]
    );
    assert_eq!(north_west["totals"]["organisations_at_risk"], 2);
    let london = get_json(&app, &admin, &report("region=London")).await;
    assert!(london["items"].as_array().unwrap().is_empty(), "London's one holding is covered");
    assert_eq!(london["totals"]["holdings_accepted"], 1);
    let london_accepted = get_json(&app, &admin, &report("region=London&status=accepted")).await;
    assert_eq!(holding_keys(london_accepted["items"].as_array().unwrap()), vec![("RJ1".to_owned(), device)]);
    let both = get_json(&app, &admin, &report("region=London&organisation=RR8")).await;
    assert!(both["items"].as_array().unwrap().is_empty(), "RR8 is not in London");

    // Questions that cannot be answered are 400 problems, not empty pages.
    for bad in ["status=unsupported", "cursor=RR8", "cursor=RR8:first", "limit=0", "limit=501", "colour=red"]
    {
        let (status, body) =
            problem(&app, &admin, &format!("/v1/reports/unsupported?on=2021-01-01&{bad}")).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let (_, officer) = app.sign_in(Role::Officer, Some("RR8")).await;
    assert_eq!(problem(&app, &officer, &report("organisation=RR8")).await.0, 403, "national report");
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

/// Links that no longer read back as a list are a corrupt record: reading it is an internal
/// error (never an advisory with no links), and the other advisories still read.
async fn an_advisory_with_corrupt_stored_links_is_an_internal_error(app: TestApp) {
    use db::schema::advisories;
    use diesel::prelude::*;
    let (_, auditor) = app.sign_in(Role::Auditor, None).await;
    let listed = get_json(&app, &auditor, "/v1/advisories").await;
    let ids: Vec<i64> =
        listed["items"].as_array().unwrap().iter().map(|a| a["id"].as_i64().unwrap()).collect();
    assert!(ids.len() >= 2, "{listed}");
    let (corrupt, sound) = (ids[0], ids[1]);
    let stored = r#"["https://example.nhs.uk/corrupt-link-7f3a", 42"#;
    app.with_connection(|conn| {
        diesel::update(advisories::table.find(corrupt)).set(advisories::links.eq(stored)).execute(conn)
    })
    .unwrap();

    for path in [
        format!("/v1/advisories/{corrupt}"),
        format!("/v1/advisories/{corrupt}/exposure"),
        "/v1/advisories".to_owned(),
    ] {
        expect_bare_internal_error(app.get(&path).bearer_auth(&auditor), "corrupt-link-7f3a").await;
    }
    let other = get_json(&app, &auditor, &format!("/v1/advisories/{sound}")).await;
    assert_eq!(other["id"], sound);
    assert_eq!(other["links"], listed["items"][1]["links"]);
    let after = get_json(&app, &auditor, &format!("/v1/advisories?cursor={corrupt}")).await;
    assert_eq!(after["items"].as_array().unwrap().len(), ids.len() - 1, "the page after it reads");
}

on_both_engines!(
    exposure_covers_allocations_and_purchases,
    high_severity_acknowledgements_are_due_within_48_hours,
    the_unsupported_report_answers_for_a_date,
    the_unsupported_report_pages_through_every_holding_once,
    the_unsupported_report_filters_by_status_organisation_and_region,
    the_wannacry_advisory_is_seeded_with_its_real_dates,
    an_affected_product_that_does_not_exist_is_named,
    an_advisory_with_corrupt_stored_links_is_an_internal_error,
);

/// A client sends several product ids: the refusal says which one names no product.
async fn an_affected_product_that_does_not_exist_is_named(app: TestApp) {
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    let windows = product_id(&app, &admin, "MS-WIN10-ENT").await;
    let body = json!({"reference": "CC-T-9", "title": "Test", "severity": "low", "published_at": hours_ago(1),
                      "remediation": "Patch", "affected_product_ids": [windows, 987_654_321]});
    let (status, problem) = post(&app, &admin, "/v1/advisories", body).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["detail"], "affected product 987654321 does not exist");
}
