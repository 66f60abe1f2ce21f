//! Adding and changing a product from the pages, on both engines: every problem listed at once, in
//! the form's order, and beside its field; what was typed kept; nothing written while anything is
//! wrong; the three dates read from their Day, Month and Year boxes; the successor named by its
//! product ID and shown by its label; a change made against an older revision refused instead of
//! silently undoing someone else's change; and only the national team offered or let in. The API
//! keeps its own words for the same rules (`db::products::problems`).

use catalogue_tests::{Role, TestApp, on_both_engines};
use chrono::NaiveDate;
use db::products::{Product, ProductFields};

use crate::web::{Browser, Page};

fn today() -> NaiveDate {
    chrono::Utc::now().date_naive()
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn product(app: &TestApp, id: i64) -> Product {
    app.with_connection(|conn| db::products::get(conn, id, today()).unwrap())
}

fn count_products(app: &TestApp) -> usize {
    let mut page = db::PageRequest { limit: Some(db::page::MAX_LIMIT), cursor: None };
    let mut count = 0;
    loop {
        let found = app.with_connection(|conn| {
            db::products::list(conn, &db::products::ProductFilter::default(), today(), &page).unwrap()
        });
        count += found.items.len();
        match found.next_cursor {
            Some(cursor) => page.cursor = Some(cursor),
            None => return count,
        }
    }
}

/// The seeded product with this SKU.
fn seeded(app: &TestApp, sku: &str) -> Product {
    let filter = db::products::ProductFilter { q: Some(sku.to_owned()), ..Default::default() };
    let page = db::PageRequest { limit: Some(db::page::MAX_LIMIT), cursor: None };
    app.with_connection(|conn| {
        db::products::list(conn, &filter, today(), &page)
            .unwrap()
            .items
            .into_iter()
            .find(|p| p.sku.as_deref() == Some(sku))
            .unwrap_or_else(|| panic!("{sku}"))
    })
}

fn assert_listed(page: &Page, field: &str, message: &str) {
    assert!(
        page.body.contains(&format!(r##"<a href="#{field}">{message}"##)),
        "{field}: {message} is listed in the summary: {}",
        page.body
    );
}

/// The fields the summary links to, in order.
fn listed_fields(page: &Page) -> Vec<String> {
    let summary = page.body.split("nhsuk-error-summary__list").nth(1).unwrap_or_default();
    let summary = summary.split("</ul>").next().unwrap_or_default();
    summary.split(r##"<a href="#"##).skip(1).map(|rest| rest.split('"').next().unwrap().to_owned()).collect()
}

fn id_from(location: &str) -> i64 {
    location.trim_start_matches("/products/").split('?').next().unwrap().parse().unwrap()
}

async fn the_national_team_adds_a_product(app: TestApp) {
    let windows = seeded(&app, "MS-WIN10-ENT");
    let supplier = windows.supplier_id.to_string();
    let admin = app.create_user(Role::Admin, None);
    let mut browser = Browser::new(&app);
    browser.sign_in(&admin).await;
    let start = browser.get("/").await;
    assert!(
        start.body.contains(r#"<a href="/products/new">Add a product</a>"#),
        "offered where products are found"
    );
    let form = browser.get("/products/new").await;
    assert_eq!(form.status, 200);
    assert!(form.body.contains("<title>Add a product"), "{}", form.body);
    assert!(form.body.contains(&format!(r#"<option value="{supplier}">{}</option>"#, windows.supplier)));
    let token = form.hidden("csrf_token");
    let before = count_products(&app);

    let empty = browser.post_form("/products", &[("csrf_token", &token)]).await;
    assert_eq!(empty.status, 422);
    assert!(empty.body.contains("<title>Error: Add a product"), "{}", empty.body);
    assert_listed(&empty, "supplier", "Choose the supplier");
    assert_listed(&empty, "name", "Enter the product&#39;s name");
    assert_listed(&empty, "category", "Enter the category in lower-case letters, digits and hyphens");
    assert_eq!(listed_fields(&empty), ["supplier", "name", "category"], "optional dates left empty are fine");
    for field in ["supplier", "name", "category"] {
        assert!(empty.body.contains(&format!(r#"id="{field}-error""#)), "{field} has its message beside it");
    }

    // Everything wrong at once: each listed, in the form's order, and what was typed kept.
    let mut fields = vec![
        ("csrf_token", token.as_str()),
        ("supplier", ""),
        ("name", "  "),
        ("edition", "Enterprise"),
        ("version", "24H2"),
        ("sku", "MS-WIN12-ENT"),
        ("category", "Operating System"),
        ("released_on-day", "31"),
        ("released_on-month", "2"),
        ("released_on-year", "2026"),
        ("mainstream_support_ends_on-day", "14"),
        ("mainstream_support_ends_on-month", "10"),
        ("mainstream_support_ends_on-year", "2036"),
        ("extended_support_ends_on-day", "13"),
        ("extended_support_ends_on-month", "Oct"),
        ("extended_support_ends_on-year", "2036"),
        ("dtac_passed", "yes"),
        ("successor", "987654321"),
        ("source", "Supplier's lifecycle page"),
    ];
    let wrong = browser.post_form("/products", &fields).await;
    assert_eq!(wrong.status, 422, "{}", wrong.body);
    assert_eq!(
        listed_fields(&wrong),
        ["supplier", "name", "category", "released_on-day", "mainstream_support_ends_on-day", "successor"],
        "every problem, in the form's order"
    );
    assert_listed(&wrong, "released_on-day", "Release date must be a real date");
    assert_listed(
        &wrong,
        "mainstream_support_ends_on-day",
        "Mainstream support must end on or before extended support",
    );
    assert_listed(&wrong, "successor", "There is no product 987654321");
    for kept in [
        r#"value="Enterprise""#,
        r#"value="24H2""#,
        r#"value="MS-WIN12-ENT""#,
        r#"value="Operating System""#,
        r#"value="31""#,
        r#"value="Oct""#,
        r#"value="987654321""#,
        r#"value="Supplier&#39;s lifecycle page""#,
        r#"name="dtac_passed" type="checkbox" value="yes" checked"#,
    ] {
        assert!(wrong.body.contains(kept), "{kept} is kept: {}", wrong.body);
    }
    assert!(!wrong.body.contains(r#"name="mds2_supplied" type="checkbox" value="yes" checked"#));
    assert_eq!(count_products(&app), before, "nothing is written while anything is wrong");

    // A successor that is not a number is said plainly.
    fields[17] = ("successor", "Windows 11");
    let not_a_number = browser.post_form("/products", &fields).await;
    assert_listed(&not_a_number, "successor", "Enter the successor&#39;s product ID as a number");

    let successor = seeded(&app, "MS-WIN11-ENT");
    let successor_id = successor.id.to_string();
    fields[1] = ("supplier", &supplier);
    fields[2] = ("name", " Windows 12 ");
    fields[6] = ("category", "operating-system");
    fields[7] = ("released_on-day", "1");
    fields[15] = ("extended_support_ends_on-year", "2037");
    fields[17] = ("successor", &successor_id);
    let added = browser.post_form("/products", &fields).await;
    assert_eq!(added.status, 303, "{}", added.body);
    let id = id_from(added.location());
    assert_eq!(added.location(), format!("/products/{id}?notice=added"));
    let shown = browser.get(added.location()).await;
    assert!(shown.body.contains("The product is added."), "{}", shown.body);
    assert!(shown.body.contains(&format!(
        r#"<a href="/products/{}">{}</a>"#,
        successor.id,
        successor.label()
    )));
    let stored = product(&app, id);
    assert_eq!((stored.name.as_str(), stored.edition.as_str()), ("Windows 12", "Enterprise"));
    assert_eq!(stored.supplier_id, windows.supplier_id);
    assert_eq!(stored.category, "operating-system");
    assert_eq!(stored.released_on, Some(date(2026, 2, 1)), "read from three boxes");
    assert_eq!(stored.mainstream_support_ends_on, Some(date(2036, 10, 14)));
    assert_eq!(stored.extended_support_ends_on, Some(date(2037, 10, 13)), "a month by its name");
    assert!(stored.dtac_passed && !stored.mds2_supplied);
    assert_eq!(stored.successor_id, Some(successor.id));
    assert_eq!(stored.source.as_deref(), Some("Supplier's lifecycle page"));
    assert_eq!(count_products(&app), before + 1);

    // Only the national team.
    let officer = app.create_user(Role::Officer, Some("RR8"));
    let mut theirs = Browser::new(&app);
    theirs.sign_in(&officer).await;
    assert_eq!(theirs.get("/products/new").await.status, 403);
    assert!(!theirs.get("/").await.body.contains("/products/new"), "no link for them");
    let their_token = theirs.get("/").await.hidden("csrf_token");
    fields[0] = ("csrf_token", &their_token);
    fields[2] = ("name", "Windows 13");
    assert_eq!(theirs.post_form("/products", &fields).await.status, 403);
    assert_eq!(count_products(&app), before + 1, "nothing more");
}

async fn a_change_made_since_the_form_was_opened_is_not_undone(app: TestApp) {
    let windows = seeded(&app, "MS-WIN10-ENT");
    let successor = seeded(&app, "MS-WIN11-ENT");
    let fields = ProductFields {
        name: "Windows 12".into(),
        sku: Some("MS-WIN12-ENT".into()),
        released_on: Some(date(2026, 2, 1)),
        mainstream_support_ends_on: Some(date(2036, 10, 14)),
        extended_support_ends_on: None,
        successor_id: Some(successor.id),
        source: None,
        ..ProductFields::from_product(&windows)
    };
    let id = db::products::create(app.db(), &db::Actor::system("test"), fields, today()).unwrap().id;
    let (_, api_token) = app.sign_in(Role::Admin, None).await;
    let admin = app.create_user(Role::Admin, None);
    let mut browser = Browser::new(&app);
    browser.sign_in(&admin).await;
    let page = browser.get(&format!("/products/{id}")).await;
    assert!(page.body.contains(&format!(r#"href="/products/{id}/edit">Change"#)), "admins may change it");

    let path = format!("/products/{id}/edit");
    let form = browser.get(&path).await;
    assert_eq!(form.status, 200);
    assert!(form.body.contains("<title>Change Windows 12 Enterprise"), "{}", form.body);
    assert!(form.body.contains(r#"value="Windows 12""#), "filled in as it stands");
    assert!(form.body.contains(r#"id="released_on-month" name="released_on-month" type="text" inputmode="numeric" spellcheck="false" value="2""#));
    assert!(form.body.contains(r#"id="extended_support_ends_on-year" name="extended_support_ends_on-year" type="text" inputmode="numeric" spellcheck="false" value="""#));
    assert!(
        form.body.contains(&format!("Now: {} (product {})", successor.label(), successor.id)),
        "the successor by its label: {}",
        form.body
    );
    let (token, revision) = (form.hidden("csrf_token"), form.hidden("revision"));
    let stored_revision = product(&app, id).revision;
    assert_eq!(revision, stored_revision.to_string());

    let supplier = windows.supplier_id.to_string();
    let own = id.to_string();
    let mut fields = vec![
        ("csrf_token", token.as_str()),
        ("revision", revision.as_str()),
        ("supplier", supplier.as_str()),
        ("name", "Windows 12"),
        ("edition", "Enterprise"),
        ("sku", "MS-WIN12-ENT"),
        ("category", "operating-system"),
        ("mainstream_support_ends_on-day", "14"),
        ("mainstream_support_ends_on-month", "10"),
        ("mainstream_support_ends_on-year", "2036"),
        ("extended_support_ends_on-day", "1"),
        ("extended_support_ends_on-month", "1"),
        ("extended_support_ends_on-year", "2030"),
        ("successor", own.as_str()),
        ("source", ""),
    ];
    let wrong = browser.post_form(&path, &fields).await;
    assert_eq!(wrong.status, 422, "{}", wrong.body);
    assert_eq!(listed_fields(&wrong), ["mainstream_support_ends_on-day", "successor"]);
    assert_listed(&wrong, "successor", "The successor cannot be this product");
    assert!(wrong.body.contains(r#"value="2030""#), "what was typed is kept");
    assert_eq!(product(&app, id).revision, stored_revision, "nothing is written");

    // Meanwhile, someone else changes it through the API.
    let elsewhere = app
        .patch_any_version(&format!("/v1/products/{id}"))
        .bearer_auth(&api_token)
        .json(&serde_json::json!({"version": "24H2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(elsewhere.status(), 200);

    fields[10] = ("extended_support_ends_on-day", "13");
    fields[11] = ("extended_support_ends_on-month", "10");
    fields[12] = ("extended_support_ends_on-year", "2037");
    fields[13] = ("successor", "");
    fields.push(("mds2_supplied", "yes"));
    let stale = browser.post_form(&path, &fields).await;
    assert_eq!(stale.status, 409, "{}", stale.body);
    assert_listed(&stale, "changed-meanwhile", "Someone changed this product since you opened it");
    assert!(
        stale.body.contains(&format!(r#"href="/products/{id}" target="_blank""#)),
        "a link to it as it is"
    );
    assert!(stale.body.contains(r#"value="2037""#), "what was typed is kept");
    let now = product(&app, id);
    assert_eq!(now.version, "24H2", "the other change is not undone");
    assert_eq!(now.extended_support_ends_on, None);
    assert_eq!(stale.hidden("revision"), now.revision.to_string(), "the form now carries the new revision");

    // Sent again, knowingly: it replaces the other change.
    let new_revision = stale.hidden("revision");
    fields[1] = ("revision", new_revision.as_str());
    let saved = browser.post_form(&path, &fields).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    assert_eq!(saved.location(), format!("/products/{id}?notice=changed"));
    assert!(browser.get(saved.location()).await.body.contains("Your changes to the product are saved."));
    let after = product(&app, id);
    assert_eq!(after.version, "", "the form's fields replace the other change");
    assert_eq!(after.extended_support_ends_on, Some(date(2037, 10, 13)));
    assert_eq!(after.released_on, None, "empty boxes clear a date");
    assert_eq!(after.successor_id, None, "an empty successor removes the link");
    assert!(after.mds2_supplied && !after.dtac_passed);

    let auditor = app.create_user(Role::Auditor, None);
    let mut theirs = Browser::new(&app);
    theirs.sign_in(&auditor).await;
    assert_eq!(theirs.get(&path).await.status, 403);
    assert!(!theirs.get(&format!("/products/{id}")).await.body.contains(&path), "no Change link");
}

/// The API refuses with its own words, the first rule broken: the pages' messages are theirs.
async fn the_api_keeps_its_words_for_the_same_rules(app: TestApp) {
    let (_, token) = app.sign_in(Role::Admin, None).await;
    let supplier = app.any_supplier_id(&token).await;
    let refused = |body: serde_json::Value| {
        let request = app.post("/v1/products").bearer_auth(&token).json(&body);
        async move { catalogue_tests::status_and_json(request).await }
    };
    let (status, problem) = refused(serde_json::json!({
        "supplier_id": supplier, "name": " ", "category": "Not A Slug",
        "mainstream_support_ends_on": "2031-01-02", "extended_support_ends_on": "2031-01-01",
    }))
    .await;
    assert_eq!((status, problem["detail"].as_str()), (422, Some("name must not be empty")));
    let (status, problem) = refused(serde_json::json!({
        "supplier_id": supplier, "name": "Windows 12", "category": "operating-system",
        "mainstream_support_ends_on": "2031-01-02", "extended_support_ends_on": "2031-01-01",
    }))
    .await;
    assert_eq!(
        (status, problem["detail"].as_str()),
        (422, Some("mainstream support cannot end after extended support"))
    );
    let (status, problem) = refused(serde_json::json!({
        "supplier_id": supplier, "name": "Windows 12", "category": "operating-system", "successor_id": 987654321,
    }))
    .await;
    assert_eq!(
        (status, problem["detail"].as_str()),
        (422, Some("successor product 987654321 does not exist"))
    );
}

on_both_engines!(
    the_national_team_adds_a_product,
    a_change_made_since_the_form_was_opened_is_not_undone,
    the_api_keeps_its_words_for_the_same_rules,
);
