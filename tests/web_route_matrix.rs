//! Deny by default over every web page, as `route_matrix.rs` is for the API. The routes are
//! `api::web::ROUTES`, the table the router itself registers, and the test fails on a route its own
//! table below does not name (and on a row naming no route). Each route is called, GET and form
//! POST alike, by someone signed out, by a disabled user's session, by each role, and by an
//! officer and an exemplar of another trust, and must get exactly what the table says: the
//! sign-in page, 403, 404, or the page (200) and, for a form, the change it asks for (303). A
//! form sent without a valid session goes to the sign-in page with the form's page to come back
//! to (see `web_session.rs` for the form kept meanwhile).
//!
//! Forms carry the caller's own valid CSRF token and a body that would succeed for a caller who
//! may send it, so only authorisation can refuse them. A refused form must also leave the data
//! alone: the audit log (every write adds to it, in the write's transaction) and one value the
//! form would change are read before and after; an accepted form must change both, which shows
//! the value watched is the right one.
//!
//! The trust whose records the pages concern is RM3 (Salford Royal, an exemplar trust that
//! publishes the medical device standard); the other trust's callers are an officer of RJ1 and an
//! exemplar of RRK.

use std::cell::Cell;
use std::collections::BTreeSet;

use crate::web::Page as Answer;
use crate::web::{Part, multipart};
use api::web::PageMethod;
use catalogue_tests::{Role, TEST_PASSWORD, TestApp, TestUser};
use db::standards::{Level, RequirementInput, StandardVersion, VersionStatus};

/// The trust whose records the pages concern.
const TRUST: &str = "RM3";
/// Another trust, whose officer must not reach `TRUST`'s records.
const OTHER_TRUST: &str = "RJ1";
/// Another exemplar trust, whose exemplar must not change `TRUST`'s standard.
const OTHER_EXEMPLAR_TRUST: &str = "RRK";

/// Who calls, in the order of every row of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    Anonymous,
    /// An officer of `TRUST` who signed in and was then disabled.
    Disabled,
    Admin,
    Auditor,
    /// An officer of `TRUST`.
    Officer,
    /// An officer of `OTHER_TRUST`.
    OtherOfficer,
    /// An exemplar author of `TRUST`, the standard's publisher.
    Exemplar,
    /// An exemplar author of `OTHER_EXEMPLAR_TRUST`.
    OtherExemplar,
}

const CALLERS: [Who; 8] = [
    Who::Anonymous,
    Who::Disabled,
    Who::Admin,
    Who::Auditor,
    Who::Officer,
    Who::OtherOfficer,
    Who::Exemplar,
    Who::OtherExemplar,
];

/// What a call must get.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// 303 to the sign-in page, which remembers the page asked for (a form: its page, see `form_page`).
    SignIn,
    /// The page (200); for a form, 303 to a page of the site, with the change made.
    Ok,
    /// 403, the "You cannot do this" page.
    Forbidden,
    /// 404, the "Page not found" page: another trust's records are not there.
    NotFound,
    /// 401 on the sign-in form: these credentials sign no one in.
    WrongCredentials,
}

use Expect::{Forbidden as NO, NotFound as NF, Ok as OK, SignIn as IN, WrongCredentials as BAD};

// Columns: signed out, disabled, admin, auditor, officer, other trust's officer, exemplar (the
// publisher), other trust's exemplar.
/// Anyone, signed in or not.
const PUBLIC: [Expect; 8] = [OK, OK, OK, OK, OK, OK, OK, OK];
/// Any signed-in user.
const SIGNED_IN: [Expect; 8] = [IN, IN, OK, OK, OK, OK, OK, OK];
/// The national team and auditors (the API's `AdminOrAuditor`).
const READERS: [Expect; 8] = [IN, IN, OK, OK, NO, NO, NO, NO];
/// Reading `TRUST`'s private data (`ensure_can_read`): another trust's callers get 404.
const READS_TRUST: [Expect; 8] = [IN, IN, OK, OK, OK, NF, OK, NF];
/// Acting for `TRUST` (`AdminOrOfficer` and `ensure_can_act_for`): roles that never may get 403
/// (the role is checked first), another trust's officer 404.
const ACTS_FOR_TRUST: [Expect; 8] = [IN, IN, OK, NO, OK, NF, NO, NO];
/// Changing the standard `TRUST` publishes (`AdminOrExemplar` and `ensure_publisher`): the
/// standard is public, so others get 403, not 404.
const PUBLISHER: [Expect; 8] = [IN, IN, OK, NO, NO, NO, OK, NO];
/// A draft, seen only by those who may change it: for everyone else it is not there.
const PUBLISHERS_DRAFT: [Expect; 8] = [IN, IN, OK, NF, NF, NF, OK, NF];
/// The other trust's purchase form correcting `TRUST`'s purchase: acting for the other trust is
/// allowed to its officer and the national team, but the purchase is not the other trust's.
const TRUSTS_RECORD_ELSEWHERE: [Expect; 8] = [IN, IN, NF, NO, NF, NF, NO, NO];
/// A subscription of `TRUST`'s officer, seen (with its deliveries) by its owner, admins and
/// auditors (`ensure_can_see_subscription`); anyone else's is not there.
const OWN_OR_READERS: [Expect; 8] = [IN, IN, OK, OK, OK, NF, NF, NF];
/// Ending that subscription (`ensure_can_change_subscription`): its owner and admins; auditors,
/// who see it, get 403.
const OWN_OR_ADMIN: [Expect; 8] = [IN, IN, OK, NO, OK, NF, NF, NF];
/// The national team only (the API's `AdminOnly`): accounts.
const ADMIN_ONLY: [Expect; 8] = [IN, IN, OK, NO, NO, NO, NO, NO];
/// Asking for a product to be added: everyone but auditors, each for their own organisation (the
/// national team for any).
const REQUESTERS: [Expect; 8] = [IN, IN, OK, NO, OK, OK, OK, OK];
/// Withdrawing `TRUST`'s product request: those who act for `TRUST`, exemplar authors included;
/// auditors, who see it, get 403, another trust's callers 404.
const WITHDRAWS_TRUSTS_REQUEST: [Expect; 8] = [IN, IN, OK, NO, OK, NF, OK, NF];
/// The sign-in form, sent with the caller's own credentials (signed out: an unknown email).
const SIGN_IN_FORM: [Expect; 8] = [BAD, BAD, OK, OK, OK, OK, OK, OK];

/// The forms, each prepared afresh before every call (see [`prepare`]).
#[derive(Clone, Copy, Debug)]
enum Form {
    SignIn,
    SignOut,
    /// The timeout warning's "Stay signed in".
    RenewSession,
    Claim,
    Release,
    Purchase,
    RiskAcceptance,
    Acknowledge,
    Applicability,
    Close,
    NewDraft,
    AddRequirement,
    EditRequirement,
    RemoveRequirement,
    Withdraw,
    Publish,
    Assess,
    /// A form with a file: an inventory imported (not only checked).
    Estate,
    /// A form with a file: seat changes made (not only checked).
    SeatChanges,
    /// A subscription added on the Notifications page.
    Subscribe,
    /// A subscription of `TRUST`'s officer ended, made afresh for each call.
    EndSubscription,
    /// An account added on the new-user page.
    NewUser,
    /// An officer's account, made afresh for each call, disabled.
    DisableUser,
    /// A disabled officer's account, made afresh for each call, enabled.
    EnableUser,
    /// The caller's own password changed (from a session of a user like them, made for the call:
    /// the change ends every session of the account).
    ChangePassword,
    /// An advisory published on the new-advisory page.
    NewAdvisory,
    /// An advisory, made afresh for each call, changed at its current revision.
    EditAdvisory,
    /// An organisation added on the new-organisation page.
    NewOrganisation,
    /// `TRUST` changed at its current revision (its source, a field of the catalogue's own).
    EditOrganisation,
    /// A seat request of `TRUST`, made afresh for each call, approved.
    ApproveRequest,
    /// A seat request of `TRUST`, made afresh for each call, refused with a reason.
    RefuseRequest,
    /// A seat request of `TRUST`, made afresh for each call, withdrawn.
    WithdrawRequest,
    /// A product asked for on the new-product-request page (for `TRUST`; the caller's own
    /// organisation for an officer or exemplar author).
    NewProductRequest,
    /// A product request of `TRUST`, made afresh for each call, marked added.
    MarkProductAdded,
    /// A product request of `TRUST`, made afresh for each call, declined with a reason.
    DeclineProductRequest,
    /// A product request of `TRUST`, made afresh for each call, withdrawn.
    WithdrawProductRequest,
    /// A product added on the new-product page.
    NewProduct,
    /// The fixture's product changed at its current revision (its source only, so that the other
    /// rows see it as it was).
    EditProduct,
    /// "Forgotten your password?" asked for the caller's own address (signed out: an unknown one).
    RequestReset,
    /// A new password chosen through a reset link made afresh for each call, for a user made for it.
    ResetPassword,
    /// An officer's account, made afresh for each call, sent a password reset email by an admin.
    SendReset,
    /// An agreement added on the new-agreement page.
    NewAgreement,
    /// The fixture's agreement changed at its current revision (its source only).
    EditAgreement,
}

