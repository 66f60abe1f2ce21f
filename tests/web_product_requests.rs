//! Asking for a product the catalogue does not list, from the pages, on both engines: the start
//! page's search that finds nothing offers the form, which keeps the search; every problem listed
//! at once, beside its field, with what was typed kept and nothing written; another trust's
//! request neither listed nor opened; the national team told of waiting requests, marking one
//! added (choosing the product with the finder) and declining one with a reason; the organisation
//! withdrawing one; the list paging (each request once, those waiting first), filtered, and as
//! CSV. And the standards list paging, filtered and sorted on the server.

use catalogue_tests::{Role, TestApp, on_both_engines};
use db::product_requests::ProductRequest;
use db::vocabulary::ProductRequestStatus;

use crate::web::{Browser, Page};

fn request(app: &TestApp, id: i64) -> ProductRequest {
    app.with_connection(|conn| db::product_requests::get(conn, id).unwrap())
}

fn count_requests(app: &TestApp) -> usize {
    let page = db::PageRequest { limit: Some(db::page::MAX_LIMIT), cursor: None };
    let filter = db::product_requests::ProductRequestFilter::default();
    app.with_connection(|conn| db::product_requests::list(conn, &filter, &page).unwrap().items.len())
}

fn assert_listed(page: &Page, field: &str, message: &str) {
    assert!(
        page.body.contains(&format!(r##"<a href="#{field}">{message}"##)),
        "{field}: {message} is listed in the summary: {}",
        page.body
    );
}

/// The ids that `marker` (like `href="/product-requests/`) is followed by in `body`, in order.
fn ids_after(body: &str, marker: &str) -> Vec<i64> {
    body.split(marker)
        .skip(1)
        .filter_map(|rest| rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
        .collect()
}

async fn an_officer_asks_for_a_product_that_search_did_not_find(app: TestApp) {
    let officer = app.create_user(Role::Officer, Some("RR8"));
    let mut trust = Browser::new(&app);
    trust.sign_in(&officer).await;

    // A search that finds nothing offers the form, keeping what was searched for.
    let search = trust.get("/?q=Zyxwvut+Imaging+Suite").await;
    assert_eq!(search.status, 200);
    assert!(search.body.contains("Nothing matches"), "{}", search.body);
    let ask = r#"href="/product-requests/new?q=Zyxwvut+Imaging+Suite""#;
    assert!(search.body.contains(ask), "{}", search.body);
    let found = trust.get("/?q=MS-WIN10-ENT").await;
    assert!(found.body.contains("Ask for a product to be added"), "offered under an answer too");
    let form = trust.get("/product-requests/new?q=Zyxwvut+Imaging+Suite").await;
    assert_eq!(form.status, 200, "{}", form.body);
    assert!(form.body.contains(r#"name="searched" value="Zyxwvut Imaging Suite""#), "{}", form.body);
    assert!(form.body.contains(r#"id="product_name" name="product_name" type="text" spellcheck="false" value="Zyxwvut Imaging Suite""#));
    assert!(form.body.contains("Leeds Teaching Hospitals"), "for the officer's own organisation, by name");

    // Every problem at once, in the form's order, and beside its field; what was typed kept.
    let token = form.hidden("csrf_token");
    let long_version = "v".repeat(db::product_requests::MAX_VERSION_CHARS + 1);
    let before = count_requests(&app);
    let wrong = trust
        .post_form(
            "/product-requests",
            &[
                ("csrf_token", &token),
                ("product_name", " "),
                ("supplier", ""),
                ("version", &long_version),
                ("need", ""),
                ("searched", "Zyxwvut Imaging Suite"),
            ],
        )
        .await;
    assert_eq!(wrong.status, 422, "{}", wrong.body);
    assert!(wrong.body.contains("<title>Error: "), "the title says there is a problem");
    assert_listed(&wrong, "product_name", "Enter the product&#39;s name");
    assert_listed(&wrong, "supplier", "Enter the supplier&#39;s name");
    assert_listed(&wrong, "version", "The version or edition must be 100 characters or fewer");
    assert_listed(&wrong, "need", "Enter why the organisation needs the product");
    let order: Vec<usize> = ["#product_name", "#supplier", "#version", "#need"]
        .iter()
        .map(|field| wrong.body.find(&format!(r#"<a href="{field}">"#)).unwrap())
        .collect();
    assert!(order.is_sorted(), "in the form's order: {order:?}");
    assert!(wrong.body.contains(r#"id="need-error""#), "the message beside its field");
    assert!(wrong.body.contains(&long_version), "what was typed is kept");
    assert!(wrong.body.contains(r#"name="searched" value="Zyxwvut Imaging Suite""#), "the search is kept");
    assert_eq!(count_requests(&app), before, "nothing written");

    let need = "Radiology needs it to read images from the new scanner.";
    let sent = trust
        .post_form(
            "/product-requests",
            &[
                ("csrf_token", &token),
                ("product_name", "Zyxwvut Imaging Suite"),
                ("supplier", "Zyxwvut Medical Ltd"),
                ("version", "2025"),
                ("need", need),
                ("searched", "Zyxwvut Imaging Suite"),
                // An officer asks for their own organisation, whatever the form says.
                ("organisation", "RJ1"),
            ],
        )
        .await;
    assert_eq!(sent.status, 303, "{}", sent.body);
    let id: i64 = sent
        .location()
        .strip_prefix("/product-requests/")
        .and_then(|rest| rest.strip_suffix("?notice=sent"))
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("{}", sent.location()));
    let stored = request(&app, id);
    assert_eq!(stored.organisation_code, "RR8");
    assert_eq!(stored.search_text.as_deref(), Some("Zyxwvut Imaging Suite"));
    assert_eq!((stored.version.as_deref(), stored.need.as_str()), (Some("2025"), need));
    assert_eq!(stored.status, ProductRequestStatus::Waiting);
    let page = trust.get(sent.location()).await;
    assert!(page.body.contains("Request sent"), "{}", page.body);
    assert!(page.body.contains(r#"/withdraw""#), "the organisation may withdraw it");
    assert!(!page.body.contains(r#"/added""#), "but not decide it");

    // Another trust's officer neither sees it listed nor opens it; an auditor reads but asks for nothing.
    let other = app.create_user(Role::Officer, Some("RJ1"));
    let mut elsewhere = Browser::new(&app);
    elsewhere.sign_in(&other).await;
    let theirs = elsewhere.get("/product-requests").await;
    assert_eq!(theirs.status, 200);
    assert!(!theirs.body.contains(&format!(r#"href="/product-requests/{id}""#)), "not listed");
    assert_eq!(elsewhere.get(&format!("/product-requests/{id}")).await.status, 404);
    let other_token = theirs.hidden("csrf_token");
    let not_theirs = elsewhere
        .post_form(&format!("/product-requests/{id}/withdraw"), &[("csrf_token", &other_token)])
        .await;
    assert_eq!(not_theirs.status, 404);
    assert_eq!(request(&app, id).status, ProductRequestStatus::Waiting);
    let auditor = app.create_user(Role::Auditor, None);
    let mut reader = Browser::new(&app);
    reader.sign_in(&auditor).await;
    assert!(reader.get(&format!("/product-requests/{id}")).await.body.contains(need));
    assert_eq!(reader.get("/product-requests/new").await.status, 403);
    assert!(!reader.get("/?q=Zyxwvut&organisation=RR8").await.body.contains("/product-requests/new"));

    // The national team is told, finds the product it added and marks the request added.
    let admin = app.create_user(Role::Admin, None);
    let mut national = Browser::new(&app);
    national.sign_in(&admin).await;
    let start = national.get("/").await;
    assert!(
        start.body.contains(r#"href="/product-requests?status=waiting">1 product request waiting"#),
        "{}",
        start.body
    );
    let open = national.get(&format!("/product-requests/{id}?find=MS-WIN10-ENT")).await;
    assert_eq!(open.status, 200);
    let choices = ids_after(&open.body, r#"name="product_id" type="radio" value=""#);
    let product = *choices.first().unwrap_or_else(|| panic!("the finder offers products: {}", open.body));
    let token = open.hidden("csrf_token");
    let path = format!("/product-requests/{id}/added");
    let unchosen = national.post_form(&path, &[("csrf_token", &token), ("find", "MS-WIN10-ENT")]).await;
    assert_eq!(unchosen.status, 422);
    assert_listed(&unchosen, "product_id", "Choose the product now in the catalogue");
    assert!(unchosen.body.contains(r#"type="radio" value=""#), "the finder's list is shown again");
    assert_eq!(request(&app, id).status, ProductRequestStatus::Waiting, "nothing written");
    let added =
        national.post_form(&path, &[("csrf_token", &token), ("product_id", &product.to_string())]).await;
    assert_eq!(added.status, 303, "{}", added.body);
    let stored = request(&app, id);
    assert_eq!((stored.status, stored.product_id), (ProductRequestStatus::Added, Some(product)));
    let seen = trust.get(&format!("/product-requests/{id}")).await;
    assert!(
        seen.body.contains(&format!(r#"href="/products/{product}""#)),
        "the organisation sees the product"
    );
    assert!(!seen.body.contains(r#"/withdraw""#), "no longer waiting");
    assert!(!national.get("/").await.body.contains("product request"), "nothing waits now");

    // Declining needs a reason, which the organisation then reads.
    let second = app.request_product("RR8", "Qwertz Dictation");
    let path = format!("/product-requests/{second}/decline");
    let empty = national.post_form(&path, &[("csrf_token", &token), ("reason", "  ")]).await;
    assert_eq!(empty.status, 422);
    assert_listed(&empty, "reason", "Enter why the request is declined");
    assert_eq!(request(&app, second).status, ProductRequestStatus::Waiting, "nothing written");
    let reason = "The national dictation service covers this: ask your IT team.";
    let declined = national.post_form(&path, &[("csrf_token", &token), ("reason", reason)]).await;
    assert_eq!(declined.status, 303, "{}", declined.body);
    assert_eq!(request(&app, second).reason.as_deref(), Some(reason));
    assert!(trust.get(&format!("/product-requests/{second}")).await.body.contains(reason));

    // The organisation withdraws a request while it waits, and only then.
    let third = app.request_product("RR8", "Asdfgh Rostering");
    let waiting = trust.get(&format!("/product-requests/{third}")).await;
    let token = waiting.hidden("csrf_token");
    let path = format!("/product-requests/{third}/withdraw");
    let withdrawn = trust.post_form(&path, &[("csrf_token", &token)]).await;
    assert_eq!(withdrawn.status, 303, "{}", withdrawn.body);
    assert_eq!(request(&app, third).status, ProductRequestStatus::Withdrawn);
    let again = trust.post_form(&path, &[("csrf_token", &token)]).await;
    assert_eq!(again.status, 409, "{}", again.body);
    let late = national
        .post_form(
            &format!("/product-requests/{third}/decline"),
            &[("csrf_token", &open.hidden("csrf_token")), ("reason", "Too late")],
        )
        .await;
    assert_eq!(late.status, 409, "a request decided meanwhile: {}", late.body);
    assert_eq!(request(&app, third).status, ProductRequestStatus::Withdrawn);
}

on_both_engines!(an_officer_asks_for_a_product_that_search_did_not_find);

async fn the_product_requests_list_pages_filters_and_downloads(app: TestApp) {
    let mut rr8 = Vec::new();
    for n in 0..62 {
        rr8.push(app.request_product("RR8", &format!("Listed Product {n}")));
    }
    let rj1: Vec<i64> = (0..5).map(|n| app.request_product("RJ1", &format!("Other Product {n}"))).collect();
    // The oldest three are decided: the list puts those waiting first.
    let admin = app.create_user(Role::Admin, None);
    let actor = db::Actor::system("test");
    for id in &rr8[..3] {
        db::product_requests::decline(app.db(), &actor, *id, "Not this year").unwrap();
    }

    let mut national = Browser::new(&app);
    national.sign_in(&admin).await;
    let pages = national.every_page("/product-requests", 5).await;
    assert_eq!(pages.len(), 2, "67 requests, 50 a page");
    let listed: Vec<i64> =
        pages.iter().flat_map(|page| ids_after(&page.body, r#"<a href="/product-requests/"#)).collect();
    let mut expected: Vec<i64> = rr8[3..].iter().chain(&rj1).copied().collect();
    expected.sort();
    expected.extend(&rr8[..3]);
    assert_eq!(listed, expected, "each once, those waiting first, each part oldest first");
    assert!(pages[1].body.contains("First page"));

    let declined = national.get("/product-requests?status=declined").await;
    assert_eq!(ids_after(&declined.body, r#"<a href="/product-requests/"#), rr8[..3].to_vec());
    assert!(declined.body.contains("Declined"));
    let theirs = national.get("/product-requests?organisation=rj1").await;
    assert_eq!(ids_after(&theirs.body, r#"<a href="/product-requests/"#), rj1);
    assert!(theirs.body.contains("(RJ1)"), "organisations by name and code");
    let wrong = national.get("/product-requests?status=lost").await;
    assert_eq!(wrong.status, 422);
    assert_listed(&wrong, "status", "Choose a status from the list");

    let csv = national.get("/product-requests?status=waiting&format=csv").await;
    assert!(
        csv.headers
            .get("content-type")
            .is_some_and(|t| t.to_str().unwrap_or_default().starts_with("text/csv"))
    );
    let rows: Vec<&str> = csv.body.lines().skip(1).collect();
    assert_eq!(rows.len(), 64, "every waiting request, every page: {}", csv.body);
    assert!(rows.iter().all(|row| row.contains(",waiting,")), "{}", csv.body);

    // An officer lists their own organisation's only.
    let officer = app.create_user(Role::Officer, Some("RJ1"));
    let mut trust = Browser::new(&app);
    trust.sign_in(&officer).await;
    let own = trust.every_page("/product-requests?organisation=RR8", 3).await;
    let listed: Vec<i64> =
        own.iter().flat_map(|page| ids_after(&page.body, r#"<a href="/product-requests/"#)).collect();
    assert_eq!(listed, rj1, "the organisation filter is the national team's");
    let own_csv = trust.get("/product-requests?format=csv").await;
    assert_eq!(own_csv.body.lines().count(), 6, "{}", own_csv.body);
}

on_both_engines!(the_product_requests_list_pages_filters_and_downloads);

/// Makes a standard of `publisher` titled `title` with one requirement, published when `publish`.
fn standard(app: &TestApp, publisher: &str, title: &str, publish: bool) -> i64 {
    let actor = db::Actor::system("test");
    let new = db::standards::NewStandard {
        publisher_code: publisher.to_owned(),
        category: "paging-check-software".to_owned(),
        title: title.to_owned(),
        source: None,
        summary: None,
        requirements: vec![db::standards::RequirementInput {
            code: "PG-01".to_owned(),
            text: "Supports single sign-on".to_owned(),
            level: db::standards::Level::Must,
            criterion: None,
        }],
    };
    let id = db::standards::create(app.db(), &actor, new).unwrap().id;
    if publish {
        db::standards::publish(app.db(), &actor, id, 1).unwrap();
    }
    id
}

async fn the_standards_list_pages_filters_and_sorts_on_the_server(app: TestApp) {
    // 55 standards: RM3 publishes 50, RRK 5; every third is published, in the order made.
    let made: Vec<(i64, bool)> = (0..55)
        .map(|n| {
            let publisher = if n < 50 { "RM3" } else { "RRK" };
            let publish = n % 3 == 0;
            (standard(&app, publisher, &format!("Paged Standard {n:02}"), publish), publish)
        })
        .collect();
    let ids: Vec<i64> = made.iter().map(|(id, _)| *id).collect();
    let officer = app.create_user(Role::Officer, Some("RR8"));
    let mut browser = Browser::new(&app);
    browser.sign_in(&officer).await;
    let listed = |pages: &[Page]| -> Vec<i64> {
        pages.iter().flat_map(|page| ids_after(&page.body, r#"<a href="/standards/"#)).collect()
    };

    // By title (the default): each once over two pages.
    let pages = browser.every_page("/standards?q=PAGED+standard", 5).await;
    assert_eq!(pages.len(), 2, "55 standards, 50 a page");
    assert_eq!(listed(&pages), ids, "by title, each once");
    assert!(pages[1].body.contains("First page"));

    // Last published first, never-published ones after, each part latest first.
    let pages = browser.every_page("/standards?q=paged+standard&sort=published", 5).await;
    let mut expected: Vec<i64> =
        made.iter().rev().filter(|(_, published)| *published).map(|(id, _)| *id).collect();
    expected.extend(made.iter().rev().filter(|(_, published)| !*published).map(|(id, _)| *id));
    assert_eq!(listed(&pages), expected, "last published first, each once");
    assert!(pages[0].body.contains(r#"aria-sort="descending""#));

    // Filters: status, publisher, text in the title.
    let published = browser.get("/standards?q=paged+standard&status=published").await;
    let expected: Vec<i64> = made.iter().filter(|(_, published)| *published).map(|(id, _)| *id).collect();
    assert_eq!(ids_after(&published.body, r#"<a href="/standards/"#), expected);
    let rrk = browser.get("/standards?q=paged+standard&publisher=rrk").await;
    assert_eq!(ids_after(&rrk.body, r#"<a href="/standards/"#), ids[50..].to_vec());
    let one = browser.get("/standards?q=standard+07").await;
    assert_eq!(ids_after(&one.body, r#"<a href="/standards/"#), vec![ids[7]]);
    let wrong = browser.get("/standards?status=lost").await;
    assert_eq!(wrong.status, 422);
    assert_listed(&wrong, "status", "Choose a status from the list");
    assert_eq!(browser.get("/standards?sort=sideways").await.status, 400);

    // The download is the whole selection, every page.
    let csv = browser.get("/standards?q=paged+standard&sort=published&format=csv").await;
    assert!(
        csv.headers
            .get("content-type")
            .is_some_and(|t| t.to_str().unwrap_or_default().starts_with("text/csv"))
    );
    assert_eq!(csv.body.lines().filter(|line| line.contains("Paged Standard")).count(), 55, "{}", csv.body);

    // An exemplar author lists their own organisation's only.
    let author = app.create_user(Role::Exemplar, Some("RRK"));
    let mut exemplar = Browser::new(&app);
    exemplar.sign_in(&author).await;
    let own = exemplar.get("/standards?q=paged+standard&publisher=RM3").await;
    assert_eq!(ids_after(&own.body, r#"<a href="/standards/"#), ids[50..].to_vec());
}

on_both_engines!(the_standards_list_pages_filters_and_sorts_on_the_server);
