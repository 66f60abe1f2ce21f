//! The users list on both engines: 50 a page in the order accounts were added, every account on
//! exactly one page; filtered by role, organisation and whether disabled; a role not in the list
//! named against its field; the download is the whole selection. Sorted by name (names repeat
//! and differ in case) or email, every account still on exactly one page, in that order.

use catalogue_tests::{Role, TestApp, on_both_engines};

use crate::web::Browser;

/// The ids of the accounts a page links to, in order.
fn linked_users(body: &str) -> Vec<i64> {
    body.split(r#"<a href="/users/"#)
        .skip(1)
        .filter_map(|rest| rest.split('"').next()?.parse().ok())
        .collect()
}

async fn the_users_list_pages_and_filters(app: TestApp) {
    let made: Vec<i64> = (0..61).map(|_| app.create_user(Role::Officer, Some("RJ1")).id).collect();
    let disabled = made[7];
    let changes = db::users::UserChanges { disabled: Some(true), ..Default::default() };
    db::users::update(app.db(), &db::Actor::system("test"), disabled, changes, db::Precondition::Exists)
        .unwrap();
    let auditor = app.create_user(Role::Auditor, None);
    let mut browser = Browser::new(&app);
    browser.sign_in(&auditor).await;

    // Officers of RJ1: the 61 made, over two pages, each once, in the order they were added.
    let pages = browser.every_page("/users?role=officer&organisation=rj1", 3).await;
    let seen: Vec<i64> = pages.iter().flat_map(|page| linked_users(&page.body)).collect();
    let mut expected = made.clone();
    expected.sort();
    assert_eq!(seen, expected, "every officer of RJ1 once, in the order added");
    assert_eq!(pages.len(), 2);

    let active = browser.get("/users?role=officer&organisation=RJ1&status=active").await;
    assert!(!linked_users(&active.body).contains(&disabled), "a disabled account is left out when asked");
    let auditors = browser.get("/users?role=auditor").await;
    assert!(linked_users(&auditors.body).contains(&auditor.id));
    assert!(!linked_users(&auditors.body).iter().any(|id| made.contains(id)), "only auditors");

    let wrong = browser.get("/users?role=chief").await;
    assert!(wrong.body.contains(r##"<a href="#role">Choose a role from the list"##), "{}", wrong.body);
    assert!(linked_users(&wrong.body).is_empty());

    let csv = browser.get("/users?role=officer&organisation=RJ1&status=all&format=csv").await;
    assert_eq!(csv.body.lines().count(), 1 + made.len(), "a header and every officer of RJ1: {}", csv.body);
}

on_both_engines!(the_users_list_pages_and_filters);

async fn the_users_list_sorts_by_name_and_email_across_pages(app: TestApp) {
    // Names that repeat and differ only in case, so that the id after the name decides.
    let names = ["alpha", "Beta", "ALPHA", "beta", "Gamma", "alpha"];
    let made: Vec<(i64, String, String)> = (0..61)
        .map(|n| {
            let user = app.create_user(Role::Officer, Some("RJ1"));
            let name = names[n % names.len()].to_owned();
            let changes = db::users::UserChanges { display_name: Some(name.clone()), ..Default::default() };
            db::users::update(
                app.db(),
                &db::Actor::system("test"),
                user.id,
                changes,
                db::Precondition::Exists,
            )
            .unwrap();
            (user.id, name, user.email)
        })
        .collect();
    let auditor = app.create_user(Role::Auditor, None);
    let mut browser = Browser::new(&app);
    browser.sign_in(&auditor).await;

    let mut by_name = made.clone();
    by_name.sort_by_key(|a| (a.1.to_lowercase(), a.0));
    let pages = browser.every_page("/users?role=officer&organisation=RJ1&sort=name", 3).await;
    let seen: Vec<i64> = pages.iter().flat_map(|page| linked_users(&page.body)).collect();
    assert_eq!(seen, by_name.iter().map(|u| u.0).collect::<Vec<_>>(), "by name, then as added; each once");
    assert_eq!(pages.len(), 2);
    assert!(pages[0].body.contains(r#"aria-sort="ascending">Name</th>"#), "{}", pages[0].body);

    let mut by_email = made.clone();
    by_email.sort_by(|a, b| a.2.cmp(&b.2));
    let pages = browser.every_page("/users?role=officer&organisation=RJ1&sort=email", 3).await;
    let seen: Vec<i64> = pages.iter().flat_map(|page| linked_users(&page.body)).collect();
    assert_eq!(seen, by_email.iter().map(|u| u.0).collect::<Vec<_>>(), "by email; each once");

    let wrong = browser.get("/users?sort=shoe-size").await;
    assert_eq!(wrong.status, 400, "{}", wrong.body);
}

on_both_engines!(the_users_list_sorts_by_name_and_email_across_pages);
