//! The estate and seat-change pages on both engines (issue 18): an officer checks an inventory
//! file (nothing written), imports it and sees what the trust runs, also as CSV; a refused file
//! shows the form again naming its lines; seat changes are checked, then made; another trust's
//! officer gets 404 and an auditor reads without the forms; a form with a file needs its CSRF
//! token, before the file, and a multipart body.

use catalogue_tests::{Role, TestApp, on_both_engines};

use crate::web::{Browser, Page, Part};

const CATALOGUE: &str = include_str!("fixtures/estates/catalogue.csv");

fn rows(app: &TestApp, table: &str) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    app.with_connection(|conn| {
        use diesel::prelude::*;
        diesel::sql_query(format!("SELECT COUNT(*) AS n FROM {table}")).get_result::<Count>(conn).unwrap().n
    })
}

fn audit_events(app: &TestApp) -> i64 {
    app.with_connection(|conn| db::audit::count(conn).unwrap())
}

/// Today as typed into the form's Day, Month and Year boxes: 7, 12, 2026.
fn today() -> [String; 3] {
    use chrono::Datelike;
    let today = chrono::Utc::now().date_naive();
    [today.day().to_string(), today.month().to_string(), today.year().to_string()]
}

/// The estate import form's fields with `token`, the source "catalogue" and the day taken in
/// its Day, Month and Year boxes.
fn import_form<'a>(token: &'a str, taken_on: &'a [String; 3]) -> Vec<(&'static str, &'a str)> {
    vec![
        ("csrf_token", token),
        ("source", "catalogue"),
        ("taken_on-day", &taken_on[0]),
        ("taken_on-month", &taken_on[1]),
        ("taken_on-year", &taken_on[2]),
    ]
}

/// The text of the error summary's list: what the page says to correct.
fn problem(page: &Page) -> &str {
    let start = page
        .body
        .find("nhsuk-error-summary__list")
        .unwrap_or_else(|| panic!("no error summary: {}", page.body));
    let rest = &page.body[start..];
    &rest[..rest.find("</ul>").unwrap_or(rest.len())]
}

