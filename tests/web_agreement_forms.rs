//! The agreements pages on both engines: the list paged on the server in each order without
//! skipping or repeating a row, each filter, ended agreements only when asked for, the whole
//! selection as CSV, and what cannot be read named against its field; adding and changing an
//! agreement with every problem listed at once and beside its field, what was typed kept,
//! nothing written while anything is wrong, a change made against an older revision refused,
//! ending an agreement shown to check before it is saved, and only the national team writing.

use catalogue_tests::{Role, TestApp, on_both_engines};
use chrono::NaiveDate;
use db::agreements::AgreementFields;
use db::vocabulary::{AgreementStatus, FundingModel, OrganisationKind};

use crate::web::{Browser, Page};

/// Agreements the list tests make: more than two pages of 50 in any order.
const MADE: usize = 123;

fn system() -> db::Actor {
    db::Actor::system("test")
}

/// One agreement the list tests made, as they expect to see it.
struct Made {
    id: i64,
    reference: String,
    title: String,
    ends_on: Option<NaiveDate>,
    status: AgreementStatus,
    /// Whether it is the first supplier's (the rest are the second's).
    first_supplier: bool,
}

/// `MADE` agreements whose titles hold "Paging agreement", from two new suppliers: titles repeat
/// and differ in case (so that the id decides between them and the order is not the bytes'), end
/// dates repeat and some have none, references are not in the titles' order, and some are drafts
/// and some have ended. Returns them and the two suppliers' ids.
fn make_agreements(app: &TestApp) -> (Vec<Made>, i64, i64) {
    let first = db::products::create_supplier(app.db(), &system(), "Paging Supplier One", None).unwrap().id;
    let second = db::products::create_supplier(app.db(), &system(), "Paging Supplier Two", None).unwrap().id;
    let starts_on = NaiveDate::from_ymd_opt(2024, 4, 1).unwrap();
    let mut made = Vec::new();
    for n in 0..MADE {
        let reference = format!("PG-{:03}", (n * 37) % MADE);
        let letter = (b'a' + (n % 7) as u8) as char;
        let title = match n % 3 {
            0 => format!("Paging agreement {letter}{:02}", n % 40),
            1 => format!("paging agreement {}{:02}", letter.to_ascii_uppercase(), n % 40),
            _ => format!("PAGING AGREEMENT {letter}{:02}", n % 40),
        };
        let ends_on = (n % 5 != 0)
            .then(|| NaiveDate::from_ymd_opt(2027, 1, 1).unwrap() + chrono::Days::new((n % 17) as u64));
        let status = match n {
            n if n % 10 == 3 => AgreementStatus::Expired,
            n if n % 7 == 0 => AgreementStatus::Draft,
            _ => AgreementStatus::Active,
        };
        let first_supplier = n % 3 == 0;
        let fields = AgreementFields {
            supplier_id: if first_supplier { first } else { second },
            reference: reference.clone(),
            title: title.clone(),
            framework_reference: None,
            starts_on,
            ends_on,
            funding_model: FundingModel::Central,
            status,
            eligible_kinds: OrganisationKind::ALL.to_vec(),
            source: None,
            value_minor: None,
            currency: "GBP".into(),
            reseller_id: None,
            framework_lot: None,
            initial_term_months: None,
            notice_urls: vec![],
            commercial_source: None,
            buyer: None,
            extension_options: vec![],
        };
        let id = db::agreements::create(app.db(), &system(), fields).unwrap().id;
        made.push(Made { id, reference, title, ends_on, status, first_supplier });
    }
    (made, first, second)
}

/// The references of the rows of a list page, in order.
fn references(page: &Page) -> Vec<String> {
    let marker = r#"aria-hidden="true">Reference </span>"#;
    page.body
        .split(marker)
        .skip(1)
        .map(|rest| rest.split('<').next().unwrap_or_default().to_owned())
        .collect()
}

