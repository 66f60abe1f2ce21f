//! Adding and changing an advisory from the pages, on both engines: every problem listed at once
//! and beside its field, what was typed kept, nothing written while anything is wrong; the API's
//! rules (a taken reference, at least one affected product); and a change made against an older
//! revision refused with a clear message instead of silently undoing someone else's change.

use catalogue_tests::{Role, TestApp, on_both_engines};
use chrono::{Datelike, NaiveDate, Timelike};

use crate::web::{Browser, Page};

fn count_advisories(app: &TestApp) -> usize {
    let every = db::PageRequest { limit: Some(db::page::MAX_LIMIT), cursor: None };
    app.with_connection(|conn| {
        db::advisories::list(conn, None, db::AddedOrder::OldestFirst, &every).unwrap().items.len()
    })
}

fn advisory(app: &TestApp, id: i64) -> db::advisories::Advisory {
    app.with_connection(|conn| db::advisories::get(conn, id).unwrap())
}

fn product_id(app: &TestApp, sku: &str) -> i64 {
    let filter = db::products::ProductFilter { q: Some(sku.to_owned()), ..Default::default() };
    let page = db::PageRequest { limit: Some(db::page::MAX_LIMIT), cursor: None };
    let today = chrono::Utc::now().date_naive();
    app.with_connection(|conn| {
        db::products::list(conn, &filter, today, &page)
            .unwrap()
            .items
            .into_iter()
            .find(|p| p.sku.as_deref() == Some(sku))
            .unwrap_or_else(|| panic!("{sku}"))
            .id
    })
}

