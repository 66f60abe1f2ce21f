//! Agreements' commercial record (issue 16): value, currency, reseller, lot, term, notices and
//! extension options with their decisions, through the API on both engines, the seeded facts of
//! `seeds/commercial.md`, and the decisions coming up (`decision_due_within`).

use catalogue_tests::{Role, TestApp, on_both_engines, status_and_json};
use chrono::{Days, Utc};
use serde_json::{Value, json};

async fn seeded(app: &TestApp, token: &str, reference: &str) -> Value {
    let (status, page) =
        status_and_json(app.get("/v1/agreements?include_ended=true&limit=500").bearer_auth(token)).await;
    assert_eq!(status, 200, "{page}");
    page["items"]
        .as_array()
        .and_then(|items| items.iter().find(|a| a["reference"] == reference))
        .unwrap_or_else(|| panic!("no {reference}: {page}"))
        .clone()
}

async fn the_seeded_commercial_record_is_served(app: TestApp) {
    let (_, token) = app.sign_in(Role::Auditor, None).await;
    let call_off = seeded(&app, &token, "NHSE-MS-2023-RM6068").await;
    assert_eq!(call_off["value_minor"], 77_450_000_000_i64, "GBP 774.5m in pence: {call_off}");
    assert_eq!(call_off["currency"], "GBP");
    assert_eq!(call_off["supplier"], "Microsoft", "the supplier stays as it was");
    assert_eq!(call_off["reseller"], "Bytes Software Services");
    assert_eq!(call_off["initial_term_months"], 34);
    let options = call_off["extension_options"].as_array().unwrap();
    assert_eq!(options.len(), 1, "{call_off}");
    assert_eq!(options[0]["months"], 24);
    assert_eq!(options[0]["decide_by"], "2026-03-31");
    assert_eq!(options[0]["decision"], Value::Null, "no published decision: held undecided");
    assert!(call_off["commercial_source"].as_str().unwrap().contains("theregister.com"));
    assert_eq!(call_off["buyer"], "NHS England");

    let esa = seeded(&app, &token, "NHSE-MS-W10E-2018").await;
    assert_eq!(esa["value_minor"], 16_300_000_000_i64);
    assert_eq!(esa["extension_options"][0]["decision"], "taken");
    assert_eq!(esa["extension_options"][0]["decided_on"], "2023-04-26", "Variation Form C0360");
    assert_eq!(esa["notice_urls"].as_array().unwrap().len(), 2);
    assert_eq!(esa["buyer"], "NHS Digital");
    let xp = seeded(&app, &token, "CCS-MS-XPCSA-2014").await;
    assert_eq!(xp["value_minor"], 555_800_000_i64);
    assert_eq!(xp["buyer"], "Crown Commercial Service", "bought for the whole public sector");
    let first = seeded(&app, &token, "NHS-MS-EA-2001").await;
    assert_eq!(first["buyer"], "NHS Purchasing and Supply Agency");
    let mail = seeded(&app, &token, "NHSE-NHSMAIL").await;
    assert_eq!(mail["value_minor"], Value::Null, "not published");
    assert_eq!(mail["extension_options"], json!([]));
}
on_both_engines!(the_seeded_commercial_record_is_served);

fn today_plus(days: u64) -> String {
    (Utc::now().date_naive() + Days::new(days)).to_string()
}