enum Send {
    Get(String),
    Post(Form),
}

/// One row of the matrix: a route of `api::web::ROUTES`, a request to it, and what each caller
/// must get.
struct Case {
    pattern: &'static str,
    send: Send,
    expect: [Expect; 8],
    /// Part of an allowed page that only some of those who see the page may see: a marker in
    /// the page, and for each caller whether it must be there.
    shows: Option<(&'static str, [bool; 8])>,
}

impl Case {
    fn method(&self) -> PageMethod {
        match self.send {
            Send::Get(_) => PageMethod::Get,
            Send::Post(_) => PageMethod::Post,
        }
    }
}

fn get(pattern: &'static str, url: String, expect: [Expect; 8]) -> Case {
    Case { pattern, send: Send::Get(url), expect, shows: None }
}

fn post(pattern: &'static str, form: Form, expect: [Expect; 8]) -> Case {
    Case { pattern, send: Send::Post(form), expect, shows: None }
}

/// Records of `TRUST` and the catalogue that the requests name.
struct Fixture {
    /// Windows 10 Enterprise, which `TRUST` holds (unsupported: advisory CC-2025-0001 applies).
    product: i64,
    /// The national entitlement to it that `TRUST` claims from, and its agreement.
    entitlement: i64,
    agreement: i64,
    /// `TRUST`'s allocation of that entitlement.
    allocation: i64,
    /// The medical device security standard, published by `TRUST`, its category and published
    /// version when the test starts, and a draft.
    standard: i64,
    category: String,
    published: i32,
    draft: i32,
    /// Advisory CC-2025-0001.
    advisory: i64,
    /// A purchase `TRUST` recorded against the standard.
    purchase: i64,
    /// The officer of `TRUST` among the callers, and a webhook subscription of theirs.
    officer: i64,
    /// A working password reset link's token, of a user made for it.
    reset_token: String,
    webhook: i64,
    /// A line whose claims need approval, and a pending seat request of `TRUST` on it.
    approval_line: i64,
    seat_request: i64,
    /// A product request of `TRUST`, waiting.
    product_request: i64,
    /// Makes names unique (order references, requirement codes, advisory references).
    serial: Cell<u32>,
}

impl Fixture {
    fn next(&self) -> u32 {
        self.serial.set(self.serial.get() + 1);
        self.serial.get()
    }
}

fn cases(f: &Fixture) -> Vec<Case> {
    let (s, draft, published) = (f.standard, f.draft, f.published);
    let assets = format!("{}/app/app.css", api::web::assets::prefix());
    let admins_and_auditors = [false, false, true, true, false, false, false, false];
    let publishers = [false, false, true, false, false, false, true, false];
    let those_acting_for_trust = [false, false, true, false, true, false, false, false];
    let admins = [false, false, true, false, false, false, false, false];
    let officers_of_trust = [false, false, false, false, true, false, false, false];
    vec![
        get("/assets/{digest}/{path:.*}", assets, PUBLIC),
        Case { shows: Some((r#"href="/products/new""#, admins)), ..get("/", "/".into(), SIGNED_IN) },
        get("/login", "/login".into(), PUBLIC),
        post("/login", Form::SignIn, SIGN_IN_FORM),
        get("/password-reset", "/password-reset".into(), PUBLIC),
        post("/password-reset", Form::RequestReset, PUBLIC),
        get("/password-reset/{token}", format!("/password-reset/{}", f.reset_token), PUBLIC),
        post("/password-reset/{token}", Form::ResetPassword, PUBLIC),
        get("/logout", "/logout".into(), SIGNED_IN),
        post("/logout", Form::SignOut, SIGNED_IN),
        post("/session/renew", Form::RenewSession, SIGNED_IN),
        get("/account/password", "/account/password".into(), SIGNED_IN),
        post("/account/password", Form::ChangePassword, SIGNED_IN),
        post("/entitlements/{id}/claim", Form::Claim, ACTS_FOR_TRUST),
        get("/allocations/{id}/release", format!("/allocations/{}/release", f.allocation), ACTS_FOR_TRUST),
        post("/allocations/{id}/release", Form::Release, ACTS_FOR_TRUST),
        get("/audit", "/audit?action=allocation.claim".into(), READERS),
        Case {
            shows: Some((r#"href="/organisations/new""#, admins)),
            ..get("/organisations", "/organisations?sort=name&include_closed=yes".into(), SIGNED_IN)
        },
        get("/organisations", "/organisations?kind=trust&format=csv".into(), SIGNED_IN),
        get("/organisations/new", "/organisations/new".into(), ADMIN_ONLY),
        post("/organisations", Form::NewOrganisation, ADMIN_ONLY),
        Case {
            shows: Some((r#"/release?return_to="#, those_acting_for_trust)),
            ..get("/organisations/{code}", format!("/organisations/{TRUST}"), READS_TRUST)
        },
        Case {
            shows: Some((r#"/edit">Change"#, admins)),
            ..get("/organisations/{code}", format!("/organisations/{TRUST}"), READS_TRUST)
        },
        get("/organisations/{code}/edit", format!("/organisations/{TRUST}/edit"), ADMIN_ONLY),
        post("/organisations/{code}/edit", Form::EditOrganisation, ADMIN_ONLY),
        get(
            "/organisations/{code}/purchases/new",
            format!("/organisations/{TRUST}/purchases/new?standard={s}"),
            ACTS_FOR_TRUST,
        ),
        get(
            "/organisations/{code}/purchases/new",
            format!("/organisations/{TRUST}/purchases/new?standard={s}&corrects={}", f.purchase),
            ACTS_FOR_TRUST,
        ),
        get(
            "/organisations/{code}/purchases/new",
            format!("/organisations/{OTHER_TRUST}/purchases/new?standard={s}&corrects={}", f.purchase),
            TRUSTS_RECORD_ELSEWHERE,
        ),
        post("/organisations/{code}/purchases", Form::Purchase, ACTS_FOR_TRUST),
        Case {
            shows: Some((r#"enctype="multipart/form-data""#, those_acting_for_trust)),
            ..get("/organisations/{code}/estate", format!("/organisations/{TRUST}/estate"), READS_TRUST)
        },
        get("/organisations/{code}/estate", format!("/organisations/{TRUST}/estate?format=csv"), READS_TRUST),
        post("/organisations/{code}/estate", Form::Estate, ACTS_FOR_TRUST),
        get(
            "/organisations/{code}/seat-changes",
            format!("/organisations/{TRUST}/seat-changes"),
            ACTS_FOR_TRUST,
        ),
        post("/organisations/{code}/seat-changes", Form::SeatChanges, ACTS_FOR_TRUST),
        get(
            "/organisations/{code}/risk-acceptances/new",
            format!("/organisations/{TRUST}/risk-acceptances/new"),
            ACTS_FOR_TRUST,
        ),
        post("/organisations/{code}/risk-acceptances", Form::RiskAcceptance, ACTS_FOR_TRUST),
        Case {
            shows: Some((r#"/edit">Change"#, admins)),
            ..get("/products/{id}", format!("/products/{}", f.product), SIGNED_IN)
        },
        get("/products/new", "/products/new".into(), ADMIN_ONLY),
        post("/products", Form::NewProduct, ADMIN_ONLY),
        get("/products/{id}/edit", format!("/products/{}/edit", f.product), ADMIN_ONLY),
        post("/products/{id}/edit", Form::EditProduct, ADMIN_ONLY),
        Case {
            shows: Some((r#"href="/agreements/new""#, admins)),
            ..get("/agreements", "/agreements".into(), SIGNED_IN)
        },
        post("/agreements", Form::NewAgreement, ADMIN_ONLY),
        get("/agreements/new", "/agreements/new".into(), ADMIN_ONLY),
        get("/agreements/{id}/edit", format!("/agreements/{}/edit", f.agreement), ADMIN_ONLY),
        post("/agreements/{id}/edit", Form::EditAgreement, ADMIN_ONLY),
        Case {
            shows: Some((r#"<svg class="app-chart""#, admins_and_auditors)),
            ..get("/agreements/{id}", format!("/agreements/{}", f.agreement), SIGNED_IN)
        },
        get("/users", "/users".into(), READERS),
        get("/users/new", "/users/new".into(), ADMIN_ONLY),
        post("/users", Form::NewUser, ADMIN_ONLY),
        get("/users/{id}", format!("/users/{}", f.officer), READERS),
        get("/users/{id}/disable", format!("/users/{}/disable", f.officer), ADMIN_ONLY),
        post("/users/{id}/disable", Form::DisableUser, ADMIN_ONLY),
        post("/users/{id}/enable", Form::EnableUser, ADMIN_ONLY),
        post("/users/{id}/password-reset", Form::SendReset, ADMIN_ONLY),
        Case {
            shows: Some((r#"href="/advisories/new""#, admins)),
            ..get("/advisories", "/advisories".into(), SIGNED_IN)
        },
        get("/advisories/new", "/advisories/new".into(), ADMIN_ONLY),
        post("/advisories", Form::NewAdvisory, ADMIN_ONLY),
        get("/advisories/{id}/edit", format!("/advisories/{}/edit", f.advisory), ADMIN_ONLY),
        post("/advisories/{id}/edit", Form::EditAdvisory, ADMIN_ONLY),
        get("/seat-requests", "/seat-requests".into(), SIGNED_IN),
        get("/seat-requests", "/seat-requests?status=&format=csv".into(), SIGNED_IN),
        Case {
            shows: Some((r#"/approve""#, admins)),
            ..get("/seat-requests/{id}", format!("/seat-requests/{}", f.seat_request), READS_TRUST)
        },
        Case {
            shows: Some((r#"/withdraw""#, officers_of_trust)),
            ..get("/seat-requests/{id}", format!("/seat-requests/{}", f.seat_request), READS_TRUST)
        },
        post("/seat-requests/{id}/approve", Form::ApproveRequest, ADMIN_ONLY),
        post("/seat-requests/{id}/refuse", Form::RefuseRequest, ADMIN_ONLY),
        post("/seat-requests/{id}/withdraw", Form::WithdrawRequest, ACTS_FOR_TRUST),
        get("/product-requests", "/product-requests".into(), SIGNED_IN),
        get("/product-requests", "/product-requests?status=waiting&format=csv".into(), SIGNED_IN),
        get("/product-requests/new", "/product-requests/new?q=Matrix+Viewer".into(), REQUESTERS),
        post("/product-requests", Form::NewProductRequest, REQUESTERS),
        Case {
            shows: Some((r#"/added""#, admins)),
            ..get("/product-requests/{id}", format!("/product-requests/{}", f.product_request), READS_TRUST)
        },
        Case {
            shows: Some((r#"/withdraw""#, [false, false, false, false, true, false, true, false])),
            ..get("/product-requests/{id}", format!("/product-requests/{}", f.product_request), READS_TRUST)
        },
        post("/product-requests/{id}/added", Form::MarkProductAdded, ADMIN_ONLY),
        post("/product-requests/{id}/decline", Form::DeclineProductRequest, ADMIN_ONLY),
        post("/product-requests/{id}/withdraw", Form::WithdrawProductRequest, WITHDRAWS_TRUSTS_REQUEST),
        get("/reports", "/reports".into(), READERS),
        get("/reports/unsupported", "/reports/unsupported".into(), READERS),
        get("/reports/reconciliation", "/reports/reconciliation".into(), READERS),
        Case {
            shows: Some(("<h2>Exposure</h2>", admins_and_auditors)),
            ..get("/advisories/{id}", format!("/advisories/{}", f.advisory), SIGNED_IN)
        },
        Case {
            shows: Some((r#"/edit">Change"#, admins)),
            ..get("/advisories/{id}", format!("/advisories/{}", f.advisory), SIGNED_IN)
        },
        get(
            "/organisations/{code}/advisories/{id}",
            format!("/organisations/{TRUST}/advisories/{}", f.advisory),
            READS_TRUST,
        ),
        post("/organisations/{code}/advisories/{id}/acknowledge", Form::Acknowledge, ACTS_FOR_TRUST),
        post("/organisations/{code}/advisories/{id}/applicability", Form::Applicability, ACTS_FOR_TRUST),
        post("/organisations/{code}/advisories/{id}/close", Form::Close, ACTS_FOR_TRUST),
        get("/standards", "/standards".into(), SIGNED_IN),
        get(
            "/standards",
            "/standards?q=device&status=published&publisher=RM3&sort=published".into(),
            SIGNED_IN,
        ),
        get("/standards", "/standards?sort=title&format=csv".into(), SIGNED_IN),
        Case {
            shows: Some((": draft</h2>", publishers)),
            ..get("/standards/{id}", format!("/standards/{s}"), SIGNED_IN)
        },
        post("/standards/{id}/versions", Form::NewDraft, PUBLISHER),
        post("/standards/{id}/versions/{n}/requirements", Form::AddRequirement, PUBLISHER),
        get(
            "/standards/{id}/versions/{n}/requirements/edit",
            format!("/standards/{s}/versions/{draft}/requirements/edit?code=MDS-03"),
            PUBLISHER,
        ),
        post("/standards/{id}/versions/{n}/requirements/edit", Form::EditRequirement, PUBLISHER),
        post("/standards/{id}/versions/{n}/requirements/remove", Form::RemoveRequirement, PUBLISHER),
        get(
            "/standards/{id}/versions/{n}/withdraw",
            format!("/standards/{s}/versions/{published}/withdraw"),
            PUBLISHER,
        ),
        post("/standards/{id}/versions/{n}/withdraw", Form::Withdraw, PUBLISHER),
        get(
            "/standards/{id}/versions/{n}/publish",
            format!("/standards/{s}/versions/{draft}/publish"),
            PUBLISHER,
        ),
        post("/standards/{id}/versions/{n}/publish", Form::Publish, PUBLISHER),
        get(
            "/standards/{id}/versions/{n}/assessments",
            format!("/standards/{s}/versions/{published}/assessments"),
            SIGNED_IN,
        ),
        get(
            "/standards/{id}/versions/{n}/assessments",
            format!("/standards/{s}/versions/{draft}/assessments"),
            PUBLISHERS_DRAFT,
        ),
        post("/standards/{id}/versions/{n}/assessments", Form::Assess, PUBLISHER),
        get("/notifications", "/notifications".into(), SIGNED_IN),
        post("/notifications", Form::Subscribe, SIGNED_IN),
        get(
            "/notifications/{id}/deliveries",
            format!("/notifications/{}/deliveries", f.webhook),
            OWN_OR_READERS,
        ),
        get("/notifications/{id}/delete", format!("/notifications/{}/delete", f.webhook), OWN_OR_ADMIN),
        post("/notifications/{id}/delete", Form::EndSubscription, OWN_OR_ADMIN),
    ]
}

/// A caller of the pages: the session cookie it sends (none when signed out) and the CSRF token
/// of that session, which its forms carry.
struct Caller {
    who: Who,
    user: Option<TestUser>,
    cookie: Option<String>,
    csrf_token: String,
}

async fn send(request: reqwest::RequestBuilder, cookie: Option<&str>) -> Answer {
    let request = match cookie {
        Some(cookie) => request.header("cookie", cookie),
        None => request,
    };
    let response = request.send().await.unwrap();
    Answer {
        status: response.status(),
        headers: response.headers().clone(),
        body: response.text().await.unwrap_or_default(),
    }
}

async fn get_page(app: &TestApp, cookie: Option<&str>, url: &str) -> Answer {
    send(app.get(url), cookie).await
}

async fn post_form(app: &TestApp, cookie: Option<&str>, url: &str, fields: &[(String, String)]) -> Answer {
    send(app.post(url).form(fields), cookie).await
}

/// Signs in through the sign-in page, as a browser does.
async fn sign_in_form(app: &TestApp, email: &str) -> Answer {
    let login = get_page(app, None, "/login").await;
    assert_eq!(login.status, 200);
    let bound = login.cookie("catalogue_sign_in").expect("the sign-in page's cookie");
    let fields = [("email", email), ("password", TEST_PASSWORD), ("csrf_token", &login.hidden("csrf_token"))]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
    post_form(app, Some(&bound), "/login", &fields).await
}

async fn signed_in(app: &TestApp, who: Who, user: TestUser) -> Caller {
    let answer = sign_in_form(app, &user.email).await;
    assert_eq!(answer.status, 303, "{who:?} signs in: {}", answer.body);
    let cookie = answer.cookie("catalogue_session").expect("a session cookie");
    let start = get_page(app, Some(&cookie), "/").await;
    assert_eq!(start.status, 200, "{who:?}");
    Caller { who, csrf_token: start.hidden("csrf_token"), cookie: Some(cookie), user: Some(user) }
}

/// A user like `who` (same role and organisation), made for one call.
fn user_like(app: &TestApp, who: Who) -> TestUser {
    match who {
        Who::Anonymous => unreachable!("no user"),
        Who::Admin => app.create_user(Role::Admin, None),
        Who::Auditor => app.create_user(Role::Auditor, None),
        Who::Officer | Who::Disabled => app.create_user(Role::Officer, Some(TRUST)),
        Who::OtherOfficer => app.create_user(Role::Officer, Some(OTHER_TRUST)),
        Who::Exemplar => app.create_user(Role::Exemplar, Some(TRUST)),
        Who::OtherExemplar => app.create_user(Role::Exemplar, Some(OTHER_EXEMPLAR_TRUST)),
    }
}

async fn callers(app: &TestApp) -> Vec<Caller> {
    let mut callers = Vec::new();
    for who in CALLERS {
        let caller = match who {
            Who::Anonymous => Caller { who, user: None, cookie: None, csrf_token: String::new() },
            _ => signed_in(app, who, user_like(app, who)).await,
        };
        callers.push(caller);
    }
    // Disabled after signing in: the session (and the CSRF token its forms carry) is one the
    // user really had.
    let disabled = callers[1].user.as_ref().map(|u| u.id).unwrap_or_default();
    let changes = db::users::UserChanges { disabled: Some(true), ..Default::default() };
    db::users::update(app.db(), &db::Actor::system("test"), disabled, changes, db::Precondition::Exists)
        .unwrap();
    callers
}

/// One value of the database, as text.
fn value(app: &TestApp, sql: &str) -> String {
    #[derive(diesel::QueryableByName)]
    struct Value {
        #[diesel(sql_type = diesel::sql_types::Text)]
        value: String,
    }
    app.with_connection(|conn| {
        use diesel::prelude::*;
        diesel::sql_query(sql).get_result::<Value>(conn).unwrap_or_else(|e| panic!("{sql}: {e}")).value
    })
}

fn id(app: &TestApp, sql: &str) -> i64 {
    value(app, sql).parse().unwrap_or_else(|e| panic!("{sql}: {e}"))
}

fn audit_events(app: &TestApp) -> String {
    value(app, "SELECT CAST(COUNT(*) AS TEXT) AS value FROM audit_events")
}

fn system() -> db::Actor {
    db::Actor::system("test")
}

fn today() -> chrono::NaiveDate {
    chrono::Utc::now().date_naive()
}

fn version(app: &TestApp, standard: i64, number: i32) -> StandardVersion {
    app.with_connection(|conn| db::standards::get_version(conn, standard, number).unwrap())
}

/// The standard's draft, started from its latest version when it has none.
fn draft(app: &TestApp, standard: i64) -> StandardVersion {
    let current = app.with_connection(|conn| db::standards::get(conn, standard).unwrap());
    match current.versions.iter().find(|v| v.status == VersionStatus::Draft) {
        Some(draft) => version(app, standard, draft.number),
        None => db::standards::new_draft(app.db(), &system(), standard).unwrap(),
    }
}

fn published(app: &TestApp, standard: i64) -> StandardVersion {
    let current = app.with_connection(|conn| db::standards::get(conn, standard).unwrap());
    version(app, standard, current.published_version.expect("a published version"))
}

/// An advisory on the product `TRUST` holds, new for one call; acknowledged for `TRUST` if asked.
fn fresh_advisory(app: &TestApp, f: &Fixture, acknowledged: bool) -> i64 {
    let fields = db::advisories::AdvisoryFields {
        reference: format!("CC-TEST-{:04}", f.next()),
        title: "Matrix advisory".into(),
        severity: db::advisories::Severity::High,
        published_at: chrono::Utc::now().naive_utc(),
        remediation: "Upgrade.".into(),
        links: Vec::new(),
        affected_product_ids: vec![f.product],
        source: None,
    };
    let advisory = db::advisories::create(app.db(), &system(), fields).unwrap();
    if acknowledged {
        let response = db::advisories::Response::Acknowledge { applicable: None, reason: None };
        db::advisories::respond(app.db(), &system(), advisory.id, TRUST, response).unwrap();
    }
    advisory.id
}

fn responses(advisory: i64, condition: &str) -> String {
    format!(
        "SELECT CAST(COUNT(*) AS TEXT) AS value FROM advisory_responses WHERE advisory_id = {advisory} \
         AND organisation_code = '{TRUST}' AND {condition}"
    )
}

fn version_column(standard: i64, number: i32, column: &str) -> String {
    format!(
        "SELECT CAST({column} AS TEXT) AS value FROM standard_versions WHERE standard_id = {standard} \
         AND number = {number}"
    )
}

/// Declares every requirement of `version` met.
fn every_requirement_met(version: &StandardVersion, fields: &mut Vec<(String, String)>) {
    for requirement in &version.requirements {
        fields.push((format!("requirement_{}", requirement.code), "1".into()));
        fields.push((format!("met_{}", requirement.code), "yes".into()));
    }
}

/// A form ready to send: where, its fields (without the CSRF token), its file for a form with
/// one (sent as `multipart/form-data`, after the fields), and a query of the one value it
/// changes when it is accepted.
struct Prepared {
    url: String,
    fields: Vec<(String, String)>,
    file: Option<(String, String)>,
    watch: Option<String>,
}

fn pairs(fields: &[(&str, &str)]) -> Vec<(String, String)> {
    fields.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// `date` in a form's Day, Month and Year boxes for the date `id`.
fn date_boxes(id: &str, date: chrono::NaiveDate) -> [(String, String); 3] {
    use chrono::Datelike;
    [
        (format!("{id}-day"), date.day().to_string()),
        (format!("{id}-month"), date.month().to_string()),
        (format!("{id}-year"), date.year().to_string()),
    ]
}

/// Prepares `form` so that it would succeed for a caller who may send it: forms that can be
/// sent once (acknowledging, publishing, ...) get a target of their own each time.
fn prepare(app: &TestApp, f: &Fixture, form: Form) -> Prepared {
    let s = f.standard;
    let (url, fields, watch) = match form {
        Form::SignIn
        | Form::SignOut
        | Form::RenewSession
        | Form::ChangePassword
        | Form::RequestReset
        | Form::ResetPassword => {
            unreachable!("prepared by the caller")
        }
        Form::SendReset => {
            let user = app.create_user(Role::Officer, Some(TRUST));
            (
                format!("/users/{}/password-reset", user.id),
                Vec::new(),
                format!(
                    "SELECT CAST(COUNT(*) AS TEXT) AS value FROM password_resets WHERE user_id = {}",
                    user.id
                ),
            )
        }
        Form::Estate | Form::SeatChanges => unreachable!("prepared by prepare_upload"),
        Form::Claim => (
            format!("/entitlements/{}/claim", f.entitlement),
            pairs(&[("organisation", TRUST), ("quantity", "1"), ("question", "Windows 10 Enterprise")]),
            format!(
                "SELECT CAST(COUNT(*) AS TEXT) AS value FROM allocations WHERE organisation_code = '{TRUST}'"
            ),
        ),
        Form::Release => (
            format!("/allocations/{}/release", f.allocation),
            pairs(&[("quantity", "1"), ("return_to", &format!("/organisations/{TRUST}"))]),
            format!("SELECT CAST(quantity AS TEXT) AS value FROM allocations WHERE id = {}", f.allocation),
        ),
        Form::Purchase => {
            let version = published(app, s);
            let mut fields = pairs(&[
                ("standard_id", &s.to_string()),
                ("version", &version.number.to_string()),
                ("category", &f.category),
                ("description", "Portable X-ray unit"),
                ("quantity", "1"),
                ("unit_cost", "12000"),
                ("order_reference", &format!("PO-M{}", f.next())),
            ]);
            fields.extend(date_boxes("purchased_on", today()));
            every_requirement_met(&version, &mut fields);
            (
                format!("/organisations/{TRUST}/purchases"),
                fields,
                format!(
                    "SELECT CAST(COUNT(*) AS TEXT) AS value FROM purchases WHERE organisation_code = '{TRUST}'"
                ),
            )
        }
        Form::RiskAcceptance => (
            format!("/organisations/{TRUST}/risk-acceptances"),
            pairs(&[
                ("product_id", &f.product.to_string()),
                ("compensating_controls", "Isolated VLAN"),
                ("mds2_reference", ""),
            ])
            .into_iter()
            .chain(date_boxes("expires_on", today() + chrono::Days::new(365)))
            .collect(),
            format!(
                "SELECT CAST(COUNT(*) AS TEXT) AS value FROM risk_acceptances WHERE organisation_code = '{TRUST}'"
            ),
        ),
        Form::Acknowledge => {
            let advisory = fresh_advisory(app, f, false);
            (
                format!("/organisations/{TRUST}/advisories/{advisory}/acknowledge"),
                pairs(&[("applicable", "yes"), ("return_to", &format!("/organisations/{TRUST}"))]),
                responses(advisory, "acknowledged_at IS NOT NULL"),
            )
        }
        Form::Applicability => {
            let advisory = fresh_advisory(app, f, true);
            (
                format!("/organisations/{TRUST}/advisories/{advisory}/applicability"),
                pairs(&[("applicable", "no"), ("reason", "isolated ward")]),
                responses(advisory, "applicable IS NOT NULL"),
            )
        }
        Form::Close => {
            let advisory = fresh_advisory(app, f, true);
            (
                format!("/organisations/{TRUST}/advisories/{advisory}/close"),
                pairs(&[("remediation_note", "Upgraded")]),
                responses(advisory, "closed_at IS NOT NULL"),
            )
        }
        Form::NewDraft => {
            let current = app.with_connection(|conn| db::standards::get(conn, s).unwrap());
            if let Some(draft) = current.versions.iter().find(|v| v.status == VersionStatus::Draft) {
                db::standards::withdraw(app.db(), &system(), s, draft.number).unwrap();
            }
            (
                format!("/standards/{s}/versions"),
                Vec::new(),
                format!(
                    "SELECT CAST(COUNT(*) AS TEXT) AS value FROM standard_versions WHERE standard_id = {s}"
                ),
            )
        }
        Form::AddRequirement => {
            let draft = draft(app, s);
            (
                format!("/standards/{s}/versions/{}/requirements", draft.number),
                pairs(&[
                    ("code", &format!("ADD-{}", f.next())),
                    ("level", "MAY"),
                    ("text", "The supplier MAY say more."),
                    ("revision", &draft.revision.to_string()),
                ]),
                version_column(s, draft.number, "revision"),
            )
        }
        Form::EditRequirement => {
            let draft = draft(app, s);
            let requirement = draft.requirements.iter().find(|r| r.code == "MDS-03").expect("MDS-03");
            (
                format!("/standards/{s}/versions/{}/requirements/edit", draft.number),
                pairs(&[
                    ("original_code", "MDS-03"),
                    ("code", "MDS-03"),
                    ("level", requirement.level.as_str()),
                    ("text", &format!("{} (edit {})", requirement.text, f.next())),
                    ("revision", &draft.revision.to_string()),
                ]),
                version_column(s, draft.number, "revision"),
            )
        }
        Form::RemoveRequirement => {
            let draft = draft(app, s);
            let code = format!("TMP-{}", f.next());
            let mut requirements: Vec<RequirementInput> = draft
                .requirements
                .iter()
                .map(|r| RequirementInput {
                    code: r.code.clone(),
                    text: r.text.clone(),
                    level: r.level,
                    criterion: r.criterion.clone(),
                })
                .collect();
            requirements.push(RequirementInput {
                code: code.clone(),
                text: "To be removed.".into(),
                level: Level::May,
                criterion: None,
            });
            let changes = db::standards::DraftChanges { summary: None, requirements: Some(requirements) };
            let precondition = db::Precondition::Revision(draft.revision);
            let draft =
                db::standards::edit_draft(app.db(), &system(), s, draft.number, changes, precondition)
                    .unwrap();
            (
                format!("/standards/{s}/versions/{}/requirements/remove", draft.number),
                pairs(&[("code", &code), ("revision", &draft.revision.to_string())]),
                version_column(s, draft.number, "revision"),
            )
        }
        Form::Withdraw | Form::Publish => {
            let draft = draft(app, s);
            let action = if matches!(form, Form::Withdraw) { "withdraw" } else { "publish" };
            (
                format!("/standards/{s}/versions/{}/{action}", draft.number),
                Vec::new(),
                version_column(s, draft.number, "status"),
            )
        }
        Form::Subscribe => (
            "/notifications".to_owned(),
            pairs(&[
                ("kinds", "cap.full"),
                ("channel", "email"),
                ("email_cadence", "immediate"),
                ("organisation_scope", "every"),
            ]),
            "SELECT CAST(COUNT(*) AS TEXT) AS value FROM subscriptions".to_owned(),
        ),
        Form::NewUser => (
            "/users".to_owned(),
            pairs(&[
                ("display_name", "Matrix Auditor"),
                ("email", &format!("matrix-{}@nhs.net", f.next())),
                ("role", "auditor"),
                ("organisation_code", ""),
                ("password", "tangerine quietly harbours seven kites"),
            ]),
            "SELECT CAST(COUNT(*) AS TEXT) AS value FROM users".to_owned(),
        ),
        Form::NewAdvisory => {
            let reference = format!("CC-PAGE-{:04}", f.next());
            let mut fields = pairs(&[
                ("reference", &reference),
                ("title", "Matrix advisory from the page"),
                ("severity", "high"),
                ("remediation", "Upgrade."),
                ("links", ""),
                ("source", ""),
                ("products", &f.product.to_string()),
            ]);
            fields.extend(date_boxes("published_on", today()));
            (
                "/advisories".to_owned(),
                fields,
                "SELECT CAST(COUNT(*) AS TEXT) AS value FROM advisories".to_owned(),
            )
        }
        Form::EditAdvisory => {
            let advisory = fresh_advisory(app, f, false);
            let revision = app.with_connection(|conn| db::advisories::get(conn, advisory).unwrap().revision);
            let mut fields = pairs(&[
                ("revision", &revision.to_string()),
                ("title", &format!("Matrix advisory, changed {}", f.next())),
                ("severity", "critical"),
                ("remediation", "Upgrade now."),
                ("links", ""),
                ("source", ""),
                ("products", &f.product.to_string()),
            ]);
            fields.extend(date_boxes("published_on", today()));
            (
                format!("/advisories/{advisory}/edit"),
                fields,
                format!("SELECT CAST(revision AS TEXT) AS value FROM advisories WHERE id = {advisory}"),
            )
        }
        Form::NewOrganisation => (
            "/organisations".to_owned(),
            pairs(&[
                ("code", &format!("MX{:03}", f.next())),
                ("name", "Matrix Community Interest Company"),
                ("kind", "other"),
                ("region", "London"),
                ("source", ""),
            ]),
            "SELECT CAST(COUNT(*) AS TEXT) AS value FROM organisations".to_owned(),
        ),
        Form::EditOrganisation => {
            let trust = app.with_connection(|conn| db::organisations::get(conn, TRUST).unwrap());
            (
                format!("/organisations/{TRUST}/edit"),
                pairs(&[
                    ("revision", &trust.revision.to_string()),
                    ("name", &trust.name),
                    ("kind", trust.kind.as_str()),
                    ("region", trust.region.as_deref().unwrap_or_default()),
                    // `TRUST` publishes a standard: it stays an exemplar.
                    ("exemplar", "yes"),
                    ("source", &format!("Matrix check {}", f.next())),
                ]),
                format!("SELECT CAST(revision AS TEXT) AS value FROM organisations WHERE code = '{TRUST}'"),
            )
        }
        Form::ApproveRequest | Form::RefuseRequest | Form::WithdrawRequest => {
            let request = app.request_seats(f.approval_line, TRUST, 1);
            let (action, fields) = match form {
                Form::ApproveRequest => ("approve", Vec::new()),
                Form::RefuseRequest => ("refuse", pairs(&[("reason", "Matrix check: no budget this year")])),
                _ => ("withdraw", Vec::new()),
            };
            (
                format!("/seat-requests/{request}/{action}"),
                fields,
                format!("SELECT status AS value FROM seat_requests WHERE id = {request}"),
            )
        }
        Form::NewProductRequest => (
            "/product-requests".to_owned(),
            pairs(&[
                ("organisation", TRUST),
                ("product_name", &format!("Matrix Viewer {}", f.next())),
                ("supplier", "Matrix Imaging Ltd"),
                ("version", ""),
                ("need", "Radiology reads images with it"),
                ("searched", "Matrix Viewer"),
            ]),
            "SELECT CAST(COUNT(*) AS TEXT) AS value FROM product_requests".to_owned(),
        ),
        Form::MarkProductAdded | Form::DeclineProductRequest | Form::WithdrawProductRequest => {
            let request = app.request_product(TRUST, &format!("Matrix Viewer {}", f.next()));
            let (action, fields) = match form {
                Form::MarkProductAdded => ("added", pairs(&[("product_id", &f.product.to_string())])),
                Form::DeclineProductRequest => {
                    ("decline", pairs(&[("reason", "Matrix check: use the national PACS")]))
                }
                _ => ("withdraw", Vec::new()),
            };
            (
                format!("/product-requests/{request}/{action}"),
                fields,
                format!("SELECT status AS value FROM product_requests WHERE id = {request}"),
            )
        }
        Form::NewProduct => {
            let supplier =
                app.with_connection(|conn| db::products::get(conn, f.product, today()).unwrap()).supplier_id;
            (
                "/products".to_owned(),
                pairs(&[
                    ("supplier", &supplier.to_string()),
                    ("name", &format!("Matrix Product {}", f.next())),
                    ("category", "operating-system"),
                ]),
                "SELECT CAST(COUNT(*) AS TEXT) AS value FROM products".to_owned(),
            )
        }
        Form::EditProduct => {
            let product = app.with_connection(|conn| db::products::get(conn, f.product, today()).unwrap());
            let mut fields = pairs(&[
                ("revision", &product.revision.to_string()),
                ("supplier", &product.supplier_id.to_string()),
                ("name", &product.name),
                ("edition", &product.edition),
                ("version", &product.version),
                ("sku", product.sku.as_deref().unwrap_or_default()),
                ("category", &product.category),
                ("dtac_passed", if product.dtac_passed { "yes" } else { "" }),
                ("mds2_supplied", if product.mds2_supplied { "yes" } else { "" }),
                ("successor", &product.successor_id.map(|id| id.to_string()).unwrap_or_default()),
                ("source", &format!("Matrix check {}", f.next())),
            ]);
            let dates = [
                ("released_on", product.released_on),
                ("mainstream_support_ends_on", product.mainstream_support_ends_on),
                ("extended_support_ends_on", product.extended_support_ends_on),
            ];
            for (id, date) in dates {
                fields.extend(date.map(|date| date_boxes(id, date)).into_iter().flatten());
            }
            (
                format!("/products/{}/edit", f.product),
                fields,
                format!("SELECT CAST(revision AS TEXT) AS value FROM products WHERE id = {}", f.product),
            )
        }
        Form::NewAgreement => {
            let supplier =
                app.with_connection(|conn| db::agreements::get(conn, f.agreement).unwrap()).supplier_id;
            let mut fields = pairs(&[
                ("supplier", &supplier.to_string()),
                ("reference", &format!("MATRIX-{}", f.next())),
                ("title", "Matrix agreement"),
                ("funding_model", "central"),
                ("status", "draft"),
                ("currency", "GBP"),
                ("kind-trust", "yes"),
            ]);
            fields.extend(date_boxes("starts_on", chrono::NaiveDate::from_ymd_opt(2024, 4, 1).unwrap()));
            (
                "/agreements".to_owned(),
                fields,
                "SELECT CAST(COUNT(*) AS TEXT) AS value FROM agreements".to_owned(),
            )
        }
        Form::EditAgreement => {
            let agreement = app.with_connection(|conn| db::agreements::get(conn, f.agreement).unwrap());
            let text = |value: &Option<String>| value.clone().unwrap_or_default();
            let mut fields = pairs(&[
                ("revision", &agreement.revision.to_string()),
                ("title", &agreement.title),
                ("framework_reference", &text(&agreement.framework_reference)),
                ("framework_lot", &text(&agreement.framework_lot)),
                ("buyer", &text(&agreement.buyer)),
                ("funding_model", agreement.funding_model.as_str()),
                ("status", agreement.status.as_str()),
                (
                    "value",
                    &agreement.value_minor.map(|v| format!("{}.{:02}", v / 100, v % 100)).unwrap_or_default(),
                ),
                ("currency", &agreement.currency),
                ("reseller", &agreement.reseller_id.map(|id| id.to_string()).unwrap_or_default()),
                (
                    "initial_term_months",
                    &agreement.initial_term_months.map(|m| m.to_string()).unwrap_or_default(),
                ),
                ("notice_urls", &agreement.notice_urls.join("\n")),
                ("commercial_source", &text(&agreement.commercial_source)),
                ("source", &format!("Matrix check {}", f.next())),
            ]);
            fields.extend(date_boxes("starts_on", agreement.starts_on));
            fields.extend(agreement.ends_on.map(|date| date_boxes("ends_on", date)).into_iter().flatten());
            fields.extend(
                agreement
                    .eligible_kinds
                    .iter()
                    .map(|kind| (format!("kind-{}", kind.as_str()), "yes".to_owned())),
            );
            (
                format!("/agreements/{}/edit", f.agreement),
                fields,
                format!("SELECT CAST(revision AS TEXT) AS value FROM agreements WHERE id = {}", f.agreement),
            )
        }
        Form::DisableUser | Form::EnableUser => {
            let user = app.create_user(Role::Officer, Some(TRUST));
            let enable = matches!(form, Form::EnableUser);
            if enable {
                let changes = db::users::UserChanges { disabled: Some(true), ..Default::default() };
                let system = db::Actor::system("test");
                db::users::update(app.db(), &system, user.id, changes, db::Precondition::Exists).unwrap();
            }
            let action = if enable { "enable" } else { "disable" };
            (
                format!("/users/{}/{action}", user.id),
                Vec::new(),
                format!(
                    "SELECT CASE WHEN disabled THEN 'yes' ELSE 'no' END AS value FROM users WHERE id = {}",
                    user.id
                ),
            )
        }
        Form::EndSubscription => {
            let subscription = subscription_of(app, f.officer, false);
            (
                format!("/notifications/{subscription}/delete"),
                Vec::new(),
                format!(
                    "SELECT CAST(COUNT(*) AS TEXT) AS value FROM subscriptions WHERE id = {subscription}"
                ),
            )
        }
        Form::Assess => {
            let version = published(app, s);
            let product = id(
                app,
                &format!(
                    "SELECT CAST(MIN(id) AS TEXT) AS value FROM products WHERE id NOT IN (SELECT a.product_id \
                     FROM assessments a JOIN standard_versions v ON v.id = a.version_id \
                     WHERE v.standard_id = {s} AND v.number = {})",
                    version.number
                ),
            );
            let mut fields = pairs(&[("product_id", &product.to_string())]);
            every_requirement_met(&version, &mut fields);
            (
                format!("/standards/{s}/versions/{}/assessments", version.number),
                fields,
                "SELECT CAST(COUNT(*) AS TEXT) AS value FROM assessments".to_owned(),
            )
        }
    };
    Prepared { url, fields, file: None, watch: Some(watch) }
}

/// Prepares a form with a file so that it would succeed for a caller who may send it: each
/// inventory counts a different number of devices, so that every import changes the estate.
fn prepare_upload(f: &Fixture, form: Form) -> Prepared {
    let (url, fields, file, watch) = match form {
        Form::Estate => (
            format!("/organisations/{TRUST}/estate"),
            pairs(&[("source", "catalogue")]).into_iter().chain(date_boxes("taken_on", today())).collect(),
            format!("product,devices\nMS-WIN10-ENT,{}\n", f.next()),
            format!(
                "SELECT CAST(COALESCE(SUM(i.devices), 0) AS TEXT) AS value FROM estate_items i JOIN \
                 estate_snapshots s ON s.id = i.snapshot_id WHERE s.organisation_code = '{TRUST}'"
            ),
        ),
        Form::SeatChanges => (
            format!("/organisations/{TRUST}/seat-changes"),
            Vec::new(),
            format!("entitlement_id,change,quantity\n{},claim,1\n", f.entitlement),
            format!(
                "SELECT CAST(COUNT(*) AS TEXT) AS value FROM allocations WHERE organisation_code = '{TRUST}'"
            ),
        ),
        other => unreachable!("{other:?} has no file"),
    };
    Prepared { url, fields, file: Some(("inventory.csv".to_owned(), file)), watch: Some(watch) }
}

/// Whether a request path matches a route pattern (`{name}` is one segment, `{name:.*}` the rest).
fn matches(pattern: &str, url: &str) -> bool {
    let path = url.split('?').next().unwrap_or_default();
    let (mut patterns, mut segments) = (pattern.split('/'), path.split('/'));
    loop {
        match (patterns.next(), segments.next()) {
            (None, None) => return true,
            (Some(p), Some(_)) if p.starts_with('{') && p.ends_with(":.*}") => return true,
            (Some(p), Some(s)) if p.starts_with('{') => {
                if s.is_empty() {
                    return false;
                }
            }
            (Some(p), Some(s)) if p == s => {}
            _ => return false,
        }
    }
}

/// The page a form sent to `url` is on, as far as the app can tell without a `Referer` (the
/// matrix sends none): the form's own path when that is also a page, else the start page. Signing
/// out and renewing a session, whose forms are never kept, go back to the start page.
fn form_page(url: &str) -> String {
    let is_page =
        api::web::ROUTES.iter().any(|route| route.method == PageMethod::Get && matches(route.path, url));
    if is_page && !["/logout", "/session/renew"].contains(&url) { url.to_owned() } else { "/".to_owned() }
}

/// Checks one answer against what was expected; says what is wrong, if anything.
fn judge(answer: &Answer, expect: Expect, method: PageMethod, url: &str) -> Option<String> {
    let (status, location) = (answer.status, answer.location());
    let (right, wanted) = match expect {
        Expect::SignIn => {
            let next = match method {
                PageMethod::Get => api::web::query_value(url),
                PageMethod::Post => api::web::query_value(&form_page(url)),
            };
            let wanted = format!("/login?next={next}");
            (status == 303 && location == wanted, format!("303 to {wanted}"))
        }
        Expect::Ok if method == PageMethod::Get => (status == 200, "200".to_owned()),
        Expect::Ok => (
            status == 303 && location.starts_with('/') && !location.starts_with("/login?next="),
            "303 to a page of the site".to_owned(),
        ),
        Expect::Forbidden => (
            status == 403 && answer.body.contains("You cannot do this"),
            "403 \"You cannot do this\"".to_owned(),
        ),
        Expect::NotFound => {
            (status == 404 && answer.body.contains("Page not found"), "404 \"Page not found\"".to_owned())
        }
        Expect::WrongCredentials => (
            status == 401 && answer.body.contains("The email address or password is not correct"),
            "401 \"The email address or password is not correct\"".to_owned(),
        ),
    };
    (!right).then(|| format!("expected {wanted}, got {status} {location}"))
}

/// Sends `form` as `caller`; returns where it went, the answer and what was wrong with the data.
async fn call_form(
    app: &TestApp,
    f: &Fixture,
    caller: &Caller,
    form: Form,
    expect: Expect,
) -> (String, Answer, Vec<String>) {
    let mut problems = Vec::new();
    match form {
        // Sent from a browser of its own, with the caller's own credentials.
        Form::SignIn => {
            let email = caller.user.as_ref().map_or("nobody@test.nhs.uk", |user| user.email.as_str());
            let answer = sign_in_form(app, email).await;
            if expect == Expect::Ok && answer.cookie("catalogue_session").is_none() {
                problems.push("signed in without a session cookie".to_owned());
            }
            ("/login".into(), answer, problems)
        }
        // Signing out ends every session of the account: a caller who may sign out does so from
        // a session of a user like them, made for this call.
        Form::SignOut => {
            let own;
            let caller = if expect == Expect::Ok {
                own = signed_in(app, caller.who, user_like(app, caller.who)).await;
                &own
            } else {
                caller
            };
            let watch = caller.user.as_ref().map(|user| {
                format!("SELECT CAST(token_generation AS TEXT) AS value FROM users WHERE id = {}", user.id)
            });
            let prepared = Prepared {
                url: "/logout".into(),
                fields: pairs(&[("csrf_token", &caller.csrf_token)]),
                file: None,
                watch,
            };
            let (url, answer) = post_checked(app, caller, prepared, expect, &mut problems).await;
            (url, answer, problems)
        }
        // Changing one's password ends every session of the account, like signing out: a caller
        // who may change theirs does so from a session of a user like them, made for this call.
        Form::ChangePassword => {
            let own;
            let caller = if expect == Expect::Ok {
                own = signed_in(app, caller.who, user_like(app, caller.who)).await;
                &own
            } else {
                caller
            };
            let watch = caller
                .user
                .as_ref()
                .map(|user| format!("SELECT password_hash AS value FROM users WHERE id = {}", user.id));
            let new = "tangerine quietly harbours seven kites";
            let prepared = Prepared {
                url: "/account/password".into(),
                fields: pairs(&[
                    ("csrf_token", &caller.csrf_token),
                    ("current_password", TEST_PASSWORD),
                    ("new_password", new),
                    ("confirm_password", new),
                ]),
                file: None,
                watch,
            };
            let (url, answer) = post_checked(app, caller, prepared, expect, &mut problems).await;
            (url, answer, problems)
        }
        // Asking for a reset link: the same answer for everyone, signed in or not, whether or not
        // the address has an account; sent from the page's own cookie and token.
        Form::RequestReset => {
            let page = get_page(app, None, "/password-reset").await;
            let bound = page.cookie("catalogue_password_reset").expect("the page's cookie");
            let cookies = match &caller.cookie {
                Some(session) => format!("{session}; {bound}"),
                None => bound,
            };
            let email = caller.user.as_ref().map_or("nobody@test.nhs.uk", |user| user.email.as_str());
            let fields = pairs(&[("csrf_token", &page.hidden("csrf_token")), ("email", email)]);
            let answer = post_form(app, Some(&cookies), "/password-reset", &fields).await;
            if answer.location() != "/password-reset?sent=1" {
                problems.push(format!(
                    "answered {} {}, not the one answer",
                    answer.status,
                    answer.location()
                ));
            }
            ("/password-reset".into(), answer, problems)
        }
        // The link is what authorises the new password: anyone holding it may use it, once.
        Form::ResetPassword => {
            let user = app.create_user(Role::Auditor, None);
            let token = reset_link_for(app, user.id);
            let new = "tangerine quietly harbours seven kites";
            let prepared = Prepared {
                url: format!("/password-reset/{token}"),
                fields: pairs(&[("new_password", new), ("confirm_password", new)]),
                file: None,
                watch: Some(format!("SELECT password_hash AS value FROM users WHERE id = {}", user.id)),
            };
            let (url, answer) = post_checked(app, caller, prepared, expect, &mut problems).await;
            (url, answer, problems)
        }
        // Renewing a session writes nothing: accepted, it sets the session's cookie anew.
        Form::RenewSession => {
            let fields = pairs(&[("csrf_token", &caller.csrf_token)]);
            let (audit_before, url) = (audit_events(app), "/session/renew");
            let answer = post_form(app, caller.cookie.as_deref(), url, &fields).await;
            if answer.cookie("catalogue_session").is_some() != (expect == Expect::Ok) {
                problems.push("the session cookie was set anew exactly when renewing is allowed".to_owned());
            }
            if audit_events(app) != audit_before {
                problems.push("renewing a session wrote to the audit log".to_owned());
            }
            (url.into(), answer, problems)
        }
        _ => {
            let mut prepared = match form {
                Form::Estate | Form::SeatChanges => prepare_upload(f, form),
                _ => prepare(app, f, form),
            };
            // First, as the forms send it (a form with a file must carry it before the file).
            prepared.fields.insert(0, ("csrf_token".into(), caller.csrf_token.clone()));
            let (url, answer) = post_checked(app, caller, prepared, expect, &mut problems).await;
            (url, answer, problems)
        }
    }
}

/// Sends a prepared form; checks that the audit log and the watched value changed exactly when
/// the form was to be accepted.
async fn post_checked(
    app: &TestApp,
    caller: &Caller,
    prepared: Prepared,
    expect: Expect,
    problems: &mut Vec<String>,
) -> (String, Answer) {
    let watched = |app: &TestApp| prepared.watch.as_deref().map(|sql| value(app, sql));
    let (audit_before, before) = (audit_events(app), watched(app));
    let answer = match &prepared.file {
        Some((name, text)) => {
            let mut parts: Vec<Part> = prepared.fields.iter().map(|(k, v)| Part::Field(k, v)).collect();
            parts.push(Part::File(name, text));
            let (content_type, body) = multipart(&parts);
            let request = app.post(&prepared.url).header("content-type", content_type).body(body);
            send(request, caller.cookie.as_deref()).await
        }
        None => post_form(app, caller.cookie.as_deref(), &prepared.url, &prepared.fields).await,
    };
    let (audit_after, after) = (audit_events(app), watched(app));
    let accepted = expect == Expect::Ok;
    if (audit_after != audit_before) != accepted {
        problems.push(format!("audit events {audit_before} -> {audit_after}"));
    }
    if before.is_some() && (after != before) != accepted {
        problems.push(format!(
            "{} {:?} -> {:?}",
            prepared.watch.as_deref().unwrap_or_default(),
            before.unwrap_or_default(),
            after.unwrap_or_default()
        ));
    }
    (prepared.url, answer)
}

/// A subscription of `user_id`'s, made through the data layer: a webhook (its URL is never
/// called) or an email at once.
fn subscription_of(app: &TestApp, user_id: i64, webhook: bool) -> i64 {
    use db::subscriptions::{Channel, EmailCadence, NewSubscription};
    let new = NewSubscription {
        user_id,
        organisation_code: Some(TRUST.to_owned()),
        kinds: vec![db::outbox::EventKind::AdvisoryPublished],
        channel: if webhook { Channel::Webhook } else { Channel::Email },
        email_cadence: (!webhook).then_some(EmailCadence::Immediate),
        webhook_url: webhook.then(|| "https://integration.example.nhs.uk/catalogue".to_owned()),
        webhook_secret: webhook.then(api::notify::webhook::new_secret),
    };
    db::subscriptions::create(app.db(), &system(), new).unwrap().id
}

/// A working password reset link for user `user_id`: its token.
fn reset_link_for(app: &TestApp, user_id: i64) -> String {
    let now = chrono::Utc::now().naive_utc();
    match db::password_resets::request_for_user(app.db(), &system(), user_id, now).unwrap() {
        db::password_resets::Requested::Issued(issued) => issued.token,
        other => panic!("no link for user {user_id}: {other:?}"),
    }
}

/// A working password reset link of a user made for it (whose page every caller may open).
fn reset_link(app: &TestApp) -> String {
    reset_link_for(app, app.create_user(Role::Officer, Some(TRUST)).id)
}

/// Records of `TRUST` for the requests to name, made through the API and the data layer.
async fn fixture(app: &TestApp, admin: &Caller, officer: &Caller) -> Fixture {
    let (_, token) = app.sign_in(Role::Admin, None).await;
    // Licensed nationally by the test: the shipped seeds license no Windows today.
    app.license_nationally("MS-WIN10-ENT", None).await;
    let product = id(app, "SELECT CAST(id AS TEXT) AS value FROM products WHERE sku = 'MS-WIN10-ENT'");
    let coverage = app.with_connection(|conn| {
        db::coverage::answer(conn, TRUST, db::coverage::Subject::Product(product, None), today()).unwrap()
    });
    let licence = coverage.licences.first().expect("Windows 10 Enterprise is licensed nationally");
    let (entitlement, agreement) = (licence.entitlement_id, licence.agreement_id);
    let response = app
        .post(&format!("/v1/entitlements/{entitlement}/allocations"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"organisation": TRUST, "quantity": 100}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let allocation = response.json::<serde_json::Value>().await.unwrap()["id"].as_i64().unwrap();
    let standard =
        id(app, &format!("SELECT CAST(id AS TEXT) AS value FROM standards WHERE publisher_code = '{TRUST}'"));
    let category = value(app, &format!("SELECT category AS value FROM standards WHERE id = {standard}"));
    let mut fixture = Fixture {
        product,
        entitlement,
        agreement,
        allocation,
        standard,
        category,
        published: published(app, standard).number,
        draft: 0,
        advisory: id(
            app,
            "SELECT CAST(id AS TEXT) AS value FROM advisories WHERE reference = 'CC-2025-0001'",
        ),
        purchase: 0,
        officer: officer.user.as_ref().map(|u| u.id).expect("the officer is signed in"),
        reset_token: reset_link(app),
        webhook: 0,
        approval_line: 0,
        seat_request: 0,
        product_request: 0,
        serial: Cell::new(0),
    };
    fixture.approval_line = app.line_needing_approval("MS-O365-E3").await;
    fixture.seat_request = app.request_seats(fixture.approval_line, TRUST, 1);
    fixture.product_request = app.request_product(TRUST, "Matrix Imaging Viewer");
    fixture.webhook = subscription_of(app, fixture.officer, true);
    let mut purchase = prepare(app, &fixture, Form::Purchase);
    purchase.fields.push(("csrf_token".into(), admin.csrf_token.clone()));
    let recorded = post_form(app, admin.cookie.as_deref(), &purchase.url, &purchase.fields).await;
    assert_eq!(recorded.status, 303, "{}", recorded.body);
    fixture.purchase = id(
        app,
        &format!("SELECT CAST(MAX(id) AS TEXT) AS value FROM purchases WHERE organisation_code = '{TRUST}'"),
    );
    fixture.draft = draft(app, standard).number;
    fixture
}

async fn every_page_denies_by_default(app: TestApp) {
    let callers = callers(&app).await;
    let fixture = fixture(&app, &callers[2], &callers[4]).await;
    let cases = cases(&fixture);

    // Every route the app registers has a row, and every row is a route the app registers.
    let routes: BTreeSet<(&str, &str)> =
        api::web::ROUTES.iter().map(|r| (r.method.as_str(), r.path)).collect();
    let rows: BTreeSet<(&str, &str)> = cases.iter().map(|c| (c.method().as_str(), c.pattern)).collect();
    let missing: Vec<_> = routes.difference(&rows).collect();
    assert!(
        missing.is_empty(),
        "page routes with no row in the matrix (add one saying who may use each): {missing:?}"
    );
    let unknown: Vec<_> = rows.difference(&routes).collect();
    assert!(unknown.is_empty(), "rows of the matrix for routes not in api::web::ROUTES: {unknown:?}");

    let mut failures = Vec::new();
    // Pages first, while the fixture's draft is still the draft; then the forms, which change
    // what they are sent to.
    let (pages, forms): (Vec<&Case>, Vec<&Case>) = cases.iter().partition(|c| matches!(c.send, Send::Get(_)));
    for case in pages.into_iter().chain(forms) {
        for (caller, &expect) in callers.iter().zip(&case.expect) {
            let (url, answer, problems) = match case.send {
                Send::Get(ref url) => {
                    let answer = get_page(&app, caller.cookie.as_deref(), url).await;
                    (url.clone(), answer, Vec::new())
                }
                Send::Post(form) => call_form(&app, &fixture, caller, form, expect).await,
            };
            let method = case.method();
            assert!(matches(case.pattern, &url), "{url} is not a request to {}", case.pattern);
            let mut problems = problems;
            problems.extend(judge(&answer, expect, method, &url));
            if let (Some((marker, shown)), Expect::Ok) = (case.shows, expect) {
                let index = CALLERS.iter().position(|w| *w == caller.who).unwrap_or_default();
                if answer.body.contains(marker) != shown[index] {
                    problems.push(format!("{marker:?} shown: {}, expected {}", !shown[index], shown[index]));
                }
            }
            for problem in problems {
                failures.push(format!("{} {url} as {:?}: {problem}", method.as_str(), caller.who));
            }
        }
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

/// The matrix's app sends password reset email (so that an admin's "Send a password reset email"
/// is accepted), to an SMTP port nothing listens on: what is checked is who may ask, not delivery
/// (`web_password_reset` checks that, with a real server). Each email fails in the background.
mod every_page_denies_by_default {
    fn closed_smtp_port() -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        format!("smtp://127.0.0.1:{port}")
    }

    #[actix_web::test]
    async fn sqlite() {
        let engine = catalogue_tests::Engine::Sqlite;
        if let Some(app) = catalogue_tests::spawn_app_with_mail(engine, &closed_smtp_port()).await {
            super::every_page_denies_by_default(app).await
        }
    }

    #[actix_web::test]
    async fn postgres() {
        let engine = catalogue_tests::Engine::Postgres;
        if let Some(app) = catalogue_tests::spawn_app_with_mail(engine, &closed_smtp_port()).await {
            super::every_page_denies_by_default(app).await
        }
    }
}

#[test]
fn pages_are_registered_only_from_the_route_table() {
    // `configure` builds each resource from `api::web::ROUTES`; a page registered any other way
    // would escape the matrix, so no other registration may appear in the web module.
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../api/src/web");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let source = std::fs::read_to_string(&path).unwrap();
        for needle in ["web::resource(", "web::scope(", ".service(", "web::get()", "web::post()", ".route("] {
            for _ in source.matches(needle) {
                found.push(format!("{}: {needle}", path.file_name().unwrap().to_string_lossy()));
            }
        }
    }
    found.sort();
    let expected = [
        "mod.rs: .route(",
        "mod.rs: .service(",
        "mod.rs: web::get()",
        "mod.rs: web::post()",
        "mod.rs: web::resource(",
    ];
    assert_eq!(found, expected, "pages must be registered through api::web::ROUTES");
}