fn assert_listed(page: &Page, field: &str, message: &str) {
    assert!(
        page.body.contains(&format!(r##"<a href="#{field}">{message}"##)),
        "{field}: {message} is listed in the summary: {}",
        page.body
    );
}

fn assert_not_listed(page: &Page, field: &str) {
    assert!(!page.body.contains(&format!(r##"<a href="#{field}">"##)), "{field} is not listed");
}

fn id_from(location: &str) -> i64 {
    location.trim_start_matches("/advisories/").split('?').next().unwrap().parse().unwrap()
}

async fn the_national_team_adds_an_advisory(app: TestApp) {
    let windows = product_id(&app, "MS-WIN10-ENT").to_string();
    let office = product_id(&app, "MS-O365-E3").to_string();
    let admin = app.create_user(Role::Admin, None);
    let mut browser = Browser::new(&app);
    browser.sign_in(&admin).await;
    let list = browser.get("/advisories").await;
    assert!(list.body.contains(r#"href="/advisories/new""#), "admins are offered the form");
    let form = browser.get("/advisories/new").await;
    assert_eq!(form.status, 200);
    assert!(form.body.contains("<title>Add an advisory"), "{}", form.body);
    assert!(!form.body.contains(r#"type="checkbox" value=""#), "no product is offered before a search");
    assert!(form.body.contains(r#"id="products" name="find" type="search""#), "{}", form.body);
    let token = form.hidden("csrf_token");
    let before = count_advisories(&app);

    // Finding a product (the way the start page finds them: word order and a typo forgiven)
    // offers it unticked beside what is ticked, keeps what was typed, and writes nothing.
    let finding = [
        ("csrf_token", token.as_str()),
        ("title", "Print spooler"),
        ("products", office.as_str()),
        ("find", "enterprise windos 10"),
        ("action", "find"),
    ];
    let found = browser.post_form("/advisories", &finding).await;
    assert_eq!(found.status, 200, "{}", found.body);
    assert!(found.body.contains(&format!(r#"type="checkbox" value="{windows}">"#)), "{}", found.body);
    assert!(found.body.contains(&format!(r#"type="checkbox" value="{office}" checked"#)), "still ticked");
    assert!(found.body.contains(r#"value="Print spooler""#), "what was typed is kept");
    assert!(found.body.contains(r#"name="find" type="search" value="enterprise windos 10""#));
    assert!(!found.body.contains("nhsuk-error-summary"), "finding is not a mistake");
    assert_eq!(count_advisories(&app), before, "finding writes nothing");
    let nothing = [("csrf_token", token.as_str()), ("find", "zzzqqq"), ("action", "find")];
    let none = browser.post_form("/advisories", &nothing).await;
    assert!(none.body.contains("No product matches “zzzqqq”"), "{}", none.body);

    let empty = browser.post_form("/advisories", &[("csrf_token", &token)]).await;
    assert_eq!(empty.status, 422);
    assert!(empty.body.contains("<title>Error: Add an advisory"), "{}", empty.body);
    assert_listed(&empty, "reference", "Enter a reference for the advisory");
    assert_listed(&empty, "title", "Enter a title for the advisory");
    assert_listed(&empty, "severity", "Choose how severe the advisory is");
    assert_listed(&empty, "published_on-day", "Enter the date of publication");
    assert_listed(&empty, "remediation", "Enter what organisations must do");
    assert_listed(&empty, "products", "Choose at least one product the advisory affects");
    let summary = empty.body.split("nhsuk-error-summary__list").nth(1).unwrap_or_default();
    let order: Vec<usize> =
        ["#reference", "#title", "#severity", "#published_on-day", "#remediation", "#products"]
            .iter()
            .map(|field| summary.find(field).unwrap_or(usize::MAX))
            .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "listed in the form's order: {order:?}");
    for field in ["reference", "title", "severity", "published_on", "remediation", "products"] {
        assert!(empty.body.contains(&format!(r#"id="{field}-error""#)), "{field} has its message beside it");
    }

    let mut fields = vec![
        ("csrf_token", token.as_str()),
        ("reference", ""),
        ("title", "Remote code execution in the print spooler"),
        ("severity", ""),
        ("published_on-day", "32"),
        ("published_on-month", "3"),
        ("published_on-year", "2026"),
        ("remediation", "Apply the March update."),
        ("links", "https://example.nhs.uk/bulletin\n\n  https://example.nhs.uk/more  "),
        ("source", "NHS England Cyber Alerts"),
        ("products", &windows),
        ("products", &office),
    ];
    let partly = browser.post_form("/advisories", &fields).await;
    assert_eq!(partly.status, 422);
    assert_listed(&partly, "reference", "Enter a reference for the advisory");
    assert_listed(&partly, "severity", "Choose how severe the advisory is");
    assert_listed(&partly, "published_on-day", "Date of publication must be a real date");
    for field in ["title", "remediation", "products"] {
        assert_not_listed(&partly, field);
    }
    assert!(
        partly.body.contains(r#"value="Remote code execution in the print spooler""#),
        "what was typed is kept"
    );
    assert!(partly.body.contains(
        r#"name="published_on-day" type="text" inputmode="numeric" spellcheck="false" value="32""#
    ));
    assert!(partly.body.contains(">Apply the March update.</textarea>"));
    assert!(partly.body.contains("https://example.nhs.uk/more"));
    assert!(partly.body.contains(r#"value="NHS England Cyber Alerts""#));
    for id in [&windows, &office] {
        assert!(
            partly.body.contains(&format!(r#"type="checkbox" value="{id}" checked"#)),
            "product {id} stays ticked"
        );
    }
    assert_eq!(count_advisories(&app), before, "nothing is written while anything is wrong");

    fields[1] = ("reference", "CC-2026-0042");
    fields[3] = ("severity", "high");
    fields[4] = ("published_on-day", "14");
    let published = browser.post_form("/advisories", &fields).await;
    assert_eq!(published.status, 303, "{}", published.body);
    let id = id_from(published.location());
    assert_eq!(count_advisories(&app), before + 1);
    let page = browser.get(published.location()).await;
    assert!(page.body.contains("The advisory is published"), "{}", page.body);
    assert!(page.body.contains(&format!(r#"href="/advisories/{id}/edit""#)), "admins may change it");
    let stored = advisory(&app, id);
    assert_eq!(stored.reference, "CC-2026-0042");
    assert_eq!(stored.severity, db::advisories::Severity::High);
    assert_eq!(stored.published_at.date(), NaiveDate::from_ymd_opt(2026, 3, 14).unwrap());
    assert_eq!((stored.published_at.hour(), stored.published_at.minute()), (0, 0), "another day: its start");
    assert_eq!(stored.links, ["https://example.nhs.uk/bulletin", "https://example.nhs.uk/more"]);
    assert_eq!(stored.source.as_deref(), Some("NHS England Cyber Alerts"));
    let mut affected: Vec<String> =
        stored.affected_products.iter().map(|p| p.product_id.to_string()).collect();
    affected.sort();
    let mut chosen = vec![windows.clone(), office.clone()];
    chosen.sort();
    assert_eq!(affected, chosen);

    // The API's rule: a reference is taken once.
    let taken = browser.post_form("/advisories", &fields).await;
    assert_eq!(taken.status, 422);
    assert_listed(&taken, "reference", "An advisory with the reference CC-2026-0042 already exists");
    assert_eq!(count_advisories(&app), before + 1, "nothing half-made");

    // Published today: at the moment it was sent.
    let today = chrono::Utc::now().date_naive();
    let (day, month, year) = (today.day().to_string(), today.month().to_string(), today.year().to_string());
    fields[1] = ("reference", "CC-2026-0043");
    fields[4] = ("published_on-day", &day);
    fields[5] = ("published_on-month", &month);
    fields[6] = ("published_on-year", &year);
    let sent_at = chrono::Utc::now().naive_utc();
    let now = browser.post_form("/advisories", &fields).await;
    assert_eq!(now.status, 303, "{}", now.body);
    let stored = advisory(&app, id_from(now.location()));
    assert!((stored.published_at - sent_at).num_seconds().abs() < 60, "{}", stored.published_at);

    let officer = app.create_user(Role::Officer, Some("RR8"));
    let mut theirs = Browser::new(&app);
    theirs.sign_in(&officer).await;
    assert!(!theirs.get("/advisories").await.body.contains(r#"href="/advisories/new""#));
    assert!(!theirs.get(&format!("/advisories/{id}")).await.body.contains("/edit"));
    assert_eq!(theirs.get("/advisories/new").await.status, 403);
}

async fn a_change_made_since_the_form_was_opened_is_not_undone(app: TestApp) {
    let windows = product_id(&app, "MS-WIN10-ENT");
    let fields = db::advisories::AdvisoryFields {
        reference: "CC-2026-0100".into(),
        title: "Elevation of privilege in the kernel".into(),
        severity: db::advisories::Severity::Critical,
        published_at: NaiveDate::from_ymd_opt(2026, 2, 3).unwrap().and_hms_opt(15, 30, 0).unwrap(),
        remediation: "Apply the February update.".into(),
        links: vec!["https://example.nhs.uk/feb".into()],
        affected_product_ids: vec![windows],
        source: None,
    };
    let id = db::advisories::create(app.db(), &db::Actor::system("test"), fields).unwrap().id;
    let (_, api_token) = app.sign_in(Role::Admin, None).await;
    let admin = app.create_user(Role::Admin, None);
    let mut browser = Browser::new(&app);
    browser.sign_in(&admin).await;

    let form = browser.get(&format!("/advisories/{id}/edit")).await;
    assert_eq!(form.status, 200);
    assert!(form.body.contains("<title>Change CC-2026-0100"), "{}", form.body);
    assert!(form.body.contains(r#"value="Elevation of privilege in the kernel""#), "filled in as it stands");
    assert!(form.body.contains(r#"value="critical" aria-describedby="severity-critical-hint" checked"#));
    assert!(form.body.contains(&format!(r#"type="checkbox" value="{windows}" checked"#)));
    let (token, revision) = (form.hidden("csrf_token"), form.hidden("revision"));
    let stored_revision = advisory(&app, id).revision;
    assert_eq!(revision, stored_revision.to_string());
    let path = format!("/advisories/{id}/edit");
    let windows = windows.to_string();

    let mut fields = vec![
        ("csrf_token", token.as_str()),
        ("revision", revision.as_str()),
        ("title", "  "),
        ("severity", "critical"),
        ("published_on-day", "3"),
        ("published_on-month", "Feb"),
        ("published_on-year", "2026"),
        ("remediation", ""),
        ("links", ""),
        ("source", ""),
    ];
    let wrong = browser.post_form(&path, &fields).await;
    assert_eq!(wrong.status, 422);
    assert_listed(&wrong, "title", "Enter a title for the advisory");
    assert_listed(&wrong, "remediation", "Enter what organisations must do");
    assert_listed(&wrong, "products", "Choose at least one product the advisory affects");
    assert_not_listed(&wrong, "published_on-day");
    assert!(wrong.body.contains(r#"value="Feb""#), "what was typed is kept");
    assert_eq!(advisory(&app, id).revision, stored_revision, "nothing is written");

    // Meanwhile, someone else changes the advisory through the API.
    let elsewhere = app
        .patch_any_version(&format!("/v1/advisories/{id}"))
        .bearer_auth(&api_token)
        .json(&serde_json::json!({"title": "Kernel elevation of privilege (updated)"}))
        .send()
        .await
        .unwrap();
    assert_eq!(elsewhere.status(), 200);

    fields[2] = ("title", "Kernel flaw: patch now");
    fields[7] = ("remediation", "Apply the February update, then restart.");
    fields.push(("products", &windows));
    let stale = browser.post_form(&path, &fields).await;
    assert_eq!(stale.status, 409, "{}", stale.body);
    assert_listed(&stale, "changed-meanwhile", "Someone changed this advisory since you opened it");
    assert!(
        stale.body.contains(&format!(r#"href="/advisories/{id}" target="_blank""#)),
        "a link to it as it is"
    );
    assert!(stale.body.contains(r#"value="Kernel flaw: patch now""#), "what was typed is kept");
    let now = advisory(&app, id);
    assert_eq!(now.title, "Kernel elevation of privilege (updated)", "the other change is not undone");
    assert_eq!(now.remediation, "Apply the February update.");
    assert_eq!(stale.hidden("revision"), now.revision.to_string(), "the form now carries the new revision");

    // Sent again, knowingly: it replaces the other change, and keeps the moment of publication.
    let new_revision = stale.hidden("revision");
    fields[1] = ("revision", new_revision.as_str());
    let saved = browser.post_form(&path, &fields).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    assert_eq!(saved.location(), format!("/advisories/{id}?notice=changed"));
    assert!(browser.get(saved.location()).await.body.contains("Your changes to the advisory are saved"));
    let after = advisory(&app, id);
    assert_eq!(after.title, "Kernel flaw: patch now");
    assert_eq!(after.remediation, "Apply the February update, then restart.");
    assert!(after.links.is_empty(), "the links were cleared");
    assert_eq!(after.reference, "CC-2026-0100", "the reference stays");
    assert_eq!(
        after.published_at.time(),
        chrono::NaiveTime::from_hms_opt(15, 30, 0).unwrap(),
        "same day, same time"
    );

    let auditor = app.create_user(Role::Auditor, None);
    let mut theirs = Browser::new(&app);
    theirs.sign_in(&auditor).await;
    assert_eq!(theirs.get(&path).await.status, 403);
    assert!(!theirs.get(&format!("/advisories/{id}")).await.body.contains(&path), "no Change link");
}

/// The advisories a page links to, in order.
fn linked_advisories(body: &str) -> Vec<i64> {
    body.split(r#"<a href="/advisories/"#)
        .skip(1)
        .filter_map(|rest| rest.split('"').next()?.parse().ok())
        .collect()
}

async fn the_advisories_list_pages_latest_first_and_filters(app: TestApp) {
    let windows = product_id(&app, "MS-WIN10-ENT");
    let published_at = NaiveDate::from_ymd_opt(2026, 1, 5).and_then(|d| d.and_hms_opt(9, 0, 0)).unwrap();
    let made: Vec<(i64, db::advisories::Severity)> = (0..70)
        .map(|n| {
            let severity = [db::advisories::Severity::Critical, db::advisories::Severity::Low][n % 2];
            let fields = db::advisories::AdvisoryFields {
                reference: format!("CC-LIST-{n:03}"),
                title: format!("Listed advisory {n}"),
                severity,
                published_at,
                remediation: "Patch.".into(),
                links: Vec::new(),
                affected_product_ids: vec![windows],
                source: None,
            };
            (db::advisories::create(app.db(), &db::Actor::system("test"), fields).unwrap().id, severity)
        })
        .collect();
    let officer = app.create_user(Role::Officer, Some("RR8"));
    let mut browser = Browser::new(&app);
    browser.sign_in(&officer).await;

    // Every advisory once, the latest added first, 50 a page.
    let pages = browser.every_page("/advisories", 4).await;
    let seen: Vec<i64> = pages.iter().flat_map(|page| linked_advisories(&page.body)).collect();
    let mut every: Vec<i64> = app.with_connection(|conn| {
        db::advisories::list(
            conn,
            None,
            db::AddedOrder::OldestFirst,
            &db::PageRequest { limit: Some(db::page::MAX_LIMIT), cursor: None },
        )
        .unwrap()
        .items
        .iter()
        .map(|a| a.id)
        .collect()
    });
    let earliest = browser.every_page("/advisories?sort=oldest", 4).await;
    let seen_earliest: Vec<i64> = earliest.iter().flat_map(|page| linked_advisories(&page.body)).collect();
    assert_eq!(seen_earliest, every, "asked for, the earliest added first, each once");
    every.reverse();
    assert_eq!(seen, every);
    assert_eq!(pages[0].body.matches(r#"<a href="/advisories/"#).count(), 50, "50 a page");
    let wrong = browser.get("/advisories?sort=sideways").await;
    assert_eq!(wrong.status, 422);
    assert!(wrong.body.contains(r##"<a href="#sort">Choose an order from the list"##), "{}", wrong.body);

    let critical = browser.every_page("/advisories?severity=critical", 4).await;
    let seen: Vec<i64> = critical.iter().flat_map(|page| linked_advisories(&page.body)).collect();
    let wanted: Vec<i64> = made
        .iter()
        .rev()
        .filter(|(_, s)| *s == db::advisories::Severity::Critical)
        .map(|(id, _)| *id)
        .collect();
    assert!(seen.starts_with(&wanted), "critical ones, the latest first: {seen:?}");
    let low: Vec<i64> =
        made.iter().filter(|(_, s)| *s == db::advisories::Severity::Low).map(|(id, _)| *id).collect();
    assert!(!seen.iter().any(|id| low.contains(id)), "no low ones");

    let wrong = browser.get("/advisories?severity=dire").await;
    assert_eq!(wrong.status, 422);
    assert!(
        wrong.body.contains(r##"<a href="#severity">Choose a severity from the list"##),
        "{}",
        wrong.body
    );
    let csv = browser.get("/advisories?severity=low&format=csv").await;
    assert_eq!(csv.body.lines().filter(|line| line.contains("CC-LIST-")).count(), 35, "{}", csv.body);
}

on_both_engines!(
    the_national_team_adds_an_advisory,
    a_change_made_since_the_form_was_opened_is_not_undone,
    the_advisories_list_pages_latest_first_and_filters
);
