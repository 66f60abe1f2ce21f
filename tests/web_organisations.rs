//! The organisations pages on both engines: the list paged on the server in either order without
//! skipping or repeating a row, each filter, the whole selection as CSV, and links only to the
//! pages the user may open; adding and changing an organisation with every problem listed at once
//! and beside its field, what was typed kept, nothing written while anything is wrong, the API's
//! rules (a code taken once; ODS owns an imported record's name and region), and a change made
//! against an older revision refused instead of silently undoing someone else's change.

use catalogue_tests::{Role, TestApp, on_both_engines};
use db::organisations::{NewOrganisation, Organisation, OrganisationFilter};
use db::vocabulary::OrganisationKind;

use crate::web::{Browser, Page};

/// Organisations the list tests make: more than two pages of 50 in either order.
const MADE: usize = 123;

fn system() -> db::Actor {
    db::Actor::system("test")
}

fn organisation(app: &TestApp, code: &str) -> Organisation {
    app.with_connection(|conn| db::organisations::get(conn, code).unwrap())
}

fn count_organisations(app: &TestApp) -> usize {
    let filter = OrganisationFilter { include_closed: true, ..Default::default() };
    let mut page = db::PageRequest { limit: Some(db::page::MAX_LIMIT), cursor: None };
    let mut count = 0;
    loop {
        let found = app.with_connection(|conn| db::organisations::list(conn, &filter, &page).unwrap());
        count += found.items.len();
        match found.next_cursor {
            Some(cursor) => page.cursor = Some(cursor),
            None => return count,
        }
    }
}

fn add(app: &TestApp, code: &str, name: &str, kind: OrganisationKind, region: &str, exemplar: bool) {
    let new = NewOrganisation {
        code: code.into(),
        name: name.into(),
        kind,
        region: Some(region.into()),
        exemplar,
        source: None,
    };
    db::organisations::create(app.db(), &system(), new).unwrap();
}

/// `MADE` organisations whose names hold "Paging Test": names repeat (so that the code decides
/// between them) and differ in case (so that the order is not the bytes'), and their codes are not
/// in their names' order.
fn make_organisations(app: &TestApp) -> Vec<(String, String)> {
    let mut made = Vec::new();
    for n in 0..MADE {
        let code = format!("PT{:03}", (n * 37) % MADE);
        let letter = (b'a' + (n % 7) as u8) as char;
        let name = match n % 3 {
            0 => format!("Paging Test {letter}{:02}", n % 40),
            1 => format!("paging test {}{:02}", letter.to_ascii_uppercase(), n % 40),
            _ => format!("PAGING TEST {letter}{:02}", n % 40),
        };
        let kind = if n % 10 == 0 { OrganisationKind::GpPractice } else { OrganisationKind::Trust };
        let region = if n % 4 == 0 { "North West" } else { "London" };
        add(app, &code, &name, kind, region, n % 9 == 0);
        made.push((code, name));
    }
    made
}

/// The codes of the rows of a list page, in order.
fn codes(page: &Page) -> Vec<String> {
    let marker = r#"aria-hidden="true">Code </span>"#;
    page.body
        .split(marker)
        .skip(1)
        .map(|rest| rest.split('<').next().unwrap_or_default().to_owned())
        .collect()
}

