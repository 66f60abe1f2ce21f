//! What needs attention (the start page's list, issue 22), item by item, on both engines: the
//! advisories an organisation must acknowledge (due and overdue), the obligations it took on
//! with seats, its seat requests waiting, and for the national team the requests to decide,
//! lines nearly full and extension options to decide. `web::the_start_page_lists_what_needs_attention`
//! covers risk acceptances, the nearly-full threshold and who gets a list at all.

use catalogue_tests::{Role, TestApp, on_both_engines};
use chrono::{Days, Utc};
use db::attention::{self, Attention};
use serde_json::{Value, json};

use crate::web::Browser;

async fn get_json(app: &TestApp, token: &str, path: &str) -> Value {
    let response = app.get(path).bearer_auth(token).send().await.unwrap();
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.unwrap()
}

async fn post(app: &TestApp, token: &str, path: &str, body: Value) -> Value {
    let response = app.post(path).bearer_auth(token).json(&body).send().await.unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert!((200..300).contains(&status), "{path}: {status} {body}");
    body
}

async fn product_id(app: &TestApp, token: &str, sku: &str) -> i64 {
    let page = get_json(app, token, &format!("/v1/products?q={sku}")).await;
    page["items"].as_array().unwrap().iter().find(|p| p["sku"] == sku).unwrap()["id"].as_i64().unwrap()
}

fn days_from_today(days: u64) -> chrono::NaiveDate {
    Utc::now().date_naive() + Days::new(days)
}

fn hours_ago(hours: i64) -> String {
    (Utc::now() - chrono::Duration::hours(hours)).to_rfc3339()
}