async fn decisions_due_within_a_window_are_found(app: TestApp) {
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    let supplier = app.any_supplier_id(&admin).await;
    let agreement = |reference: &str, options: Value| {
        json!({"supplier_id": supplier, "reference": reference, "title": reference, "starts_on": "2024-01-01",
            "funding_model": "central", "status": "active", "eligible_kinds": ["trust"],
            "value_minor": 1_000_000, "reseller_id": supplier, "framework_lot": "Lot 3",
            "initial_term_months": 24, "notice_urls": ["https://www.find-tender.service.gov.uk/Notice/000001-2024"],
            "commercial_source": "test", "extension_options": options})
    };
    let soon = app
        .created(
            &admin,
            "/v1/agreements",
            &agreement("DUE-SOON", json!([{"months": 12, "decide_by": today_plus(20)}])),
        )
        .await;
    assert_eq!(soon["currency"], "GBP", "GBP when left out");
    assert_eq!(soon["framework_lot"], "Lot 3");
    let later = app
        .created(
            &admin,
            "/v1/agreements",
            &agreement("DUE-LATER", json!([{"months": 12, "decide_by": today_plus(200)}])),
        )
        .await;
    let decided = app
        .created(
            &admin,
            "/v1/agreements",
            &agreement(
                "DUE-DECIDED",
                json!([{"months": 6, "decide_by": today_plus(10), "decision": "declined", "decided_on": "2024-06-01"}]),
            ),
        )
        .await;

    let due = |window: &str| {
        let path = format!("/v1/agreements?decision_due_within={window}&limit=500");
        let request = app.get(&path).bearer_auth(&admin);
        async move { status_and_json(request).await }
    };
    let refs = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["reference"].as_str().unwrap().to_owned())
            .collect()
    };
    let (status, page) = due("90d").await;
    assert_eq!(status, 200, "{page}");
    let found = refs(&page);
    assert!(found.contains(&"DUE-SOON".to_owned()), "{found:?}");
    assert!(!found.contains(&"DUE-LATER".to_owned()), "{found:?}");
    assert!(!found.contains(&"DUE-DECIDED".to_owned()), "a decided option is not due: {found:?}");
    assert!(
        found.contains(&"NHSE-MS-2023-RM6068".to_owned()),
        "the seeded call-off's extension was due 2026-03-31 and no decision is published: overdue, still due: {found:?}"
    );
    let (_, page) = due("12m").await;
    assert!(refs(&page).contains(&"DUE-LATER".to_owned()));
    for bad in ["90", "d", "0d", "-5d", "90x", "9999999d", "10000d", "1000m", "%2090d", "90d%20x", "%20"] {
        let (status, problem) = due(bad).await;
        assert_eq!(status, 400, "{bad}: {problem}");
        assert_eq!(problem["status"], 400);
    }

    // Recording the decision is an update of the options: the agreement is no longer due.
    let path = format!("/v1/agreements/{}", soon["id"]);
    let (status, updated) = status_and_json(
        app.patch_any_version(&path).bearer_auth(&admin).json(&json!({"extension_options": [
            {"months": 12, "decide_by": today_plus(20), "decision": "taken", "decided_on": today_plus(0)}]})),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["extension_options"][0]["decision"], "taken");
    assert_eq!(updated["value_minor"], 1_000_000, "other commercial facts stay");
    let (_, page) = due("90d").await;
    assert!(!refs(&page).contains(&"DUE-SOON".to_owned()));
    let (status, got) =
        status_and_json(app.get(&format!("/v1/agreements/{}", decided["id"])).bearer_auth(&admin)).await;
    assert_eq!(status, 200);
    assert_eq!(got["extension_options"][0]["decision"], "declined");
    let _ = later;
}
on_both_engines!(decisions_due_within_a_window_are_found);