/// Every row of the list at `first`, following "Next page" to the end; and how many pages.
async fn every_row(browser: &mut Browser<'_>, first: &str) -> (Vec<String>, usize) {
    let pages = browser.every_page(first, 10).await;
    let mut rows = Vec::new();
    for page in &pages {
        let found = references(page);
        assert!(found.len() <= 50, "at most 50 a page");
        rows.extend(found);
    }
    for page in &pages[..pages.len() - 1] {
        assert!(page.body.contains("q=paging"), "the next page keeps the filters");
    }
    (rows, pages.len())
}

fn in_order(made: &[&Made]) -> Vec<String> {
    made.iter().map(|m| m.reference.clone()).collect()
}

async fn the_list_pages_in_each_order_without_skipping_or_repeating(app: TestApp) {
    let (made, _, _) = make_agreements(&app);
    let auditor = app.create_user(Role::Auditor, None);
    let mut browser = Browser::new(&app);
    browser.sign_in(&auditor).await;
    let every = "/agreements?q=paging+agreement&include_ended=yes";

    let mut by_reference: Vec<&Made> = made.iter().collect();
    by_reference.sort_by(|a, b| a.reference.cmp(&b.reference));
    let (rows, pages) = every_row(&mut browser, every).await;
    assert_eq!(pages, 3, "123 rows are three pages");
    assert_eq!(rows, in_order(&by_reference), "by reference (the default), each once");

    let mut by_title: Vec<&Made> = made.iter().collect();
    by_title.sort_by(|a, b| a.title.to_lowercase().cmp(&b.title.to_lowercase()).then(a.id.cmp(&b.id)));
    assert_ne!(in_order(&by_title), in_order(&by_reference), "the orders differ");
    let (rows, pages) = every_row(&mut browser, &format!("{every}&sort=title")).await;
    assert_eq!(pages, 3);
    assert_eq!(rows, in_order(&by_title), "by title without regard to case, then id, each once");

    let mut by_end: Vec<&Made> = made.iter().collect();
    by_end.sort_by_key(|m| (m.ends_on.is_none(), m.ends_on, m.id));
    let (rows, pages) = every_row(&mut browser, &format!("{every}&sort=end_date")).await;
    assert_eq!(pages, 3);
    assert_eq!(rows, in_order(&by_end), "the soonest end first, those with none last, each once");

    // The column headings order the list, keeping the filters.
    let first = browser.get(&format!("{every}&sort=title")).await;
    assert!(first.body.contains(r#"aria-sort="ascending">Agreement</th>"#), "{}", first.body);
    assert!(
        first.body.contains(r#"<a href="/agreements?q=paging+agreement&#38;include_ended=yes">Reference"#),
        "{}",
        first.body
    );
    assert!(!first.body.contains(r#"href="/agreements/new""#), "only the national team adds one");

    // The whole selection, in the order shown, as one file.
    let download = "/agreements?q=paging+agreement&#38;include_ended=yes&#38;sort=end_date&#38;format=csv";
    let shown = browser.get(&format!("{every}&sort=end_date")).await;
    assert!(shown.body.contains(download), "{}", shown.body);
    let csv = browser.get(&download.replace("&#38;", "&")).await;
    assert_eq!(csv.status, 200);
    assert!(csv.headers["content-type"].to_str().unwrap().starts_with("text/csv"));
    let mut lines = csv.body.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let column = header.iter().position(|h| *h == "reference").expect("a reference column");
    let listed: Vec<String> = lines.map(|line| line.split(',').nth(column).unwrap().to_owned()).collect();
    assert_eq!(listed, in_order(&by_end), "every row of every page, in the order shown");

    // A cursor that is not one is refused, not read as the start; so is an unknown order.
    assert_eq!(browser.get("/agreements?sort=title&cursor=PG-001").await.status, 400);
    assert_eq!(browser.get("/agreements?sort=end_date&cursor=5:tomorrow").await.status, 400);
    assert_eq!(browser.get("/agreements?sort=value").await.status, 400);
}

async fn each_filter_narrows_the_agreements(app: TestApp) {
    let (made, first, _) = make_agreements(&app);
    let officer = app.create_user(Role::Officer, Some("RR8"));
    let mut browser = Browser::new(&app);
    browser.sign_in(&officer).await;
    let expect = |keep: &dyn Fn(&Made) -> bool| -> Vec<String> {
        let mut refs: Vec<String> = made.iter().filter(|m| keep(m)).map(|m| m.reference.clone()).collect();
        refs.sort();
        refs
    };
    let ended = |m: &Made| m.status == AgreementStatus::Expired;

    let (current, _) = every_row(&mut browser, "/agreements?q=paging+agreement").await;
    assert_eq!(current, expect(&|m| !ended(m)), "ended agreements are left out unless asked for");
    let (with_ended, _) = every_row(&mut browser, "/agreements?q=paging+agreement&include_ended=yes").await;
    assert_eq!(with_ended.len(), MADE);
    let (drafts, _) = every_row(&mut browser, "/agreements?q=paging+agreement&status=draft").await;
    assert_eq!(drafts, expect(&|m| m.status == AgreementStatus::Draft), "by status");
    let (expired, _) = every_row(&mut browser, "/agreements?q=paging+agreement&status=expired").await;
    assert_eq!(expired, expect(&ended), "asking for an ended status lists them");
    let (supplier, _) = every_row(
        &mut browser,
        &format!("/agreements?q=paging+agreement&supplier={first}&include_ended=yes"),
    )
    .await;
    assert_eq!(supplier, expect(&|m| m.first_supplier), "by supplier");
    let one = browser.get("/agreements?q=pg-007").await;
    assert_eq!(references(&one), ["PG-007"], "by reference, in any case");
    let none = browser.get("/agreements?q=no+such+agreement").await;
    assert!(none.body.contains("No agreements match these filters."), "{}", none.body);

    // What was typed stays in the form; what cannot be read is listed, and nothing downloads.
    let bad = browser.get(&format!("/agreements?q=paging&supplier=x{first}&status=lapsed")).await;
    assert_eq!(bad.status, 422);
    assert!(bad.body.contains("<title>Error: Agreements"), "{}", bad.body);
    assert!(bad.body.contains(r##"<a href="#supplier">Choose a supplier from the list</a>"##));
    assert!(bad.body.contains(r##"<a href="#status">Choose a status from the list</a>"##));
    assert!(bad.body.contains(r#"value="paging""#), "what was typed is kept");
    assert!(!bad.body.contains("Download CSV"));
    assert!(!bad.body.contains(r#"href="/agreements/new""#), "only the national team adds one");
}

fn count_agreements(app: &TestApp) -> i64 {
    use diesel::prelude::*;
    app.with_connection(|conn| db::schema::agreements::table.count().get_result(conn).unwrap())
}

fn stored(app: &TestApp, reference: &str) -> db::agreements::Agreement {
    let filter = db::agreements::AgreementFilter {
        q: Some(reference.to_owned()),
        include_ended: true,
        ..Default::default()
    };
    let page = db::PageRequest::default();
    let found = app.with_connection(|conn| db::agreements::list(conn, &filter, &page).unwrap());
    found.items.into_iter().find(|a| a.reference == reference).expect("the agreement is stored")
}

fn get_agreement(app: &TestApp, id: i64) -> db::agreements::Agreement {
    app.with_connection(|conn| db::agreements::get(conn, id).unwrap())
}

fn assert_listed(page: &Page, field: &str, message: &str) {
    assert!(
        page.body.contains(&format!(r##"<a href="#{field}">{message}"##)),
        "{field}: {message} is listed in the summary: {}",
        page.body
    );
}

/// The fields the summary links to, in order.
fn summary_links(page: &Page) -> Vec<String> {
    let summary = page.body.split("nhsuk-error-summary__list").nth(1).unwrap_or_default();
    let summary = summary.split("</ul>").next().unwrap_or_default();
    summary
        .split(r##"<a href="#"##)
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap_or_default().to_owned())
        .collect()
}

async fn the_national_team_adds_an_agreement(app: TestApp) {
    let supplier = db::products::create_supplier(app.db(), &system(), "Form Supplier", None).unwrap().id;
    let admin = app.create_user(Role::Admin, None);
    let mut browser = Browser::new(&app);
    browser.sign_in(&admin).await;
    let list = browser.get("/agreements").await;
    assert!(list.body.contains(r#"href="/agreements/new""#), "admins are offered the form");
    let form = browser.get("/agreements/new").await;
    assert_eq!(form.status, 200);
    assert!(form.body.contains("<title>Add an agreement"), "{}", form.body);
    let token = form.hidden("csrf_token");
    let before = count_agreements(&app);

    // Every problem at once, each against its field, in the form's order; what was typed kept.
    let wrong = browser
        .post_form(
            "/agreements",
            &[
                ("csrf_token", &token),
                ("title", "   "),
                ("framework_reference", "RM6068"),
                ("starts_on-day", "31"),
                ("starts_on-month", "2"),
                ("starts_on-year", "2024"),
                ("value", "12.345"),
                ("currency", "pounds"),
                ("initial_term_months", "three years"),
                ("notice_urls", "https://example.org/notice\nnot an address"),
            ],
        )
        .await;
    assert_eq!(wrong.status, 422);
    assert!(wrong.body.contains("<title>Error: Add an agreement"), "{}", wrong.body);
    assert_listed(&wrong, "supplier", "Choose the supplier");
    assert_listed(&wrong, "reference", "Enter the agreement&#39;s reference, like CCS-RM6068-MS");
    assert_listed(&wrong, "title", "Enter the agreement&#39;s title");
    assert_listed(&wrong, "starts_on-day", "Start date must be a real date");
    assert_listed(&wrong, "funding_model", "Choose how the agreement is paid for");
    assert_listed(&wrong, "status", "Choose the agreement&#39;s status");
    assert_listed(&wrong, "kind-trust", "Choose at least one kind of organisation that may claim");
    assert_listed(&wrong, "value", "Enter the value as an amount, like 774,500,000 or 1,250.50");
    assert_listed(&wrong, "currency", "Enter the currency as its three-letter code, like GBP or EUR");
    assert_listed(
        &wrong,
        "initial_term_months",
        "Enter the initial term as a whole number of months, like 36",
    );
    assert_listed(
        &wrong,
        "notice_urls",
        "not an address is not a web address: each notice starts with https:// or http:// and has no spaces",
    );
    let expected = [
        "supplier",
        "reference",
        "title",
        "starts_on-day",
        "funding_model",
        "status",
        "kind-trust",
        "value",
        "currency",
        "initial_term_months",
        "notice_urls",
    ];
    assert_eq!(summary_links(&wrong), expected, "every problem once, in the form's order");
    for field in ["supplier", "reference", "title", "value", "currency", "notice_urls", "kinds"] {
        assert!(wrong.body.contains(&format!(r#"id="{field}-error""#)), "{field} has its message beside it");
    }
    assert!(wrong.body.contains(r#"value="RM6068""#), "what was typed is kept");
    assert!(wrong.body.contains(r#"value="12.345""#));
    assert!(wrong.body.contains("https://example.org/notice\nnot an address</textarea>"), "{}", wrong.body);
    assert_eq!(count_agreements(&app), before, "nothing written");

    // A value too large, and an end before the start, named against their fields.
    let supplier_text = supplier.to_string();
    let mut fields = vec![
        ("csrf_token", token.as_str()),
        ("supplier", supplier_text.as_str()),
        ("reference", "FORM-1"),
        ("title", "Form agreement"),
        ("starts_on-day", "1"),
        ("starts_on-month", "4"),
        ("starts_on-year", "2024"),
        ("ends_on-day", "31"),
        ("ends_on-month", "3"),
        ("ends_on-year", "2024"),
        ("funding_model", "central"),
        ("status", "active"),
        ("kind-trust", "yes"),
        ("kind-icb", "yes"),
        ("value", "£2,000,000,000,000"),
        ("currency", "gbp"),
        ("initial_term_months", "36"),
        ("notice_urls", "https://example.org/award"),
    ];
    let wrong = browser.post_form("/agreements", &fields).await;
    assert_eq!(wrong.status, 422);
    assert_eq!(summary_links(&wrong), ["ends_on-day", "value"]);
    assert_listed(&wrong, "ends_on-day", "The end date must be the same as or after the start date");
    assert_listed(&wrong, "value", "The value must be £1,000,000,000,000 or less");
    assert_eq!(count_agreements(&app), before, "nothing written");

    fields[9] = ("ends_on-year", "2027");
    fields[14] = ("value", "774,500,000.50");
    let added = browser.post_form("/agreements", &fields).await;
    assert_eq!(added.status, 303, "{}", added.body);
    let agreement = stored(&app, "FORM-1");
    assert_eq!(added.location(), format!("/agreements/{}?notice=added", agreement.id));
    assert_eq!(count_agreements(&app), before + 1, "exactly one");
    assert_eq!(agreement.supplier_id, supplier);
    assert_eq!(agreement.value_minor, Some(77_450_000_050), "in pence");
    assert_eq!(agreement.currency, "GBP");
    assert_eq!(agreement.ends_on, NaiveDate::from_ymd_opt(2027, 3, 31));
    assert_eq!(agreement.eligible_kinds, [OrganisationKind::Trust, OrganisationKind::Icb]);
    assert_eq!(agreement.initial_term_months, Some(36));
    assert_eq!(agreement.notice_urls, ["https://example.org/award"]);
    let page = browser.get(added.location()).await;
    assert!(page.body.contains("The agreement is added."), "{}", page.body);
    assert!(page.body.contains(&format!(r#"href="/agreements/{}/edit""#, agreement.id)));

    // A reference taken once: the database says so, against the field.
    let taken = browser.post_form("/agreements", &fields).await;
    assert_eq!(taken.status, 409);
    assert_listed(
        &taken,
        "reference",
        "An agreement with reference FORM-1 already exists: enter another reference",
    );
    assert_eq!(count_agreements(&app), before + 1);

    // Only the national team.
    for role in [Role::Auditor, Role::Officer] {
        let organisation = if matches!(role, Role::Officer) { Some("RR8") } else { None };
        let user = app.create_user(role, organisation);
        let mut theirs = Browser::new(&app);
        theirs.sign_in(&user).await;
        assert_eq!(theirs.get("/agreements/new").await.status, 403);
        assert_eq!(theirs.get(&format!("/agreements/{}/edit", agreement.id)).await.status, 403);
        let shown = theirs.get(&format!("/agreements/{}", agreement.id)).await;
        assert!(!shown.body.contains(&format!("/agreements/{}/edit", agreement.id)), "no Change for them");
        assert!(!theirs.get("/agreements").await.body.contains("/agreements/new"), "no link for them");
        let their_token = theirs.get("/").await.hidden("csrf_token");
        let mut theirs_fields = fields.clone();
        theirs_fields[0] = ("csrf_token", &their_token);
        theirs_fields[2] = ("reference", "FORM-2");
        assert_eq!(theirs.post_form("/agreements", &theirs_fields).await.status, 403);
        let edit = change_form(&agreement, &their_token, &[("title", "Not theirs")]);
        assert_eq!(post(&mut theirs, &format!("/agreements/{}/edit", agreement.id), &edit).await.status, 403);
        assert_eq!(count_agreements(&app), before + 1, "nothing more");
        assert_eq!(get_agreement(&app, agreement.id).title, "Form agreement", "nothing changed");
    }
}

/// The fields of the change form for `agreement` as it stands, with `changes` made.
fn change_form(
    agreement: &db::agreements::Agreement,
    token: &str,
    changes: &[(&str, &str)],
) -> Vec<(String, String)> {
    use chrono::Datelike;
    let mut fields: Vec<(String, String)> = vec![
        ("csrf_token".into(), token.into()),
        ("revision".into(), agreement.revision.to_string()),
        ("title".into(), agreement.title.clone()),
        ("funding_model".into(), agreement.funding_model.as_str().into()),
        ("status".into(), agreement.status.as_str().into()),
        ("currency".into(), agreement.currency.clone()),
        ("starts_on-day".into(), agreement.starts_on.day().to_string()),
        ("starts_on-month".into(), agreement.starts_on.month().to_string()),
        ("starts_on-year".into(), agreement.starts_on.year().to_string()),
    ];
    if let Some(end) = agreement.ends_on {
        fields.push(("ends_on-day".into(), end.day().to_string()));
        fields.push(("ends_on-month".into(), end.month().to_string()));
        fields.push(("ends_on-year".into(), end.year().to_string()));
    }
    fields
        .extend(agreement.eligible_kinds.iter().map(|k| (format!("kind-{}", k.as_str()), "yes".to_owned())));
    for (name, value) in changes {
        fields.retain(|(n, _)| n != name);
        fields.push((name.to_string(), value.to_string()));
    }
    fields
}

async fn post(browser: &mut Browser<'_>, path: &str, fields: &[(String, String)]) -> Page {
    let fields: Vec<(&str, &str)> = fields.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    browser.post_form(path, &fields).await
}

async fn a_change_is_saved_and_a_stale_one_refused(app: TestApp) {
    let (made, _, _) = make_agreements(&app);
    let id = made.iter().find(|m| m.status == AgreementStatus::Active && m.ends_on.is_none()).unwrap().id;
    let admin = app.create_user(Role::Admin, None);
    let mut browser = Browser::new(&app);
    browser.sign_in(&admin).await;
    let path = format!("/agreements/{id}/edit");
    let form = browser.get(&path).await;
    assert_eq!(form.status, 200);
    let agreement = get_agreement(&app, id);
    assert!(form.body.contains(&format!("<title>Change {}", agreement.title)), "{}", form.body);
    assert!(form.body.contains(&format!(r#"name="revision" value="{}""#, agreement.revision)));
    assert!(form.body.contains(r#"id="kind-trust" name="kind-trust" type="checkbox" value="yes" checked"#));
    let token = form.hidden("csrf_token");

    let changes = [("title", "Renamed agreement"), ("value", "1,250.50")];
    let changed = post(&mut browser, &path, &change_form(&agreement, &token, &changes)).await;
    assert_eq!(changed.status, 303, "{}", changed.body);
    assert_eq!(changed.location(), format!("/agreements/{id}?notice=changed"));
    let now = get_agreement(&app, id);
    assert_eq!(now.title, "Renamed agreement");
    assert_eq!(now.value_minor, Some(125_050));
    assert_eq!(now.revision, agreement.revision + 1);

    // Sent again from the old form: someone changed it meanwhile, so nothing is written and the
    // form keeps what was typed, now carrying the revision as it is.
    let stale =
        post(&mut browser, &path, &change_form(&agreement, &token, &[("title", "Stale title")])).await;
    assert_eq!(stale.status, 409, "{}", stale.body);
    assert!(stale.body.contains("Someone changed this agreement since you opened it"), "{}", stale.body);
    assert!(stale.body.contains(r#"value="Stale title""#), "what was typed is kept");
    assert!(stale.body.contains(&format!(r#"name="revision" value="{}""#, now.revision)));
    let unchanged = get_agreement(&app, id);
    assert_eq!((unchanged.title.as_str(), unchanged.revision), ("Renamed agreement", now.revision));

    // A status it cannot move to is named against the field, and nothing written.
    let back = post(&mut browser, &path, &change_form(&now, &token, &[("status", "draft")])).await;
    assert_eq!(back.status, 422);
    assert_listed(
        &back,
        "status",
        "An agreement that is active cannot become draft: choose one of the statuses listed",
    );
    assert!(!back.body.contains(r#"<option value="draft""#), "only the statuses it may move to are offered");
    assert_eq!(get_agreement(&app, id).revision, now.revision);
}

async fn ending_an_agreement_is_checked_before_it_is_saved(app: TestApp) {
    use db::agreements::EntitlementFields;
    use db::vocabulary::{Metric, OverAllocationPolicy, Tier};
    let (made, _, _) = make_agreements(&app);
    let id = made.iter().find(|m| m.status == AgreementStatus::Active && m.ends_on.is_none()).unwrap().id;
    let product = app.with_connection(|conn| {
        use diesel::prelude::*;
        db::schema::products::table.select(db::schema::products::id).first::<i64>(conn).unwrap()
    });
    let line = EntitlementFields {
        product_id: product,
        tier: Tier::TopUp,
        metric: Metric::PerDevice,
        seat_cap: Some(10),
        over_allocation_policy: OverAllocationPolicy::Block,
        eligible_kinds: OrganisationKind::ALL.to_vec(),
        starts_on: NaiveDate::from_ymd_opt(2024, 4, 1).unwrap(),
        ends_on: None,
        how_to_claim: None,
        requires_approval: false,
        per_organisation_cap: None,
        nhsmail_service: None,
        source: None,
    };
    db::agreements::create_entitlement(app.db(), &system(), id, line, Vec::new()).unwrap();
    let admin = app.create_user(Role::Admin, None);
    let mut browser = Browser::new(&app);
    browser.sign_in(&admin).await;
    let path = format!("/agreements/{id}/edit");
    let token = browser.get(&path).await.hidden("csrf_token");
    let agreement = get_agreement(&app, id);
    let ending = change_form(&agreement, &token, &[("status", "terminated"), ("title", "Ended agreement")]);

    let check = post(&mut browser, &path, &ending).await;
    assert_eq!(check.status, 200, "{}", check.body);
    assert!(check.body.contains("<title>Check your answers"), "{}", check.body);
    assert!(check.body.contains("Its 1 entitlement line in force will end with it."), "{}", check.body);
    assert!(check.body.contains(r#"Terminated<br><span class="nhsuk-body-s">Was: Active"#), "{}", check.body);
    assert!(check.body.contains(r#"name="change" value="status""#), "a Change for each answer");
    assert!(check.body.contains(r#"<input type="hidden" name="title" value="Ended agreement">"#));
    let unchanged = get_agreement(&app, id);
    assert_eq!(
        (unchanged.status, unchanged.revision),
        (AgreementStatus::Active, agreement.revision),
        "nothing yet"
    );

    // "Change" goes back to the form with what was typed.
    let mut change = ending.clone();
    change.push(("change".into(), "status".into()));
    let back = post(&mut browser, &path, &change).await;
    assert_eq!(back.status, 200);
    assert!(back.body.contains(r#"<option value="terminated" selected>"#), "{}", back.body);
    assert!(back.body.contains(r#"value="Ended agreement""#));
    assert_eq!(get_agreement(&app, id).revision, agreement.revision, "nothing written");

    // Confirmed, it is saved once.
    let mut confirmed = ending.clone();
    confirmed.push(("confirmed".into(), "yes".into()));
    let saved = post(&mut browser, &path, &confirmed).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let ended = get_agreement(&app, id);
    assert_eq!((ended.status, ended.title.as_str()), (AgreementStatus::Terminated, "Ended agreement"));
    assert_eq!(ended.revision, agreement.revision + 1);

    // A later end date is saved without the check; an earlier one is checked first.
    let other = made.iter().find(|m| m.status == AgreementStatus::Active && m.ends_on.is_some()).unwrap().id;
    let path = format!("/agreements/{other}/edit");
    let agreement = get_agreement(&app, other);
    let later = agreement.ends_on.unwrap() + chrono::Days::new(366);
    let year = chrono::Datelike::year(&later).to_string();
    let fields = change_form(&agreement, &token, &[("ends_on-year", &year)]);
    let saved = post(&mut browser, &path, &fields).await;
    assert_eq!(saved.status, 303, "a later end is not checked: {}", saved.body);
    let agreement = get_agreement(&app, other);
    let earlier = [("ends_on-day", "1"), ("ends_on-month", "1"), ("ends_on-year", "2025")];
    let check = post(&mut browser, &path, &change_form(&agreement, &token, &earlier)).await;
    assert_eq!(check.status, 200);
    assert!(check.body.contains("<title>Check your answers"), "{}", check.body);
    assert!(check.body.contains("It has no entitlement lines in force."), "{}", check.body);
    assert_eq!(get_agreement(&app, other).revision, agreement.revision, "nothing written");
}

on_both_engines!(
    the_list_pages_in_each_order_without_skipping_or_repeating,
    each_filter_narrows_the_agreements,
    the_national_team_adds_an_agreement,
    a_change_is_saved_and_a_stale_one_refused,
    ending_an_agreement_is_checked_before_it_is_saved,
);