/// The address of the page's "Next page" link, when it has one.
fn next_page(page: &Page) -> Option<String> {
    let before = page.body.split(r#"" rel="next">"#).next()?;
    (before.len() < page.body.len())
        .then(|| before.rsplit(r#"href=""#).next().unwrap_or_default().replace("&#38;", "&"))
}

/// Every row of the list at `first`, following "Next page" to the end; and how many pages.
async fn every_page(browser: &mut Browser<'_>, first: &str) -> (Vec<String>, usize) {
    let (mut rows, mut pages, mut address) = (Vec::new(), 0, Some(first.to_owned()));
    while let Some(at) = address {
        let page = browser.get(&at).await;
        assert_eq!(page.status, 200, "{at}: {}", page.body);
        let found = codes(&page);
        assert!(found.len() <= 50, "at most 50 a page");
        rows.extend(found);
        pages += 1;
        address = next_page(&page);
        if let Some(next) = &address {
            assert!(next.contains("q=paging"), "the next page keeps the filters: {next}");
        }
    }
    (rows, pages)
}

async fn the_list_pages_in_either_order_without_skipping_or_repeating(app: TestApp) {
    let made = make_organisations(&app);
    let auditor = app.create_user(Role::Auditor, None);
    let mut browser = Browser::new(&app);
    browser.sign_in(&auditor).await;

    let mut by_code: Vec<String> = made.iter().map(|(code, _)| code.clone()).collect();
    by_code.sort();
    let (rows, pages) = every_page(&mut browser, "/organisations?q=paging+test").await;
    assert_eq!(pages, 3, "123 rows are three pages");
    assert_eq!(rows, by_code, "by code, each once");

    let mut by_name = made.clone();
    by_name.sort_by(|a, b| a.1.to_lowercase().cmp(&b.1.to_lowercase()).then(a.0.cmp(&b.0)));
    let by_name: Vec<String> = by_name.into_iter().map(|(code, _)| code).collect();
    assert_ne!(by_name, by_code, "the orders differ, so that the test tells them apart");
    let (rows, pages) = every_page(&mut browser, "/organisations?q=paging+test&sort=name").await;
    assert_eq!(pages, 3);
    assert_eq!(rows, by_name, "by name without regard to case, then code, each once");

    // The column headings order the list, keeping the filters.
    let first = browser.get("/organisations?q=paging+test&sort=name").await;
    assert!(first.body.contains(r#"aria-sort="ascending">Name</th>"#), "{}", first.body);
    assert!(first.body.contains(r#"<a href="/organisations?q=paging+test">Code"#), "{}", first.body);
    let second = browser.get(&next_page(&first).unwrap()).await;
    assert!(second.body.contains("First page"));

    // The whole selection, in the order shown, as one file.
    let download = "/organisations?q=paging+test&#38;sort=name&#38;format=csv";
    assert!(first.body.contains(download), "{}", first.body);
    let csv = browser.get(&download.replace("&#38;", "&")).await;
    assert_eq!(csv.status, 200);
    assert!(csv.headers["content-type"].to_str().unwrap().starts_with("text/csv"));
    let mut lines = csv.body.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(&header[..3], ["code", "name", "kind"], "the API's columns");
    let listed: Vec<String> = lines.map(|line| line.split(',').next().unwrap().to_owned()).collect();
    assert_eq!(listed, by_name, "every row of every page, in the order shown");

    // A cursor that is not one is refused, not read as the start.
    assert_eq!(browser.get("/organisations?sort=name&cursor=RR8").await.status, 400);
    assert_eq!(browser.get("/organisations?sort=size").await.status, 400);
}

async fn each_filter_narrows_the_list(app: TestApp) {
    let made = make_organisations(&app);
    let officer = app.create_user(Role::Officer, Some("RR8"));
    let mut browser = Browser::new(&app);
    browser.sign_in(&officer).await;
    let everything = |filters: &str| format!("/organisations?q=paging+test&{filters}");
    let expect = |keep: &dyn Fn(usize) -> bool| -> Vec<String> {
        let mut codes: Vec<String> =
            made.iter().enumerate().filter(|(n, _)| keep(*n)).map(|(_, (code, _))| code.clone()).collect();
        codes.sort();
        codes
    };

    let (gp, _) = every_page(&mut browser, &everything("kind=gp_practice")).await;
    assert_eq!(gp, expect(&|n| n % 10 == 0), "by kind");
    let (north_west, _) = every_page(&mut browser, &everything("region=North+West")).await;
    assert_eq!(north_west, expect(&|n| n % 4 == 0), "by region");
    let (exemplars, _) = every_page(&mut browser, &everything("exemplar=yes")).await;
    assert_eq!(exemplars, expect(&|n| n % 9 == 0), "exemplars");
    let (others, _) = every_page(&mut browser, &everything("exemplar=no")).await;
    assert_eq!(others, expect(&|n| n % 9 != 0), "others");
    let one = browser.get("/organisations?q=pt007").await;
    assert_eq!(codes(&one), ["PT007"], "by code, in any case");

    // Closed organisations only when asked for.
    let closed = &made[5].0;
    app.with_connection(|conn| {
        use diesel::prelude::*;
        diesel::sql_query(format!(
            "UPDATE organisations SET closed_on = '2024-04-01' WHERE code = '{closed}'"
        ))
        .execute(conn)
        .unwrap();
    });
    let open = browser.get(&format!("/organisations?q={closed}")).await;
    assert!(codes(&open).is_empty(), "{}", open.body);
    assert!(open.body.contains("No organisations match these filters."));
    let with_closed = browser.get(&format!("/organisations?q={closed}&include_closed=yes")).await;
    assert_eq!(codes(&with_closed), [closed.as_str()]);
    assert!(with_closed.body.contains("Closed 1 April 2024"), "{}", with_closed.body);
    assert!(with_closed.body.contains(r#"name="include_closed" type="checkbox" value="yes" checked"#));

    // What was typed stays in the form; what cannot be read is listed, and nothing downloads.
    let bad = browser.get("/organisations?q=paging&kind=hospital&exemplar=maybe&region=London").await;
    assert_eq!(bad.status, 422);
    assert!(bad.body.contains("<title>Error: Organisations"));
    assert!(bad.body.contains(r##"<a href="#kind">Choose a kind of organisation from the list</a>"##));
    assert!(bad.body.contains(r##"<a href="#exemplar">Choose exemplars, others, or either</a>"##));
    assert!(bad.body.contains(r#"value="paging""#), "what was typed is kept");
    assert!(bad.body.contains(r#"<option value="London" selected>"#), "{}", bad.body);
    assert!(!bad.body.contains("Download CSV"));

    // An officer sees every organisation listed, but opens only their own.
    let own = browser.get("/organisations?q=RR8").await;
    assert!(own.body.contains(r#"<a href="/organisations/RR8">"#), "{}", own.body);
    let listed = browser.get("/organisations?q=paging+test").await;
    assert_eq!(codes(&listed).len(), 50);
    assert!(!listed.body.contains(r#"<a href="/organisations/PT"#), "no link to a page they cannot open");
    assert!(!listed.body.contains(r#"href="/organisations/new""#), "only the national team adds one");
    assert!(listed.body.contains(r#"href="/organisations" aria-current="page""#), "in the navigation");
}

fn assert_listed(page: &Page, field: &str, message: &str) {
    assert!(
        page.body.contains(&format!(r##"<a href="#{field}">{message}"##)),
        "{field}: {message} is listed in the summary: {}",
        page.body
    );
}

async fn the_national_team_adds_an_organisation(app: TestApp) {
    let admin = app.create_user(Role::Admin, None);
    let mut browser = Browser::new(&app);
    browser.sign_in(&admin).await;
    let users = browser.get("/users").await;
    assert!(
        users.body.contains(r#"<a class="nhsuk-header__navigation-link" href="/organisations">"#),
        "in the national team's menu: {}",
        users.body
    );
    let list = browser.get("/organisations").await;
    assert!(list.body.contains(r#"href="/organisations/new""#), "admins are offered the form");
    let form = browser.get("/organisations/new").await;
    assert_eq!(form.status, 200);
    assert!(form.body.contains("<title>Add an organisation"), "{}", form.body);
    let token = form.hidden("csrf_token");
    let before = count_organisations(&app);

    let empty = browser.post_form("/organisations", &[("csrf_token", &token)]).await;
    assert_eq!(empty.status, 422);
    assert!(empty.body.contains("<title>Error: Add an organisation"), "{}", empty.body);
    assert_listed(&empty, "code", "Enter the ODS code: 3 to 10 letters and digits, like RR8");
    assert_listed(&empty, "name", "Enter the organisation&#39;s name");
    assert_listed(&empty, "kind", "Choose what kind of organisation it is");
    let summary = empty.body.split("nhsuk-error-summary__list").nth(1).unwrap_or_default();
    let order: Vec<usize> =
        ["#code", "#name", "#kind"].iter().map(|field| summary.find(field).unwrap_or(usize::MAX)).collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "listed in the form's order: {order:?}");
    for field in ["code", "name", "kind"] {
        assert!(empty.body.contains(&format!(r#"id="{field}-error""#)), "{field} has its message beside it");
    }

    let mut fields = vec![
        ("csrf_token", token.as_str()),
        ("code", "R-1"),
        ("name", "Northern Care Alliance NHS Foundation Trust"),
        ("kind", ""),
        ("region", "North West"),
        ("exemplar", "yes"),
        ("source", "Letter from the trust"),
    ];
    let partly = browser.post_form("/organisations", &fields).await;
    assert_eq!(partly.status, 422);
    assert_listed(&partly, "code", "Enter the ODS code");
    assert_listed(&partly, "kind", "Choose what kind of organisation it is");
    assert!(!partly.body.contains(r##"<a href="#name">"##), "the name is right");
    assert!(partly.body.contains(r#"value="R-1""#), "what was typed is kept");
    assert!(partly.body.contains(r#"value="Northern Care Alliance NHS Foundation Trust""#));
    assert!(partly.body.contains(r#"value="North West""#));
    assert!(partly.body.contains(r#"value="yes" aria-describedby="exemplar-hint" checked"#));
    assert!(partly.body.contains(r#"value="Letter from the trust""#));
    assert_eq!(count_organisations(&app), before, "nothing is written while anything is wrong");

    fields[1] = ("code", "zz9x");
    fields[3] = ("kind", "trust");
    let added = browser.post_form("/organisations", &fields).await;
    assert_eq!(added.status, 303, "{}", added.body);
    assert_eq!(added.location(), "/organisations/ZZ9X?notice=added");
    assert!(browser.get(added.location()).await.body.contains("The organisation is added."));
    let stored = organisation(&app, "ZZ9X");
    assert_eq!(stored.name, "Northern Care Alliance NHS Foundation Trust");
    assert_eq!(stored.kind, OrganisationKind::Trust);
    assert_eq!(stored.region.as_deref(), Some("North West"));
    assert!(stored.exemplar);
    assert_eq!(stored.source.as_deref(), Some("Letter from the trust"));
    assert_eq!(count_organisations(&app), before + 1);

    // The API's rule: a code is taken once, and never reused.
    let taken = browser.post_form("/organisations", &fields).await;
    assert_eq!(taken.status, 422);
    assert_listed(
        &taken,
        "code",
        "An organisation with the code ZZ9X already exists: ODS codes are never reused",
    );
    assert_eq!(count_organisations(&app), before + 1, "nothing more");

    let officer = app.create_user(Role::Officer, Some("RR8"));
    let mut theirs = Browser::new(&app);
    theirs.sign_in(&officer).await;
    assert_eq!(theirs.get("/organisations/new").await.status, 403);
    let their_token = theirs.get("/organisations").await.hidden("csrf_token");
    fields[0] = ("csrf_token", &their_token);
    fields[1] = ("code", "ZZ9Y");
    assert_eq!(theirs.post_form("/organisations", &fields).await.status, 403);
    assert_eq!(count_organisations(&app), before + 1);
}

async fn a_change_made_since_the_form_was_opened_is_not_undone(app: TestApp) {
    add(&app, "ZZ8A", "Riverside Community Health CIC", OrganisationKind::Other, "London", false);
    let (_, api_token) = app.sign_in(Role::Admin, None).await;
    let admin = app.create_user(Role::Admin, None);
    let mut browser = Browser::new(&app);
    browser.sign_in(&admin).await;
    let page = browser.get("/organisations/ZZ8A").await;
    assert!(page.body.contains(r#"href="/organisations/ZZ8A/edit""#), "admins may change it");

    let path = "/organisations/ZZ8A/edit";
    let form = browser.get(path).await;
    assert_eq!(form.status, 200);
    assert!(form.body.contains("<title>Change Riverside Community Health CIC"), "{}", form.body);
    assert!(form.body.contains(r#"value="Riverside Community Health CIC""#), "filled in as it stands");
    assert!(form.body.contains(r#"value="other" checked"#));
    assert!(!form.body.contains(r#"name="code""#), "the code cannot be changed");
    let (token, revision) = (form.hidden("csrf_token"), form.hidden("revision"));
    let stored_revision = organisation(&app, "ZZ8A").revision;
    assert_eq!(revision, stored_revision.to_string());

    let mut fields = vec![
        ("csrf_token", token.as_str()),
        ("revision", revision.as_str()),
        ("name", "  "),
        ("kind", "hospital"),
        ("region", "South East"),
        ("source", ""),
    ];
    let wrong = browser.post_form(path, &fields).await;
    assert_eq!(wrong.status, 422);
    assert_listed(&wrong, "name", "Enter the organisation&#39;s name");
    assert_listed(&wrong, "kind", "Choose what kind of organisation it is");
    assert!(wrong.body.contains(r#"value="South East""#), "what was typed is kept");
    assert_eq!(organisation(&app, "ZZ8A").revision, stored_revision, "nothing is written");

    // Meanwhile, someone else changes it through the API.
    let elsewhere = app
        .patch_any_version("/v1/organisations/ZZ8A")
        .bearer_auth(&api_token)
        .json(&serde_json::json!({"name": "Riverside Community Health (renamed)"}))
        .send()
        .await
        .unwrap();
    assert_eq!(elsewhere.status(), 200);

    fields[2] = ("name", "Riverside Health CIC");
    fields[3] = ("kind", "csu");
    let stale = browser.post_form(path, &fields).await;
    assert_eq!(stale.status, 409, "{}", stale.body);
    assert_listed(&stale, "changed-meanwhile", "Someone changed this organisation since you opened it");
    assert!(stale.body.contains(r#"href="/organisations/ZZ8A" target="_blank""#), "a link to it as it is");
    assert!(stale.body.contains(r#"value="Riverside Health CIC""#), "what was typed is kept");
    let now = organisation(&app, "ZZ8A");
    assert_eq!(now.name, "Riverside Community Health (renamed)", "the other change is not undone");
    assert_eq!(now.kind, OrganisationKind::Other);
    assert_eq!(stale.hidden("revision"), now.revision.to_string(), "the form now carries the new revision");

    // Sent again, knowingly: it replaces the other change.
    let new_revision = stale.hidden("revision");
    fields[1] = ("revision", new_revision.as_str());
    let saved = browser.post_form(path, &fields).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    assert_eq!(saved.location(), "/organisations/ZZ8A?notice=changed");
    assert!(browser.get(saved.location()).await.body.contains("Your changes to the organisation are saved."));
    let after = organisation(&app, "ZZ8A");
    assert_eq!(after.name, "Riverside Health CIC");
    assert_eq!(after.kind, OrganisationKind::Csu);
    assert_eq!(after.region.as_deref(), Some("South East"));
    assert!(!after.exemplar, "unticked");

    let auditor = app.create_user(Role::Auditor, None);
    let mut theirs = Browser::new(&app);
    theirs.sign_in(&auditor).await;
    assert_eq!(theirs.get(path).await.status, 403);
    assert!(!theirs.get("/organisations/ZZ8A").await.body.contains(path), "no Change link");
}

/// What ODS owns of an imported record (its name and region) is shown, not offered, and a change
/// made on the page leaves it as ODS has it while the catalogue's own fields change.
async fn what_ods_owns_is_shown_not_offered(app: TestApp) {
    let imported = app.with_connection(|conn| {
        let every = OrganisationFilter { kind: Some(OrganisationKind::Trust), ..Default::default() };
        let page = db::PageRequest { limit: Some(db::page::MAX_LIMIT), cursor: None };
        db::organisations::list(conn, &every, &page)
            .unwrap()
            .items
            .into_iter()
            .find(|o| o.owned_by_ods() && !o.exemplar && o.region.is_some())
            .expect("a trust imported from ODS")
    });
    let admin = app.create_user(Role::Admin, None);
    let mut browser = Browser::new(&app);
    browser.sign_in(&admin).await;
    let path = format!("/organisations/{}/edit", imported.code);
    let form = browser.get(&path).await;
    assert_eq!(form.status, 200);
    assert!(!form.body.contains(r#"name="name""#), "the name is not a field: {}", form.body);
    assert!(!form.body.contains(r#"name="region""#), "nor the region");
    assert!(form.body.contains(&format!(r#"<dd class="nhsuk-summary-list__value">{}</dd>"#, imported.name)));
    assert!(form.body.contains("come from the Organisation Data Service"));

    let token = form.hidden("csrf_token");
    let revision = form.hidden("revision");
    // A name sent anyway (the page offers none) changes nothing ODS owns.
    let fields = [
        ("csrf_token", token.as_str()),
        ("revision", revision.as_str()),
        ("name", "Renamed by hand"),
        ("kind", "trust"),
        ("exemplar", "yes"),
        ("source", "Named a Global Digital Exemplar in 2026"),
    ];
    let saved = browser.post_form(&path, &fields).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let after = organisation(&app, &imported.code);
    assert_eq!(after.name, imported.name, "ODS's name stays");
    assert_eq!(after.region, imported.region, "ODS's region stays");
    assert!(after.exemplar, "the catalogue's own fields change");
    assert_eq!(after.source.as_deref(), Some("Named a Global Digital Exemplar in 2026"));
}

on_both_engines!(
    the_list_pages_in_either_order_without_skipping_or_repeating,
    each_filter_narrows_the_list,
    the_national_team_adds_an_organisation,
    a_change_made_since_the_form_was_opened_is_not_undone,
    what_ods_owns_is_shown_not_offered,
);
