//! The seat-request pages on both engines: the national team's queue (waiting requests first,
//! filtered by status and organisation, named beside their codes, as CSV), an officer seeing only
//! their organisation's; approving (the claim made then), an approval the line can no longer meet
//! refused with nothing changed, refusing with a reason (none: every problem listed, nothing
//! written), and an officer withdrawing their own request but not another trust's.

use catalogue_tests::{Role, TestApp, on_both_engines};
use db::seat_requests::SeatRequest;
use db::vocabulary::SeatRequestStatus;

use crate::web::Browser;

fn request(app: &TestApp, id: i64) -> SeatRequest {
    app.with_connection(|conn| db::seat_requests::get(conn, id).unwrap())
}

/// Caps `line` at `seats`, through the API as an admin would.
async fn cap(app: &TestApp, line: i64, seats: i64) {
    let (_, admin) = app.sign_in(Role::Admin, None).await;
    let capped = app
        .patch_any_version(&format!("/v1/entitlements/{line}"))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"seat_cap": seats}))
        .send()
        .await
        .unwrap();
    assert_eq!(capped.status(), 200);
}

async fn the_national_team_decides_and_trusts_follow_their_requests(app: TestApp) {
    let line = app.line_needing_approval("MS-O365-E3").await;
    cap(&app, line, 5).await;
    let ours = app.request_seats(line, "RR8", 3);
    let theirs = app.request_seats(line, "RJ1", 3);
    let refused = app.request_seats(line, "RJ1", 1);

    let admin = app.create_user(Role::Admin, None);
    let mut national = Browser::new(&app);
    national.sign_in(&admin).await;
    let start = national.get("/").await;
    assert!(
        start
            .body
            .contains(r#"href="/seat-requests?status=pending">3 seat requests waiting for your decision"#),
        "{}",
        start.body
    );
    let queue = national.get("/seat-requests").await;
    assert_eq!(queue.status, 200);
    for id in [ours, theirs, refused] {
        assert!(queue.body.contains(&format!(r#"href="/seat-requests/{id}""#)), "request {id} is listed");
    }
    assert!(queue.body.contains("(RR8)") && queue.body.contains("(RJ1)"), "organisations by name and code");
    // Oldest first unless the newest are asked for.
    let position = |body: &str, id: i64| body.find(&format!(r#"href="/seat-requests/{id}""#)).unwrap();
    let ids = [ours, theirs, refused];
    let mut oldest_first = ids;
    oldest_first.sort();
    assert!(position(&queue.body, oldest_first[0]) < position(&queue.body, oldest_first[2]));
    let newest = national.get("/seat-requests?sort=newest").await;
    assert!(
        position(&newest.body, oldest_first[2]) < position(&newest.body, oldest_first[0]),
        "newest first"
    );
    assert!(queue.body.contains("Office 365 E3"), "products by label: {}", queue.body);
    let rj1 = national.get("/seat-requests?status=pending&organisation=rj1").await;
    assert!(!rj1.body.contains(&format!(r#"href="/seat-requests/{ours}""#)), "filtered by organisation");
    assert!(rj1.body.contains(&format!(r#"href="/seat-requests/{theirs}""#)));
    let wrong = national.get("/seat-requests?status=lost").await;
    assert!(wrong.body.contains(r##"<a href="#status">Choose a status from the list"##), "{}", wrong.body);
    let csv = national.get("/seat-requests?status=pending&organisation=&format=csv").await;
    assert!(
        csv.headers
            .get("content-type")
            .is_some_and(|t| t.to_str().unwrap_or_default().starts_with("text/csv"))
    );
    assert_eq!(csv.body.lines().filter(|l| l.contains(",pending,")).count(), 3, "{}", csv.body);

    // Approving makes the claim: RR8 holds its 3 seats; RJ1's 3 no longer fit in what is left.
    let page = national.get(&format!("/seat-requests/{ours}")).await;
    assert!(page.body.contains("5 of 5 left"), "what the line has left: {}", page.body);
    let token = page.hidden("csrf_token");
    let approved =
        national.post_form(&format!("/seat-requests/{ours}/approve"), &[("csrf_token", &token)]).await;
    assert_eq!(approved.status, 303, "{}", approved.body);
    assert_eq!(approved.location(), format!("/seat-requests/{ours}?notice=approved"));
    assert!(national.get(approved.location()).await.body.contains("Request approved"));
    let ours_now = request(&app, ours);
    assert_eq!(ours_now.status, SeatRequestStatus::Approved);
    let allocation = ours_now.allocation_id.expect("the approval names its allocation");
    let held = app.with_connection(|conn| db::ledger::get_allocation(conn, allocation).unwrap());
    assert_eq!((held.organisation_code.as_str(), held.quantity), ("RR8", 3));

    let too_many =
        national.post_form(&format!("/seat-requests/{theirs}/approve"), &[("csrf_token", &token)]).await;
    assert!(too_many.status == 409 || too_many.status == 422, "{}", too_many.status);
    assert!(too_many.body.contains("The request could not be approved"), "{}", too_many.body);
    assert!(too_many.body.contains("still waiting for a decision"));
    assert_eq!(request(&app, theirs).status, SeatRequestStatus::Pending, "nothing changed");

    // A refusal needs a reason, which the organisation then reads.
    let path = format!("/seat-requests/{refused}/refuse");
    let empty = national.post_form(&path, &[("csrf_token", &token), ("reason", "  ")]).await;
    assert_eq!(empty.status, 422);
    assert!(empty.body.contains(r##"<a href="#reason">Enter why the request is refused"##), "{}", empty.body);
    assert_eq!(request(&app, refused).status, SeatRequestStatus::Pending, "nothing written");
    let long = "x".repeat(db::seat_requests::MAX_REASON_CHARS + 1);
    let too_long = national.post_form(&path, &[("csrf_token", &token), ("reason", &long)]).await;
    assert_eq!(too_long.status, 422);
    assert!(too_long.body.contains(&long), "what was typed is kept");
    let reason = "The line is held for acute trusts this year.";
    let done = national.post_form(&path, &[("csrf_token", &token), ("reason", reason)]).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(request(&app, refused).reason.as_deref(), Some(reason));

    // RJ1's officer reads the refusal and withdraws the request still waiting; RR8's officer
    // sees neither of RJ1's requests and cannot withdraw them.
    let rj1_officer = app.create_user(Role::Officer, Some("RJ1"));
    let mut trust = Browser::new(&app);
    trust.sign_in(&rj1_officer).await;
    let own = trust.get("/seat-requests").await;
    assert!(own.body.contains(&format!(r#"href="/seat-requests/{refused}""#)), "every status of its own");
    assert!(!own.body.contains(&format!(r#"href="/seat-requests/{ours}""#)), "not another trust's");
    assert!(trust.get(&format!("/seat-requests/{refused}")).await.body.contains(reason));
    let waiting = trust.get(&format!("/seat-requests/{theirs}")).await;
    assert!(waiting.body.contains(r#"/withdraw""#) && !waiting.body.contains(r#"/approve""#));

    let rr8_officer = app.create_user(Role::Officer, Some("RR8"));
    let mut other = Browser::new(&app);
    other.sign_in(&rr8_officer).await;
    assert_eq!(other.get(&format!("/seat-requests/{theirs}")).await.status, 404);
    let other_token = other.get("/seat-requests").await.hidden("csrf_token");
    let not_theirs =
        other.post_form(&format!("/seat-requests/{theirs}/withdraw"), &[("csrf_token", &other_token)]).await;
    assert_eq!(not_theirs.status, 404);
    assert_eq!(request(&app, theirs).status, SeatRequestStatus::Pending);

    let trust_token = waiting.hidden("csrf_token");
    let withdrawn =
        trust.post_form(&format!("/seat-requests/{theirs}/withdraw"), &[("csrf_token", &trust_token)]).await;
    assert_eq!(withdrawn.status, 303, "{}", withdrawn.body);
    assert_eq!(request(&app, theirs).status, SeatRequestStatus::Withdrawn);
    assert!(national.get("/seat-requests").await.body.contains("No seat requests match these filters"));
}

on_both_engines!(the_national_team_decides_and_trusts_follow_their_requests);
