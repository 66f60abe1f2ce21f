//! The in-memory read model: it answers exactly as the database does, a write is reflected at
//! once on the instance that made it, and on another instance within one second.

use std::time::{Duration, Instant};

use catalogue_tests::{Role, TestApp, TestDatabase, on_both_databases, on_both_engines, second_instance};
use db::coverage::Subject;
use db::page::PageRequest;
use db::products::ProductFilter;
use db::read_model::ReadModel;
use db::vocabulary::SupportStatus;
use serde_json::{Value, json};

async fn get_json(app: &TestApp, token: &str, path: &str) -> Value {
    let response = app.get(path).bearer_auth(token).send().await.unwrap();
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.unwrap()
}

/// Waits until `check` holds, for at most one second; returns how long it took.
async fn within_one_second<F, Fut>(mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if check().await {
            return started.elapsed();
        }
        assert!(started.elapsed() < Duration::from_secs(1), "not reflected within one second");
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}

fn memory_answers_as_the_database_does(test_db: TestDatabase) {
    let model = ReadModel::load(&test_db.db).unwrap();
    let (organisations, products): (Vec<String>, Vec<i64>) = test_db
        .db
        .read(|conn| {
            use diesel::prelude::*;
            let organisations =
                db::schema::organisations::table.select(db::schema::organisations::code).load(conn)?;
            let products = db::schema::products::table.select(db::schema::products::id).load(conn)?;
            Ok((organisations, products))
        })
        .unwrap();
    let dates = ["2009-01-01", "2019-04-01", "2021-06-01", "2024-06-01", "2026-11-30", "2030-01-01"];
    let mut compared = 0;
    for on in dates.map(|d| d.parse().unwrap()) {
        for organisation in organisations.iter().step_by(3) {
            for product in &products {
                let from_db = test_db
                    .db
                    .read(|conn| db::coverage::answer(conn, organisation, Subject::Product(*product), on));
                let from_memory = model.coverage(organisation, Subject::Product(*product), on);
                assert_eq!(
                    format!("{from_db:?}"),
                    format!("{from_memory:?}"),
                    "{organisation} {product} {on}"
                );
                compared += 1;
            }
            for category in ["medical-device-software", "operating-system", "no-such-category"] {
                let subject = || Subject::Category(category.to_owned());
                let from_db = test_db.db.read(|conn| db::coverage::answer(conn, organisation, subject(), on));
                assert_eq!(
                    format!("{from_db:?}"),
                    format!("{:?}", model.coverage(organisation, subject(), on))
                );
            }
        }
    }
    assert!(compared > 1000, "compared {compared} answers");
}

on_both_databases!(memory_answers_as_the_database_does);

/// Every page of the product list, as the database answers it and as the read model does.
fn every_page(
    test_db: &TestDatabase,
    filter: &ProductFilter,
    limit: i64,
    from_memory: bool,
) -> Vec<Vec<i64>> {
    let on = "2026-11-30".parse().unwrap();
    let mut pages = Vec::new();
    let mut cursor = None;
    loop {
        let page = PageRequest { limit: Some(limit), cursor };
        let found = if from_memory {
            db::products::list_using_read_model(&test_db.db, filter, on, &page)
        } else {
            test_db.db.read(|conn| db::products::list(conn, filter, on, &page))
        }
        .unwrap();
        pages.push(found.items.iter().map(|product| product.id).collect());
        match found.next_cursor {
            Some(next) => cursor = Some(next),
            None => return pages,
        }
    }
}

fn product_text_search_from_memory_pages_as_the_database_does(test_db: TestDatabase) {
    test_db.db.attach_read_model(std::sync::Arc::new(ReadModel::load(&test_db.db).unwrap()));
    let texts =
        ["windows", "WINDOWS", "MS-", "365", "e3", "Enterprise", "o", "", "100%", "a_b", "no such product"];
    let mut matched = 0;
    for text in texts {
        let filters = [
            ProductFilter { q: Some(text.into()), ..Default::default() },
            ProductFilter {
                q: Some(text.into()),
                category: Some("operating-system".into()),
                ..Default::default()
            },
            ProductFilter {
                q: Some(text.into()),
                support_status: Some(SupportStatus::Unsupported),
                ..Default::default()
            },
            ProductFilter { q: Some(text.into()), nationally_licensed: Some(true), ..Default::default() },
        ];
        for filter in &filters {
            for limit in [1, 3, 50] {
                let from_db = every_page(&test_db, filter, limit, false);
                assert_eq!(from_db, every_page(&test_db, filter, limit, true), "{filter:?}, {limit} a page");
                matched += from_db.iter().map(Vec::len).sum::<usize>();
            }
        }
    }
    assert!(matched > 100, "the texts matched {matched} products in all");
}