/// An agreement with an extension option to decide in 20 days, a line of 10 seats whose
/// obligation falls due in 5 days, and a line that needs approval; RR8 holds 9 of the 10 seats
/// (nearly full) and asks for one seat of the other. Returns the agreement's id.
async fn a_busy_agreement(app: &TestApp, admin: &str) -> i64 {
    let windows = product_id(app, admin, "MS-WIN11-ENT").await;
    let power_bi = product_id(app, admin, "MS-PBI-PRO").await;
    let supplier = get_json(app, admin, &format!("/v1/products/{windows}")).await["supplier_id"].clone();
    let agreement = post(
        app,
        admin,
        "/v1/agreements",
        json!({"supplier_id": supplier, "reference": "ATTENTION-1", "title": "Attention test",
               "starts_on": "2024-01-01", "funding_model": "central", "status": "active",
               "eligible_kinds": ["trust"],
               "extension_options": [{"months": 12, "decide_by": days_from_today(20)}]}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let lines = format!("/v1/agreements/{agreement}/entitlements");
    let capped = post(
        app,
        admin,
        &lines,
        json!({"product_id": windows, "tier": "top_up", "metric": "per_device", "seat_cap": 10,
               "eligible_kinds": ["trust"], "starts_on": "2024-01-01",
               "obligations": [{"description": "Enrol devices in Defender", "due_on": days_from_today(5)}]}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let approval = post(
        app,
        admin,
        &lines,
        json!({"product_id": power_bi, "tier": "top_up", "metric": "per_user", "seat_cap": 100,
               "requires_approval": true, "eligible_kinds": ["trust"], "starts_on": "2024-01-01"}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let (_, officer) = app.sign_in(Role::Officer, Some("RR8")).await;
    let claim = |line: i64, quantity: i64| {
        let body = json!({"organisation": "RR8", "quantity": quantity});
        let officer = officer.clone();
        async move { post(app, &officer, &format!("/v1/entitlements/{line}/allocations"), body).await }
    };
    claim(capped, 9).await;
    let request = claim(approval, 1).await;
    assert_eq!(
        request["status"], "pending",
        "a line that needs approval holds a claim as a request: {request}"
    );
    agreement
}

async fn everything_to_attend_to_is_listed_for_whom_it_concerns(app: TestApp) {
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    let agreement = a_busy_agreement(&app, &admin).await;
    let windows = product_id(&app, &admin, "MS-WIN11-ENT").await;
    let advisory = |reference: &str, hours: i64| {
        json!({"reference": reference, "title": "Test", "severity": "high", "published_at": hours_ago(hours),
               "remediation": "Patch", "affected_product_ids": [windows]})
    };
    let overdue = post(&app, &admin, "/v1/advisories", advisory("CC-ATT-1", 72)).await;
    let due = post(&app, &admin, "/v1/advisories", advisory("CC-ATT-2", 1)).await;
    let (overdue_id, due_id) = (overdue["id"].as_i64().unwrap(), due["id"].as_i64().unwrap());

    let now = Utc::now().naive_utc();
    let listed = app.with_connection(|conn| attention::for_organisation(conn, "RR8", now).unwrap());
    let kinds: Vec<&str> = listed
        .iter()
        .map(|item| match item {
            Attention::AcknowledgementOverdue { advisory_id, .. } if *advisory_id == overdue_id => "overdue",
            Attention::AcknowledgementDue { advisory_id, .. } if *advisory_id == due_id => "due",
            Attention::ObligationDue { description, due_on, overdue: false }
                if description == "Enrol devices in Defender" && *due_on == days_from_today(5) =>
            {
                "obligation"
            }
            Attention::SeatRequestsWaiting { count: 1 } => "request",
            other => panic!("RR8 has nothing else to attend to: {other:?}"),
        })
        .collect();
    assert_eq!(kinds, ["overdue", "due", "obligation", "request"], "most pressing first: {listed:?}");
    assert!(
        app.with_connection(|conn| attention::for_organisation(conn, "RJ1", now).unwrap()).is_empty(),
        "RJ1 holds none of it"
    );

    let national = app.with_connection(|conn| attention::for_the_national_team(conn, now).unwrap());
    assert_eq!(national.first(), Some(&Attention::SeatRequestsWaiting { count: 1 }), "{national:?}");
    assert!(
        national.iter().any(|item| matches!(item,
            Attention::LineNearlyFull { agreement_id, allocated: 9, cap: 10, .. } if *agreement_id == agreement)),
        "{national:?}"
    );
    assert!(
        national.contains(&Attention::ExtensionDecisionDue {
            agreement_id: agreement,
            reference: "ATTENTION-1".into(),
            months: 12,
            decide_by: days_from_today(20),
            overdue: false,
        }),
        "{national:?}"
    );
    assert!(
        !national.iter().any(|item| matches!(
            item,
            Attention::AcknowledgementDue { .. } | Attention::ObligationDue { .. }
        )),
        "a trust's own business is not the national list: {national:?}"
    );
    // Once their day has passed, the obligation and the extension decision are overdue.
    let later = |days: i64| now + chrono::Duration::days(days);
    let trust_later = app.with_connection(|conn| attention::for_organisation(conn, "RR8", later(6)).unwrap());
    assert!(
        trust_later.iter().any(|item| matches!(item,
            Attention::ObligationDue { due_on, overdue: true, .. } if *due_on == days_from_today(5))),
        "{trust_later:?}"
    );
    let national_later =
        app.with_connection(|conn| attention::for_the_national_team(conn, later(21)).unwrap());
    assert!(
        national_later.iter().any(|item| matches!(item,
            Attention::ExtensionDecisionDue { agreement_id, overdue: true, .. } if *agreement_id == agreement)),
        "{national_later:?}"
    );

    // Acknowledging takes the advisory off the list; the page links each item to where it is done.
    let officer = app.create_user(Role::Officer, Some("RR8"));
    let mut browser = Browser::new(&app);
    browser.sign_in(&officer).await;
    let start = browser.get("/").await;
    for link in [
        format!(
            r#"<a href="/organisations/RR8/advisories/{overdue_id}">Acknowledge advisory CC-ATT-1: it was due by"#
        ),
        format!(r#"<a href="/organisations/RR8/advisories/{due_id}">Acknowledge advisory CC-ATT-2 by"#),
        r#"<a href="/organisations/RR8">An obligation"#.to_owned(),
        "1 seat request waiting for".to_owned(),
    ] {
        assert!(start.body.contains(&link), "{link} in {}", start.body);
    }
    post(
        &app,
        &app.sign_in(Role::Officer, Some("RR8")).await.1,
        &format!("/v1/organisations/RR8/advisories/{due_id}/acknowledge"),
        Value::Null,
    )
    .await;
    let listed = app.with_connection(|conn| attention::for_organisation(conn, "RR8", now).unwrap());
    assert!(
        !listed.iter().any(|item| matches!(item, Attention::AcknowledgementDue { .. })),
        "acknowledged: {listed:?}"
    );
    assert_eq!(listed.len(), 3, "the rest stays: {listed:?}");
}

on_both_engines!(everything_to_attend_to_is_listed_for_whom_it_concerns);