async fn an_officer_checks_an_inventory_then_imports_it(app: TestApp) {
    let officer = app.create_user(Role::Officer, Some("RR8"));
    let mut browser = Browser::new(&app);
    browser.sign_in(&officer).await;
    let organisation = browser.get("/organisations/RR8").await;
    assert!(
        organisation.body.contains(r#"href="/organisations/RR8/estate""#),
        "linked from the organisation page"
    );
    assert!(organisation.body.contains(r#"href="/organisations/RR8/seat-changes""#));

    let empty = browser.get("/organisations/RR8/estate").await;
    assert_eq!(empty.status, 200, "{}", empty.body);
    assert!(empty.body.contains("RR8 has imported no inventory."));
    assert!(empty.body.contains(r#"enctype="multipart/form-data""#), "the upload form");
    assert!(
        empty.body.contains(r#"value="yes" aria-describedby="dry_run-hint" checked"#),
        "checked first by default"
    );
    for (part, value) in ["day", "month", "year"].iter().zip(today()) {
        let shown = format!(
            r#"id="taken_on-{part}" name="taken_on-{part}" type="text" inputmode="numeric" spellcheck="false" value="{value}""#
        );
        assert!(empty.body.contains(&shown), "taken today by default: {shown}");
    }
    for column in ["DeviceId, SoftwareVendor, SoftwareName and SoftwareVersion", "ApplicationName"] {
        assert!(empty.body.contains(column), "the hints name the columns: {column}");
    }
    let token = empty.hidden("csrf_token");
    let today = today();
    let (snapshots, events) = (rows(&app, "estate_snapshots"), audit_events(&app));

    // The check: every row's outcome, nothing written.
    let mut fields = import_form(token.as_str(), &today);
    fields.push(("dry_run", "yes"));
    let checked = browser.upload("/organisations/RR8/estate", &fields, Some(("estate.csv", CATALOGUE))).await;
    assert_eq!(checked.status, 200, "{}", checked.body);
    assert!(checked.body.contains("Check of estate.csv"));
    assert!(checked.body.contains("Nothing has been imported"));
    assert!(checked.body.contains("Windows 11 Enterprise</a>, release 24H2"), "{}", checked.body);
    assert!(checked.body.contains("Example Radiology Viewer"), "the name as found");
    assert!(checked.body.contains("Unmatched</strong>"));
    assert!(checked.body.contains("upload the file again"), "says how to import it");
    assert_eq!(
        (rows(&app, "estate_snapshots"), audit_events(&app)),
        (snapshots, events),
        "a check writes nothing"
    );

    // The import: back to the estate page, which shows what the file says RR8 runs.
    let fields = import_form(token.as_str(), &today);
    let imported =
        browser.upload("/organisations/RR8/estate", &fields, Some(("estate.csv", CATALOGUE))).await;
    assert_eq!(imported.status, 303, "{}", imported.body);
    assert_eq!(imported.location(), "/organisations/RR8/estate?notice=imported&source=catalogue");
    assert_eq!(rows(&app, "estate_snapshots"), snapshots + 1);
    let estate = browser.get(imported.location()).await;
    assert!(
        estate.body.contains("The file is imported. It replaces any earlier catalogue CSV file."),
        "{}",
        estate.body
    );
    assert!(estate.body.contains("Windows 10 Enterprise"));
    assert!(estate.body.contains("1,250"), "22H2's devices: {}", estate.body);
    assert!(estate.body.contains("The catalogue&#39;s own CSV</th>"), "the source's row: {}", estate.body);

    // Its products and releases as a file, formula cells neutralised by the spreadsheet writer.
    let csv = browser.get("/organisations/RR8/estate?format=csv").await;
    assert_eq!(csv.status, 200);
    assert!(csv.headers["content-type"].to_str().unwrap_or_default().starts_with("text/csv"));
    assert_eq!(csv.headers["cache-control"], "no-store");
    let mut reader = csv::Reader::from_reader(csv.body.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_owned).collect();
    let at =
        |name: &str| header.iter().position(|c| c == name).unwrap_or_else(|| panic!("{name} in {header:?}"));
    let found: Vec<(String, String, String)> = reader
        .records()
        .map(Result::unwrap)
        .map(|r| (r[at("product")].to_owned(), r[at("release")].to_owned(), r[at("devices")].to_owned()))
        .collect();
    assert!(found.contains(&("Windows 10 Enterprise".into(), "22H2".into(), "1250".into())), "{found:?}");

    // A file with invalid rows: the check lists them; the import shows the form again, naming
    // the lines, and leaves the snapshot as it was.
    let bad = "product,release,devices\nMS-WIN10-ENT,22H2,12\nMS-WIN10-ENT,,twelve\n";
    let mut fields = import_form(token.as_str(), &today);
    fields.push(("dry_run", "yes"));
    let checked = browser.upload("/organisations/RR8/estate", &fields, Some(("bad.csv", bad))).await;
    assert_eq!(checked.status, 200);
    assert!(checked.body.contains("The file cannot be imported"));
    assert!(checked.body.contains("Invalid</strong>"), "{}", checked.body);
    let fields = import_form(token.as_str(), &today);
    let refused = browser.upload("/organisations/RR8/estate", &fields, Some(("bad.csv", bad))).await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(problem(&refused).contains("line 3"), "{}", problem(&refused));
    assert!(refused.body.contains(r#"enctype="multipart/form-data""#), "the form again");
    assert!(!refused.body.contains(r#"aria-describedby="dry_run-hint" checked"#), "as it was sent: unticked");
    assert_eq!(rows(&app, "estate_snapshots"), snapshots + 1, "the earlier snapshot stays");

    // No file chosen (a browser sends an empty part), or a date that is not one.
    let no_file = browser.upload("/organisations/RR8/estate", &fields, Some(("", ""))).await;
    assert_eq!(no_file.status, 422);
    assert!(problem(&no_file).contains("Choose the inventory file"));
    let fields = [
        ("csrf_token", token.as_str()),
        ("source", "catalogue"),
        ("taken_on-day", "30"),
        ("taken_on-month", "11"),
        ("taken_on-year", "26"),
    ];
    let bad_date =
        browser.upload("/organisations/RR8/estate", &fields, Some(("estate.csv", CATALOGUE))).await;
    assert_eq!(bad_date.status, 422);
    assert!(
        problem(&bad_date).contains(r##"<a href="#taken_on-year">Year must include 4 numbers</a>"##),
        "{}",
        problem(&bad_date)
    );
    assert!(
        bad_date.body.contains(r#"nhsuk-input--error" id="taken_on-year" name="taken_on-year" type="text" inputmode="numeric" spellcheck="false" value="26""#),
        "what was typed, shown again, the year marked"
    );
    assert!(
        bad_date.body.contains(r#"nhsuk-input--width-2" id="taken_on-day" name="taken_on-day" type="text" inputmode="numeric" spellcheck="false" value="30""#),
        "the day is not marked"
    );
    // No file and no date: both at once, in the form's order.
    let no_date = [("csrf_token", token.as_str()), ("source", "catalogue")];
    let both = browser.upload("/organisations/RR8/estate", &no_date, Some(("", ""))).await;
    assert_eq!(both.status, 422);
    let listed = problem(&both);
    let (file_at, date_at) =
        (listed.find("#file"), listed.find(r##"#taken_on-day">Enter the date the inventory was taken"##));
    assert!(file_at.is_some() && date_at.is_some() && file_at < date_at, "{listed}");
    assert_eq!(rows(&app, "estate_snapshots"), snapshots + 1, "nothing imported");
}

async fn seat_changes_are_checked_then_made(app: TestApp) {
    let (_, line) = app.license_nationally("MS-WIN11-ENT", None).await;
    let officer = app.create_user(Role::Officer, Some("RR8"));
    let mut browser = Browser::new(&app);
    browser.sign_in(&officer).await;
    let form = browser.get("/organisations/RR8/seat-changes").await;
    assert_eq!(form.status, 200, "{}", form.body);
    assert!(form.body.contains("entitlement_id,change,quantity,reference"));
    assert!(form.body.contains(r#"aria-describedby="dry_run-hint" checked"#), "checked first by default");
    assert!(form.body.contains("RR8 holds no seats"));
    let token = form.hidden("csrf_token");
    let file = format!("entitlement_id,change,quantity,reference\n{line},claim,30,PO-1\n");
    let path = "/organisations/RR8/seat-changes";

    let events = audit_events(&app);
    let checked =
        browser.upload(path, &[("csrf_token", &token), ("dry_run", "yes")], Some(("seats.csv", &file))).await;
    assert_eq!(checked.status, 200, "{}", checked.body);
    assert!(checked.body.contains("Check of seats.csv"));
    assert!(checked.body.contains("Claimed</strong>"), "{}", checked.body);
    assert!(checked.body.contains("No seats have changed"));
    assert_eq!((rows(&app, "allocations"), audit_events(&app)), (0, events), "a check changes nothing");

    let made = browser.upload(path, &[("csrf_token", &token)], Some(("seats.csv", &file))).await;
    assert_eq!(made.status, 303, "{}", made.body);
    assert_eq!(made.location(), "/organisations/RR8?notice=seat-changes&n=1");
    let organisation = browser.get(made.location()).await;
    assert!(organisation.body.contains("The seat change in the file is made."));
    assert_eq!(rows(&app, "allocations"), 1);
    let form = browser.get(path).await;
    assert!(
        form.body.contains(&format!(
            r#"<span class="nhsuk-table-responsive__heading" aria-hidden="true">Line </span>{line}</td>"#
        )),
        "the line held: {}",
        form.body
    );

    // More than RR8 holds: the check marks the row refused; the real run names the line and
    // changes nothing.
    let file = format!("entitlement_id,change,quantity\n{line},release,10\n{line},release,31\n");
    let checked =
        browser.upload(path, &[("csrf_token", &token), ("dry_run", "yes")], Some(("seats.csv", &file))).await;
    assert_eq!(checked.status, 200);
    assert!(checked.body.contains("Given back</strong>") && checked.body.contains("Refused</strong>"));
    assert!(checked.body.contains("The file would change nothing"));
    let refused = browser.upload(path, &[("csrf_token", &token)], Some(("seats.csv", &file))).await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(problem(&refused).contains("line 3"), "{}", problem(&refused));
    let held: i64 = app.with_connection(|conn| {
        use db::schema::allocations::dsl::*;
        use diesel::prelude::*;
        allocations.select(quantity).first(conn).unwrap()
    });
    assert_eq!(held, 30, "none of the file was applied");
}

async fn another_trusts_officer_and_an_auditor_see_what_they_may(app: TestApp) {
    let ours = app.create_user(Role::Officer, Some("RR8"));
    let mut us = Browser::new(&app);
    us.sign_in(&ours).await;
    let token = us.get("/organisations/RR8/estate").await.hidden("csrf_token");
    let today = today();
    let fields = import_form(token.as_str(), &today);
    let imported = us.upload("/organisations/RR8/estate", &fields, Some(("estate.csv", CATALOGUE))).await;
    assert_eq!(imported.status, 303);

    let theirs = app.create_user(Role::Officer, Some("RJ1"));
    let mut them = Browser::new(&app);
    them.sign_in(&theirs).await;
    let their_token = them.get("/organisations/RJ1/estate").await.hidden("csrf_token");
    let fields = import_form(their_token.as_str(), &today);
    for path in ["/organisations/RR8/estate", "/organisations/RR8/seat-changes", "/organisations/rr8/estate"]
    {
        let page = them.get(path).await;
        assert_eq!(page.status, 404, "{path}");
        assert!(!page.body.contains("Windows 10 Enterprise"), "nothing of RR8 is shown");
        let sent = them.upload(path, &fields, Some(("estate.csv", CATALOGUE))).await;
        assert_eq!(sent.status, 404, "{path}");
    }
    assert_eq!(them.get("/organisations/RR8/estate?format=csv").await.status, 404);

    let auditor = app.create_user(Role::Auditor, None);
    let mut reader = Browser::new(&app);
    reader.sign_in(&auditor).await;
    let estate = reader.get("/organisations/RR8/estate").await;
    assert_eq!(estate.status, 200);
    assert!(estate.body.contains("Windows 10 Enterprise"), "the auditor reads the estate");
    assert!(!estate.body.contains(r#"enctype="multipart/form-data""#), "but has no form");
    assert!(
        estate.body.contains("/reports/reconciliation?organisation=RR8"),
        "and the national report of it"
    );
    let auditor_token = estate.hidden("csrf_token");
    let fields = import_form(auditor_token.as_str(), &today);
    let snapshots = rows(&app, "estate_snapshots");
    let sent = reader.upload("/organisations/RR8/estate", &fields, Some(("estate.csv", CATALOGUE))).await;
    assert_eq!(sent.status, 403);
    assert_eq!(reader.get("/organisations/RR8/seat-changes").await.status, 403);
    assert_eq!(rows(&app, "estate_snapshots"), snapshots);
}

async fn a_form_with_a_file_needs_its_csrf_token_first(app: TestApp) {
    let officer = app.create_user(Role::Officer, Some("RR8"));
    let mut browser = Browser::new(&app);
    browser.sign_in(&officer).await;
    let token = browser.get("/organisations/RR8/estate").await.hidden("csrf_token");
    let path = "/organisations/RR8/estate";
    let (snapshots, events) = (rows(&app, "estate_snapshots"), audit_events(&app));
    let file = Some(("estate.csv", CATALOGUE));

    let without = browser.upload(path, &[("source", "catalogue")], file).await;
    assert_eq!(without.status, 403, "no token");
    assert!(without.body.contains("security token"));
    let wrong =
        browser.upload(path, &[("csrf_token", &"ab".repeat(32)), ("source", "catalogue")], file).await;
    assert_eq!(wrong.status, 403, "a wrong token");
    let after_the_file = browser
        .upload_parts(
            path,
            &[
                Part::Field("source", "catalogue"),
                Part::File("estate.csv", CATALOGUE),
                Part::Field("csrf_token", &token),
            ],
        )
        .await;
    assert_eq!(after_the_file.status, 403, "a token after the file: the file is not read unchecked");
    let seats = browser
        .upload(
            "/organisations/RR8/seat-changes",
            &[],
            Some(("seats.csv", "entitlement_id,change,quantity\n")),
        )
        .await;
    assert_eq!(seats.status, 403, "the seat-change form too");

    // A form sent without a file's encoding is not one of these forms.
    let plain = browser.post_form(path, &[("csrf_token", &token), ("source", "catalogue")]).await;
    assert_eq!(plain.status, 400);
    assert!(plain.body.contains("multipart/form-data"));
    assert_eq!((rows(&app, "estate_snapshots"), audit_events(&app)), (snapshots, events), "nothing written");

    // A field past its few kilobytes, or a file past the 32 MiB the API takes too.
    let long = "x".repeat(api::web::session::MAX_UPLOAD_FIELD_BYTES + 1);
    let too_long = browser.upload(path, &[("csrf_token", &token), ("source", &long)], file).await;
    assert_eq!(too_long.status, 400);
    let huge = format!("product\n{}", "x".repeat(api::body::MAX_ODS_FILE_BYTES));
    let too_large = browser.upload(path, &[("csrf_token", &token)], Some(("huge.csv", &huge))).await;
    assert_eq!(too_large.status, 413);
    assert!(too_large.body.contains("The file is too large"));
    assert_eq!((rows(&app, "estate_snapshots"), audit_events(&app)), (snapshots, events), "nothing written");

    // The same form with its token first is accepted.
    let today = today();
    let fields = import_form(token.as_str(), &today);
    assert_eq!(browser.upload(path, &fields, file).await.status, 303);
}

on_both_engines!(
    an_officer_checks_an_inventory_then_imports_it,
    seat_changes_are_checked_then_made,
    another_trusts_officer_and_an_auditor_see_what_they_may,
    a_form_with_a_file_needs_its_csrf_token_first,
);