on_both_databases!(product_text_search_from_memory_pages_as_the_database_does);

async fn writes_are_reflected_at_once_here_and_within_a_second_elsewhere(app: TestApp) {
    let other = second_instance(&app);
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    let (officer_user, officer) = app.sign_in(Role::Officer, Some("RR8")).await;
    let products = get_json(&app, &admin, "/v1/products?q=MS-M365-E3").await;
    let product =
        products["items"].as_array().unwrap().iter().find(|p| p["sku"] == "MS-M365-E3").unwrap()["id"]
            .clone();
    let path = format!("/v1/coverage?organisation=RR8&product={product}");
    let before = get_json(&other, &officer, &path).await;
    let entitlement = before["licences"][0]["entitlement_id"].as_i64().unwrap();
    let remaining = before["licences"][0]["seats_remaining"].as_i64().unwrap();

    // A claim on this instance: the next request here sees it, and the other instance soon does.
    let claim = app
        .post(&format!("/v1/entitlements/{entitlement}/allocations"))
        .bearer_auth(&officer)
        .json(&json!({"organisation": "RR8", "quantity": 25}))
        .send()
        .await
        .unwrap();
    assert_eq!(claim.status(), 201);
    let here = get_json(&app, &officer, &path).await;
    assert_eq!(here["licences"][0]["seats_remaining"], remaining - 25, "at once on the writing instance");
    let took = within_one_second(|| async {
        get_json(&other, &officer, &path).await["licences"][0]["seats_remaining"] == remaining - 25
    })
    .await;
    eprintln!("a claim reached the other instance in {took:?}");

    // A change of an organisation's kind changes eligibility.
    let patch = app
        .client
        .patch(app.url("/v1/organisations/RR8"))
        .bearer_auth(&admin)
        .header("if-match", "*")
        .json(&json!({"kind": "gp_practice"}))
        .send()
        .await
        .unwrap();
    assert_eq!(patch.status(), 200);
    let warned =
        |answer: &Value| answer["warnings"].as_array().unwrap().iter().any(|w| w["code"] == "not_eligible");
    assert!(warned(&get_json(&app, &officer, &path).await), "at once on the writing instance");
    within_one_second(|| async { warned(&get_json(&other, &officer, &path).await) }).await;

    // Disabling a user ends their token here at once, and on the other instance within a second.
    let disable = app
        .client
        .patch(app.url(&format!("/v1/users/{}", officer_user.id)))
        .bearer_auth(&admin)
        .header("if-match", "*")
        .json(&json!({"disabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(disable.status(), 200);
    assert_eq!(app.get("/v1/me").bearer_auth(&officer).send().await.unwrap().status(), 401);
    within_one_second(|| async {
        other.get("/v1/me").bearer_auth(&officer).send().await.unwrap().status() == 401
    })
    .await;

    // A new product and a newly published standard reach the other instance too.
    let suppliers = get_json(&app, &admin, "/v1/suppliers").await;
    let new = json!({"supplier_id": suppliers["items"][0]["id"], "name": "New scanner", "sku": "RM-NEW-1",
                     "category": "medical-device-software"});
    let created: Value =
        app.post("/v1/products").bearer_auth(&admin).json(&new).send().await.unwrap().json().await.unwrap();
    let new_path = format!("/v1/coverage?organisation=RJ1&product={}", created["id"]);
    assert_eq!(get_json(&app, &admin, &new_path).await["decision"], "buy_locally");
    within_one_second(|| async {
        other.get(&new_path).bearer_auth(&admin).send().await.unwrap().status() == 200
    })
    .await;
    // The product list's text search (answered from memory) finds it as well.
    let found = |page: Value| page["items"].as_array().unwrap().iter().any(|p| p["id"] == created["id"]);
    assert!(found(get_json(&app, &admin, "/v1/products?q=new%20SCANNER").await), "at once here");
    within_one_second(|| async { found(get_json(&other, &admin, "/v1/products?q=new%20SCANNER").await) })
        .await;
}

/// Each kind of record the read model holds (agreement, entitlement line, standard and its
/// version, assessment) changes the answer on the writing instance at once and on another
/// instance within a second. A draft agreement is left out of the answer until it is active.
async fn every_cached_kind_reaches_the_other_instance(app: TestApp) {
    let other = second_instance(&app);
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    let (_, author) = app.sign_in(Role::Exemplar, Some("RTH")).await;
    let send = |request: reqwest::RequestBuilder| async move {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json::<Value>().await.unwrap_or(Value::Null))
    };
    let suppliers = get_json(&app, &admin, "/v1/suppliers").await;
    let supplier = suppliers["items"][0]["id"].clone();
    let mut products = Vec::new();
    for sku in ["ROTA-A", "ROTA-B"] {
        let body = json!({"supplier_id": supplier, "name": format!("Rota {sku}"), "sku": sku, "category": "workforce"});
        let (status, product) = send(app.post("/v1/products").bearer_auth(&admin).json(&body)).await;
        assert_eq!(status, 201, "{product}");
        products.push(product["id"].as_i64().unwrap());
    }
    let coverage = |product: i64| format!("/v1/coverage?organisation=RR8&product={product}");
    let both = |path: String, check: fn(&Value) -> bool| {
        let (app, other, admin) = (&app, &other, admin.clone());
        async move {
            assert!(check(&get_json(app, &admin, &path).await), "at once on the writing instance: {path}");
            // Not yet known there (404) counts as not yet reflected.
            within_one_second(|| async {
                let response = other.get(&path).bearer_auth(&admin).send().await.unwrap();
                response.status() == 200 && check(&response.json().await.unwrap())
            })
            .await;
        }
    };

    // A draft agreement with a line for the first product: no national licence yet.
    let agreement = json!({"supplier_id": supplier, "reference": "ROTA-2026", "title": "Rota agreement",
                           "starts_on": "2020-01-01", "funding_model": "central", "status": "draft",
                           "eligible_kinds": ["trust"]});
    let (status, agreement) = send(app.post("/v1/agreements").bearer_auth(&admin).json(&agreement)).await;
    assert_eq!(status, 201, "{agreement}");
    let line = json!({"product_id": products[0], "tier": "national_provision", "metric": "per_user",
                      "seat_cap": 10, "eligible_kinds": ["trust"], "starts_on": "2020-01-01"});
    let (status, line) = send(
        app.post(&format!("/v1/agreements/{}/entitlements", agreement["id"])).bearer_auth(&admin).json(&line),
    )
    .await;
    assert_eq!(status, 201, "{line}");
    both(coverage(products[0]), |answer| answer["decision"] == "no_guidance").await;

    // The agreement made active: licensed nationally everywhere.
    let activate = app
        .client
        .patch(app.url(&format!("/v1/agreements/{}", agreement["id"])))
        .bearer_auth(&admin)
        .header("if-match", "*")
        .json(&json!({"status": "active"}));
    assert_eq!(send(activate).await.0, 200);
    both(coverage(products[0]), |answer| answer["decision"] == "nationally_licensed").await;

    // The line's cap changed: the seats left follow.
    let cap = app
        .client
        .patch(app.url(&format!("/v1/entitlements/{}", line["id"])))
        .bearer_auth(&admin)
        .header("if-match", "*")
        .json(&json!({"seat_cap": 7}));
    assert_eq!(send(cap).await.0, 200);
    both(coverage(products[0]), |answer| answer["licences"][0]["seats_remaining"] == 7).await;

    // A standard for the category, published: the second product is bought against it.
    both(coverage(products[1]), |answer| answer["decision"] == "no_guidance").await;
    let standard = json!({"publisher": "RTH", "category": "workforce", "title": "Rota systems",
                          "requirements": [{"code": "ROTA-01", "text": "Exports rotas as CSV", "level": "MUST"}]});
    let (status, standard) = send(app.post("/v1/standards").bearer_auth(&author).json(&standard)).await;
    assert_eq!(status, 201, "{standard}");
    let version = format!("/v1/standards/{}/versions/1", standard["id"]);
    assert_eq!(send(app.post(&format!("{version}/publish")).bearer_auth(&author)).await.0, 200);
    both(coverage(products[1]), |answer| answer["decision"] == "buy_locally").await;

    // An assessment: the product is listed as conforming.
    let assessment =
        json!({"product_id": products[1], "outcomes": [{"requirement": "ROTA-01", "met": true}]});
    let (status, assessed) =
        send(app.post(&format!("{version}/assessments")).bearer_auth(&author).json(&assessment)).await;
    assert_eq!(status, 201, "{assessed}");
    both(coverage(products[1]), |answer| {
        answer["standards"][0]["conforming_products"].as_array().is_some_and(|p| !p.is_empty())
    })
    .await;
}

on_both_engines!(
    writes_are_reflected_at_once_here_and_within_a_second_elsewhere,
    every_cached_kind_reaches_the_other_instance
);
