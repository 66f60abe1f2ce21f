//! Product search that forgives typos and word order (issue 22), on the API's product list and
//! the start page's "Which product do you mean?", from each instance's search index, on both
//! engines.

use catalogue_tests::{Role, TestApp, on_both_engines, second_instance, status_and_json};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

use crate::web::Browser;

/// The SKUs of the products `GET /v1/products?q=` finds for `text` (the first 500).
async fn skus_found(app: &TestApp, token: &str, text: &str) -> Vec<String> {
    let path = format!("/v1/products?limit=500&q={}", text.replace(' ', "%20"));
    let (status, page) = status_and_json(app.get(&path).bearer_auth(token)).await;
    assert_eq!(status, 200, "{path}: {page}");
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["sku"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn ids_found(app: &TestApp, token: &str, text: &str) -> Vec<i64> {
    let path = format!("/v1/products?limit=500&q={}", text.replace(' ', "%20"));
    let (status, page) = status_and_json(app.get(&path).bearer_auth(token)).await;
    assert_eq!(status, 200, "{path}: {page}");
    page["items"].as_array().unwrap().iter().map(|p| p["id"].as_i64().unwrap()).collect()
}

fn has(found: &[String], sku: &str) -> bool {
    found.iter().any(|s| s == sku)
}

async fn typos_and_word_order_are_forgiven(app: TestApp) {
    let (_, token) = app.sign_in(Role::Officer, Some("RR8")).await;

    let windows_10 = skus_found(&app, &token, "windos 10").await;
    assert!(has(&windows_10, "MS-WIN10-ENT") && has(&windows_10, "MS-WIN10-PRO"), "{windows_10:?}");
    assert!(!has(&windows_10, "MS-WIN7-ENT"), "{windows_10:?}");

    for text in ["365 E3 microsoft", "microsoft 365 e3", "mircosoft 365 E3"] {
        let found = skus_found(&app, &token, text).await;
        assert!(has(&found, "MS-M365-E3-FULL") && has(&found, "MS-M365-E3"), "{text}: {found:?}");
        assert!(!has(&found, "MS-M365-E5") && !has(&found, "MS-WIN10-ENT"), "{text}: {found:?}");
    }

    // The SKU, whole and begun, and a prefix of a name, as the substring search found them.
    assert_eq!(skus_found(&app, &token, "MS-WIN10-ENT").await, ["MS-WIN10-ENT"]);
    assert_eq!(skus_found(&app, &token, "ms-win10").await, ["MS-WIN10-ENT", "MS-WIN10-PRO"]);
    assert!(has(&skus_found(&app, &token, "win").await, "MS-WIN7-ENT"));
    // A supplier's name, and a release's.
    assert!(has(&skus_found(&app, &token, "nhs englnd").await, "NHSE-NHSMAIL"));
    assert_eq!(skus_found(&app, &token, "windows 1909").await, ["MS-WIN10-ENT", "MS-WIN10-PRO"]);

    // What must not match does not: every word must, and digits are not loosened.
    assert_eq!(skus_found(&app, &token, "windows 95").await, Vec::<String>::new());
    assert_eq!(skus_found(&app, &token, "windows visio").await, Vec::<String>::new());
    assert_eq!(skus_found(&app, &token, "ms-win9").await, Vec::<String>::new());

    // Paged by cursor in id order, as without a text.
    let (_, first) = status_and_json(app.get("/v1/products?q=windows&limit=2").bearer_auth(&token)).await;
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let path = format!("/v1/products?q=windows&limit=500&cursor={cursor}");
    let (_, rest) = status_and_json(app.get(&path).bearer_auth(&token)).await;
    let mut paged: Vec<i64> =
        first["items"].as_array().unwrap().iter().map(|p| p["id"].as_i64().unwrap()).collect();
    paged.extend(rest["items"].as_array().unwrap().iter().map(|p| p["id"].as_i64().unwrap()));
    let whole = ids_found(&app, &token, "windows").await;
    assert_eq!(paged, whole);
    assert!(whole.windows(2).all(|pair| pair[0] < pair[1]), "in id order");
}

/// The start page's "Which product do you mean?" searches the same index.
async fn the_start_page_forgives_typos(app: TestApp) {
    let officer = app.create_user(Role::Officer, Some("RR8"));
    let mut browser = Browser::new(&app);
    browser.sign_in(&officer).await;
    let page = browser.get("/?q=windos+10").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Windows 10 Enterprise"), "{}", page.body);
    assert!(page.body.contains("Windows 10 Pro"), "{}", page.body);
    // A question that names one product exactly is still answered for it.
    let answer = browser.get("/?q=microsoft+365+e5").await;
    assert!(answer.body.contains("Microsoft 365 E5"), "{}", answer.body);
    let nothing = browser.get("/?q=windows+visio").await;
    assert!(nothing.body.contains("Nothing matches"), "{}", nothing.body);
}

/// Waits until `check` holds, for at most one second.
async fn within_one_second<F, Fut>(mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < Duration::from_secs(1), "not reflected within one second");
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A product made through the API is found at once by a typo of its name, on the instance that
/// made it, and within a second on another; renamed, it is found by its new name and not its old.
async fn the_index_keeps_in_step_with_writes(app: TestApp) {
    let other = second_instance(&app);
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    let supplier = app.any_supplier_id(&admin).await;
    let body = json!({"supplier_id": supplier, "name": "Radiology Viewer", "edition": "Workstation",
                      "sku": "RADV-WS-1", "category": "medical-device-software"});
    let id = app.created(&admin, "/v1/products", &body).await["id"].as_i64().unwrap();

    assert_eq!(ids_found(&app, &admin, "radiolgy viewr").await, [id], "at once, by a typo");
    assert_eq!(ids_found(&app, &admin, "workstation radiology").await, [id], "in any order");
    within_one_second(|| async { ids_found(&other, &admin, "radiolgy viewr").await == [id] }).await;

    let rename = app
        .patch_any_version(&format!("/v1/products/{id}"))
        .bearer_auth(&admin)
        .json(&json!({"name": "Pathology Portal"}));
    let (status, renamed): (u16, Value) = status_and_json(rename).await;
    assert_eq!(status, 200, "{renamed}");
    assert_eq!(ids_found(&app, &admin, "patholgy portal").await, [id], "by its new name at once");
    assert_eq!(ids_found(&app, &admin, "radiology").await, Vec::<i64>::new(), "not by its old name");
    within_one_second(|| async {
        ids_found(&other, &admin, "pathology").await == [id]
            && ids_found(&other, &admin, "radiology").await.is_empty()
    })
    .await;
}

/// A product a search has found is answered as it is now after it changes: its new name and
/// support dates (and so its status, and whether a status filter admits it) at once on the
/// instance that changed it, and within a second on another, whose search found it before.
async fn found_products_are_answered_as_they_are_now(app: TestApp) {
    let other = second_instance(&app);
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    let supplier = app.any_supplier_id(&admin).await;
    let body = json!({"supplier_id": supplier, "name": "Theatre Scheduler", "sku": "THS-1",
                      "category": "clinical-system", "mainstream_support_ends_on": "2099-12-31"});
    let id = app.created(&admin, "/v1/products", &body).await["id"].as_i64().unwrap();
    let found = |app: &TestApp, query: &str| {
        let request = app.get(&format!("/v1/products?{query}")).bearer_auth(&admin);
        async move {
            let (status, page) = status_and_json(request).await;
            assert_eq!(status, 200, "{page}");
            page["items"].as_array().unwrap().clone()
        }
    };
    // Text alone (the page's rows are then held in memory), and with a filter (applied in SQL).
    let text = "q=theatre%20scheduler";
    let supported = "q=theatre%20scheduler&support_status=supported";
    let unsupported = "q=theatre%20scheduler&support_status=unsupported";
    for instance in [&app, &other] {
        within_one_second(|| async { found(instance, text).await.len() == 1 }).await;
        assert_eq!(found(instance, text).await[0]["support_status"], "supported");
        assert_eq!(found(instance, supported).await.len(), 1);
        assert!(found(instance, unsupported).await.is_empty());
    }

    let change = app
        .patch_any_version(&format!("/v1/products/{id}"))
        .bearer_auth(&admin)
        .json(&json!({"edition": "Enterprise", "mainstream_support_ends_on": "2001-01-31"}));
    let (status, changed): (u16, Value) = status_and_json(change).await;
    assert_eq!(status, 200, "{changed}");
    let now_unsupported = |items: Vec<Value>| {
        items.len() == 1
            && items[0]["edition"] == "Enterprise"
            && items[0]["support_status"] == "unsupported"
            && items[0]["mainstream_support_ends_on"] == "2001-01-31"
    };
    assert!(now_unsupported(found(&app, text).await), "at once here");
    assert!(now_unsupported(found(&app, unsupported).await), "filtered, at once here");
    assert!(found(&app, supported).await.is_empty(), "no longer supported here");
    within_one_second(|| async {
        now_unsupported(found(&other, text).await)
            && now_unsupported(found(&other, unsupported).await)
            && found(&other, supported).await.is_empty()
    })
    .await;
}

/// The ids of every product `path` lists, page by page (`path` has its own query string).
async fn every_page(app: &TestApp, token: &str, path: &str) -> Vec<i64> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page_path = match &cursor {
            Some(cursor) => format!("{path}&cursor={cursor}"),
            None => path.to_owned(),
        };
        let (status, page) = status_and_json(app.get(&page_path).bearer_auth(token)).await;
        assert_eq!(status, 200, "{page_path}: {page}");
        ids.extend(page["items"].as_array().unwrap().iter().map(|p| p["id"].as_i64().unwrap()));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return ids,
        }
    }
}

