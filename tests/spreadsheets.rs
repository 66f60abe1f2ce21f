//! Lists and reports as CSV (issue 18, "data out"): every operation whose OpenAPI document
//! offers `text/csv` answers with it on `?format=csv` and on `Accept: text/csv`, its header is the
//! item's fields, a file holds every row that the JSON pages hold (across the server's batches),
//! and text that a spreadsheet would run as a formula is neutralised.

use catalogue_tests::{Role, TestApp, on_both_engines};
use serde_json::Value;

/// The committed document's GET operations that offer `text/csv`.
fn csv_operations() -> Vec<String> {
    let document: Value = serde_json::from_str(include_str!("../openapi/openapi.json")).unwrap();
    let mut paths: Vec<String> = document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, operations)| operations["get"]["responses"]["200"]["content"].get("text/csv").is_some())
        .map(|(path, _)| path.clone())
        .collect();
    paths.sort();
    paths
}

async fn first_id(app: &TestApp, token: &str, list: &str) -> i64 {
    let page: Value =
        app.get(&format!("{list}?limit=1")).bearer_auth(token).send().await.unwrap().json().await.unwrap();
    page["items"][0]["id"].as_i64().unwrap_or_else(|| panic!("{list} has an item: {page}"))
}

/// A CSV body's header and rows.
fn parse(text: &str) -> (Vec<String>, Vec<csv::StringRecord>) {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header = reader.headers().unwrap().iter().map(str::to_owned).collect();
    (header, reader.records().map(Result::unwrap).collect())
}

async fn csv_of(
    app: &TestApp,
    token: &str,
    path: &str,
    accept_header: bool,
) -> (Vec<String>, Vec<csv::StringRecord>) {
    let request = if accept_header {
        app.get(path).bearer_auth(token).header("accept", "text/csv")
    } else {
        let joiner = if path.contains('?') { '&' } else { '?' };
        app.get(&format!("{path}{joiner}format=csv")).bearer_auth(token)
    };
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200, "{path}");
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/csv"), "{path}: {content_type}");
    parse(&response.text().await.unwrap())
}

/// Every item of a paged list, walking its JSON pages.
async fn every_item(app: &TestApp, token: &str, path: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let joiner = if path.contains('?') { '&' } else { '?' };
        let mut url = format!("{path}{joiner}limit=500");
        if let Some(cursor) = &cursor {
            url.push_str(&format!("&cursor={cursor}"));
        }
        let page: Value = app.get(&url).bearer_auth(token).send().await.unwrap().json().await.unwrap();
        items.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return items,
        }
    }
}

/// Every operation the document says offers CSV does, both ways of asking, with a header that
/// names the JSON item's fields; a paged list's file has as many rows as its pages have items.
async fn every_csv_operation_answers_csv(app: TestApp) {
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    let product = app.with_connection(|conn| {
        use db::schema::products;
        use diesel::prelude::*;
        products::table
            .filter(products::sku.eq("MS-WIN10-ENT"))
            .select(products::id)
            .first::<i64>(conn)
            .unwrap()
    });
    let agreement = first_id(&app, &admin, "/v1/agreements").await;
    let entitlement = first_id(&app, &admin, &format!("/v1/agreements/{agreement}/entitlements")).await;
    let standard = first_id(&app, &admin, "/v1/standards").await;
    let advisory = first_id(&app, &admin, "/v1/advisories").await;
    let operations = csv_operations();
    assert!(operations.len() >= 25, "the lists and reports that offer CSV: {operations:?}");
    for template in operations {
        let path = template
            .replace("/products/{id}", &format!("/products/{product}"))
            .replace("/agreements/{id}", &format!("/agreements/{agreement}"))
            .replace("/entitlements/{id}", &format!("/entitlements/{entitlement}"))
            .replace("/standards/{id}/versions/{n}", &format!("/standards/{standard}/versions/1"))
            .replace("/advisories/{id}", &format!("/advisories/{advisory}"))
            .replace("{code}", "RR8");
        assert!(!path.contains('{'), "a path parameter this test does not fill: {template}");
        let (header, rows) = csv_of(&app, &admin, &path, false).await;
        assert!(!header.is_empty(), "{path} has a header");
        let (accepted_header, accepted_rows) = csv_of(&app, &admin, &path, true).await;
        assert_eq!(
            (&header, rows.len()),
            (&accepted_header, accepted_rows.len()),
            "{path}: Accept: text/csv"
        );
        // The JSON answer (none for the reconciliation's export, which is CSV only).
        let json: Value =
            app.get(&path).bearer_auth(&admin).send().await.unwrap().json().await.unwrap_or_default();
        if json.get("next_cursor").is_some() {
            let items = every_item(&app, &admin, &path).await;
            assert_eq!(rows.len(), items.len(), "{path}: a row per item");
            if let Some(first) = items.first() {
                let fields: Vec<&String> = first.as_object().unwrap().keys().collect();
                for field in fields {
                    assert!(header.contains(field), "{path}: column {field} in {header:?}");
                }
            }
        }
    }
}
on_both_engines!(every_csv_operation_answers_csv);

