//! The agreements pages on both engines: the list paged on the server in each order without
//! skipping or repeating a row, each filter, ended agreements only when asked for, the whole
//! selection as CSV, and what cannot be read named against its field.

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

on_both_engines!(
    the_list_pages_in_each_order_without_skipping_or_repeating,
    each_filter_narrows_the_agreements,
);