/// The text filter narrows with the others (on SQLite the index's candidates are read by a chain
/// of `id = ?` joined with OR, which the other filters must AND around), in pages of any size.
async fn text_and_other_filters_narrow_together(app: TestApp) {
    let (_, token) = app.sign_in(Role::Officer, Some("RR8")).await;
    let windows = every_page(&app, &token, "/v1/products?q=windows&limit=500").await;
    assert!(windows.len() > 3, "{windows:?}");
    for limit in [1, 2, 7, 8, 9, 50] {
        let paged = every_page(&app, &token, &format!("/v1/products?q=windows&limit={limit}")).await;
        assert_eq!(paged, windows, "pages of {limit}");
    }
    let microsoft = every_page(&app, &token, "/v1/products?q=microsoft&limit=500").await;
    let (_, first) =
        status_and_json(app.get(&format!("/v1/products/{}", windows[0])).bearer_auth(&token)).await;
    let supplier = first["supplier_id"].as_i64().unwrap();
    for (filter, all) in [
        ("category=operating-system", "/v1/products?category=operating-system&limit=500".to_owned()),
        ("support_status=unsupported", "/v1/products?support_status=unsupported&limit=500".to_owned()),
        ("support_status=extended", "/v1/products?support_status=extended&limit=500".to_owned()),
        ("support_status=supported", "/v1/products?support_status=supported&limit=500".to_owned()),
        ("nationally_licensed=true", "/v1/products?nationally_licensed=true&limit=500".to_owned()),
        (&*format!("supplier_id={supplier}"), format!("/v1/products?supplier_id={supplier}&limit=500")),
    ] {
        let narrowed = every_page(&app, &token, &all).await;
        for (text, found) in [("windows", &windows), ("microsoft", &microsoft)] {
            let expected: Vec<i64> = found.iter().copied().filter(|id| narrowed.contains(id)).collect();
            for limit in [3, 50] {
                let both =
                    every_page(&app, &token, &format!("/v1/products?q={text}&{filter}&limit={limit}")).await;
                assert_eq!(both, expected, "q={text} and {filter}, pages of {limit}");
            }
        }
    }
}

on_both_engines!(
    text_and_other_filters_narrow_together,
    found_products_are_answered_as_they_are_now,
    typos_and_word_order_are_forgiven,
    the_start_page_forgives_typos,
    the_index_keeps_in_step_with_writes
);