/// A file longer than one of the server's batches (500 rows) holds every row once, in the
/// pages' order, and starts after a cursor when given one.
async fn a_csv_file_spans_batches_in_page_order(app: TestApp) {
    let size = db::synthetic::SyntheticSize {
        organisations: 700,
        products: 5,
        entitlements: 1,
        allocations: 0,
        estates: 0,
        seed: 7,
    };
    db::synthetic::generate(app.db(), size, &mut |_, _| {}).unwrap();
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    let items = every_item(&app, &admin, "/v1/organisations").await;
    assert!(items.len() > 700, "{}", items.len());
    let (header, rows) = csv_of(&app, &admin, "/v1/organisations", false).await;
    let code_column = header.iter().position(|c| c == "code").unwrap();
    let codes: Vec<&str> = rows.iter().map(|row| &row[code_column]).collect();
    let expected: Vec<&str> = items.iter().map(|item| item["code"].as_str().unwrap()).collect();
    assert_eq!(codes, expected);
    let page: Value =
        app.get("/v1/organisations?limit=10").bearer_auth(&admin).send().await.unwrap().json().await.unwrap();
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, rest) = csv_of(&app, &admin, &format!("/v1/organisations?cursor={cursor}"), false).await;
    assert_eq!(rest.len(), expected.len() - 10);
    assert_eq!(&rest[0][code_column], expected[10]);
    let bad = app.get("/v1/products?format=csv&cursor=nope").bearer_auth(&admin).send().await.unwrap();
    assert_eq!(bad.status(), 400, "a bad cursor is a problem, not a broken file");
    let wrong = app.get("/v1/organisations?format=xlsx").bearer_auth(&admin).send().await.unwrap();
    assert_eq!(wrong.status(), 400);
}
on_both_engines!(a_csv_file_spans_batches_in_page_order);

/// Names that a spreadsheet would run as formulas are written with a leading apostrophe, in
/// lists as in reports; numbers stay numbers; JSON is unchanged.
async fn formula_cells_are_neutralised_in_lists(app: TestApp) {
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    let supplier = app.any_supplier_id(&admin).await;
    for (name, sku) in [
        ("=HYPERLINK(\"http://x\",\"y\")", "CSV-F-1"),
        ("@SUM(A1)", "CSV-F-2"),
        ("+cmd|' /C calc'!A0", "CSV-F-3"),
    ] {
        let product =
            serde_json::json!({"supplier_id": supplier, "name": name, "sku": sku, "category": "csv-test"});
        app.created(&admin, "/v1/products", &product).await;
    }
    let (header, rows) = csv_of(&app, &admin, "/v1/products?category=csv-test", false).await;
    let name = header.iter().position(|c| c == "name").unwrap();
    let id = header.iter().position(|c| c == "id").unwrap();
    let names: Vec<&str> = rows.iter().map(|row| &row[name]).collect();
    assert_eq!(names, ["'=HYPERLINK(\"http://x\",\"y\")", "'@SUM(A1)", "'+cmd|' /C calc'!A0"]);
    assert!(rows.iter().all(|row| row[id].parse::<i64>().is_ok()), "ids stay numbers");
    let json: Value = app
        .get("/v1/products?category=csv-test")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(json["items"][0]["name"], "=HYPERLINK(\"http://x\",\"y\")", "JSON carries the text as it is");
}
on_both_engines!(formula_cells_are_neutralised_in_lists);

/// An officer's CSV holds only what the JSON would show them: their own organisation's.
async fn an_officers_file_holds_only_their_organisation(app: TestApp) {
    let (_, officer) = app.sign_in(Role::Officer, Some("RR8")).await;
    let theirs =
        app.get("/v1/organisations/RJ1/allocations?format=csv").bearer_auth(&officer).send().await.unwrap();
    assert_eq!(theirs.status(), 404);
    let report = app.get("/v1/reports/obligations?organisation=RJ1&format=csv").bearer_auth(&officer);
    assert_eq!(report.send().await.unwrap().status(), 404);
    let users = app.get("/v1/users?format=csv").bearer_auth(&officer).send().await.unwrap();
    assert_eq!(users.status(), 403);
}
on_both_engines!(an_officers_file_holds_only_their_organisation);

/// The pages that list things offer the whole list as CSV, under the page's own access rule.
async fn list_pages_offer_download_csv(app: TestApp) {
    use crate::web::Browser;
    let admin = app.create_user(Role::Admin, None);
    let mut browser = Browser::new(&app);
    browser.sign_in(&admin).await;
    for page in [
        "/agreements",
        "/users",
        "/advisories",
        "/standards",
        "/reports/unsupported",
        "/reports/reconciliation",
    ] {
        let shown = browser.get(page).await;
        assert_eq!(shown.status, 200, "{page}");
        let marker = "href=\"";
        let download = shown
            .body
            .match_indices(marker)
            .map(|(at, _)| shown.body[at + marker.len()..].split('"').next().unwrap_or_default())
            .find(|href| href.contains("format=csv"))
            .unwrap_or_else(|| panic!("{page} offers Download CSV"))
            .replace("&amp;", "&")
            .replace("&#38;", "&");
        let file = browser.get(&download).await;
        assert_eq!(file.status, 200, "{download}");
        let content_type = file.headers["content-type"].to_str().unwrap();
        assert!(content_type.starts_with("text/csv"), "{download}: {content_type}");
        let (header, _) = parse(&file.body);
        assert!(!header.is_empty(), "{download} has a header");
    }
    let officer = app.create_user(Role::Officer, Some("RR8"));
    let mut browser = Browser::new(&app);
    browser.sign_in(&officer).await;
    for national in
        ["/users?format=csv", "/reports/reconciliation?format=csv", "/reports/unsupported?format=csv"]
    {
        assert_eq!(browser.get(national).await.status, 403, "{national}");
    }
}
on_both_engines!(list_pages_offer_download_csv);