async fn bad_commercial_content_is_refused(app: TestApp) {
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    let supplier = app.any_supplier_id(&admin).await;
    let base = json!({"supplier_id": supplier, "reference": "BAD-COMMERCIAL", "title": "t", "starts_on": "2024-01-01",
        "funding_model": "central", "status": "active", "eligible_kinds": ["trust"]});
    let cases = [
        ("value_minor", json!(-1), 422),
        ("value_minor", json!(100_000_000_000_001_i64), 422),
        ("currency", json!("gbp"), 422),
        ("currency", json!("POUNDS"), 422),
        ("initial_term_months", json!(0), 422),
        ("reseller_id", json!(999_999), 422),
        ("buyer", json!(""), 422),
        ("buyer", json!("x".repeat(201)), 422),
        ("notice_urls", json!(["ftp://example.org/notice"]), 422),
        ("extension_options", json!([{"months": 0, "decide_by": "2026-01-01"}]), 422),
        (
            "extension_options",
            json!([{"months": 6, "decide_by": "2026-01-01", "decided_on": "2025-12-01"}]),
            422,
        ),
        ("extension_options", json!([{"months": 6, "decide_by": "2026-01-01", "decision": "maybe"}]), 422),
        ("extension_options", json!([{"months": 6, "decide_by": "2026-01-01", "why": "unknown"}]), 422),
    ];
    for (field, value, expected) in cases {
        let mut body = base.clone();
        body[field] = value.clone();
        let (status, problem) =
            status_and_json(app.post("/v1/agreements").bearer_auth(&admin).json(&body)).await;
        assert_eq!(status, expected, "{field}={value}: {problem}");
        assert_eq!(problem["status"], expected, "a problem response: {problem}");
    }
    let (_, audit) =
        status_and_json(app.get("/v1/audit?entity=agreement&limit=500").bearer_auth(&admin)).await;
    let made = audit["items"].as_array().map_or(0, |items| {
        items
            .iter()
            .filter(|e| e["after_state"].as_str().is_some_and(|s| s.contains("BAD-COMMERCIAL")))
            .count()
    });
    assert_eq!(made, 0, "nothing refused was written");
}
on_both_engines!(bad_commercial_content_is_refused);

/// The agreement page shows the commercial record and, above it, the decisions coming up.
async fn the_agreement_page_shows_the_record_and_the_decisions_due(app: TestApp) {
    let (_, token) = app.sign_in(Role::Auditor, None).await;
    let call_off = seeded(&app, &token, "NHSE-MS-2023-RM6068").await;
    let officer = app.create_user(Role::Officer, Some("RR8"));
    let mut browser = crate::web::Browser::new(&app);
    browser.sign_in(&officer).await;
    let page = browser.get(&format!("/agreements/{}", call_off["id"])).await;
    assert_eq!(page.status, 200);
    for shown in [
        "Commercial record",
        "£774,500,000",
        "Bytes Software Services",
        "Bought by",
        "34 months",
        "Decisions coming up",
        "Extend by 24 months: decide by 31 March 2026",
        "Overdue by",
        "None published",
    ] {
        assert!(page.body.contains(shown), "{shown} is on the page");
    }
    let esa = seeded(&app, &token, "NHSE-MS-W10E-2018").await;
    let page = browser.get(&format!("/agreements/{}", esa["id"])).await;
    assert!(page.body.contains("£163,000,000"));
    assert!(page.body.contains("NHS Digital"), "its buyer");
    assert!(page.body.contains("Taken on 26 April 2023"), "a decided option is history, not a decision due");
    assert!(!page.body.contains("Decisions coming up"));
    assert!(
        page.body.contains(r#"href="https://d3tenders.com/contract/download.php?ocid=ocds-b5fd17-46878456"#)
    );
}
on_both_engines!(the_agreement_page_shows_the_record_and_the_decisions_due);

/// The OCDS package of every agreement, and one agreement's package: the ocid prefix, one
/// release per agreement, the values and the parties (the schema itself is checked by
/// tests/contract/ocds.sh against the OCDS 1.1 schemas from PyPI).
async fn agreements_are_published_as_ocds_release_packages(app: TestApp) {
    let (_, token) = app.sign_in(Role::Officer, Some("RR8")).await;
    let (status, all) =
        status_and_json(app.get("/v1/agreements?include_ended=true&limit=500").bearer_auth(&token)).await;
    assert_eq!(status, 200);
    let agreements = all["items"].as_array().unwrap();
    let response = app.get("/v1/agreements/ocds").bearer_auth(&token).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    let package: Value = response.json().await.unwrap();
    assert_eq!(package["version"], "1.1");
    assert_eq!(package["publisher"]["name"], "NHS England");
    assert!(package["uri"].as_str().unwrap().ends_with("/v1/agreements/ocds"), "{}", package["uri"]);
    let releases = package["releases"].as_array().unwrap();
    assert_eq!(releases.len(), agreements.len(), "one release per agreement, ended ones included");
    let mut ocids: Vec<&str> = releases.iter().map(|r| r["ocid"].as_str().unwrap()).collect();
    for (release, agreement) in releases.iter().zip(agreements) {
        assert_eq!(release["ocid"], format!("ocds-xxxxxx-{}", agreement["reference"].as_str().unwrap()));
        assert_eq!(release["tag"], json!(["contract"]));
        assert_eq!(release["initiationType"], "tender");
        let buyer = agreement["buyer"].as_str().unwrap_or("NHS England");
        assert_eq!(release["buyer"]["name"], buyer, "the recorded buyer, or the publisher");
        assert_eq!(release["parties"][0]["id"], release["buyer"]["id"], "the buyer is the first party");
        let contract = &release["contracts"][0];
        assert_eq!(contract["awardID"], release["awards"][0]["id"]);
        match agreement["value_minor"].as_i64() {
            Some(pence) => {
                assert_eq!(contract["value"]["amount"].as_f64(), Some(pence as f64 / 100.0));
                assert_eq!(contract["value"]["currency"], "GBP");
            }
            None => assert!(contract.get("value").is_none(), "no value is published as none: {contract}"),
        }
        let expected = match agreement["status"].as_str().unwrap() {
            "draft" => "pending",
            "active" => "active",
            _ => "terminated",
        };
        assert_eq!(contract["status"], expected);
    }
    ocids.sort_unstable();
    ocids.dedup();
    assert_eq!(ocids.len(), releases.len(), "ocids are unique");

    let call_off = releases.iter().find(|r| r["ocid"] == "ocds-xxxxxx-NHSE-MS-2023-RM6068").unwrap();
    assert_eq!(call_off["contracts"][0]["value"]["amount"], json!(774_500_000.0));
    let parties: Vec<&str> =
        call_off["parties"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(parties, ["NHS England", "Microsoft", "Bytes Software Services"]);
    assert_eq!(call_off["contracts"][0]["period"]["startDate"], "2023-06-01T00:00:00Z");
    assert_eq!(
        call_off["contracts"][0]["period"]["endDate"], "2028-04-01T00:00:00Z",
        "ends before 1 April's midnight"
    );
    assert_eq!(
        call_off["contracts"][0]["period"]["maxExtentDate"], "2028-04-01T00:00:00Z",
        "34 months and 24 more"
    );
    assert_eq!(call_off["relatedProcesses"][0]["identifier"], "RM6068");

    let id = agreements.iter().find(|a| a["reference"] == "NHSE-MS-2023-RM6068").unwrap()["id"].clone();
    let (status, one) =
        status_and_json(app.get(&format!("/v1/agreements/{id}/ocds")).bearer_auth(&token)).await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["releases"].as_array().unwrap().len(), 1);
    assert_eq!(&one["releases"][0], call_off, "the same release alone or in the whole package");
    let (status, problem) = status_and_json(app.get("/v1/agreements/999999/ocds").bearer_auth(&token)).await;
    assert_eq!(status, 404, "{problem}");
    let (status, _) = status_and_json(app.get("/v1/agreements/ocds")).await;
    assert_eq!(status, 401, "signed in only");
    // `/v1/agreements/ocds` is not an agreement id: another method there is 405, not a 404.
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    let response = app
        .patch_any_version("/v1/agreements/ocds")
        .bearer_auth(&admin)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "GET");
    let (status, _) = status_and_json(app.get("/v1/agreements/abc").bearer_auth(&admin)).await;
    assert_eq!(status, 404);
}
on_both_engines!(agreements_are_published_as_ocds_release_packages);
