//! The users list and each account's page, for the national team and auditors (the API's
//! `AdminOrAuditor` rule); adding an account, and disabling or enabling one, for the national
//! team only (`AdminOnly`), through the same data-layer calls and password rule as the API.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use db::users::{Role, User, UserChanges, UserFilter, UserOrder};
use db::{PageRequest, Precondition};
use serde::Deserialize;

use crate::auth::accounts::{self, AccountRequest};
use crate::auth::extractors::{AdminOnly, AdminOrAuditor};
use crate::auth::password;
use crate::auth::password_reset::{self, AdminSent};
use crate::spreadsheet;
use crate::state::AppState;
use crate::web::{
    Choice, Chrome, FieldError, NoFields, Refusal, Session, SortHeading, Submitted, WebError, WebResult,
    capitalised, error_for, long_date, optional_text, query_value, render, role_label, see_other,
};

pub struct UserRow {
    pub id: i64,
    pub email: String,
    pub display_name: String,
    pub role: &'static str,
    pub organisation_code: Option<String>,
    pub disabled: bool,
}

impl From<User> for UserRow {
    fn from(user: User) -> UserRow {
        UserRow {
            id: user.id,
            email: user.email,
            display_name: user.display_name,
            role: role_label(user.role),
            organisation_code: user.organisation_code,
            disabled: user.disabled,
        }
    }
}

/// Accounts on one page of the list.
const PAGE_SIZE: i64 = 50;

#[derive(Deserialize)]
pub struct UsersQuery {
    /// A role, or empty for every one.
    #[serde(default)]
    role: String,
    /// An organisation's ODS code.
    #[serde(default)]
    organisation: String,
    /// `active` to leave out disabled accounts; anything else lists them too.
    #[serde(default)]
    status: String,
    /// `name` or `email`; empty for the order they were added.
    #[serde(default)]
    sort: String,
    cursor: Option<String>,
    /// `csv`: the whole selection as a file (the page's "Download CSV").
    format: Option<String>,
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    chrome: Chrome,
    roles: Vec<Choice>,
    organisation: String,
    active_only: bool,
    /// The order shown, to keep when the filters change; empty for the order they were added.
    sort: &'static str,
    /// The headings of the name and email columns.
    sort_headings: [SortHeading; 2],
    /// How the rows are ordered, in words (the table's caption).
    order_words: &'static str,
    errors: Vec<FieldError>,
    users: Vec<UserRow>,
    first_page: Option<String>,
    next_page: Option<String>,
    /// Every account the filters select, as one CSV file.
    download: String,
    /// Whether the viewer may add accounts (admins; auditors only read).
    can_add: bool,
}

impl UsersPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        error_for(&self.errors, field)
    }
}

/// Every account, filtered by role, organisation and whether it is disabled, 50 a page in the
/// order they were added or by name or email, or the whole selection as one CSV file.
pub async fn users_page(
    state: web::Data<AppState>,
    session: Session,
    query: web::Query<UsersQuery>,
) -> WebResult<HttpResponse> {
    let viewer = session.require::<AdminOrAuditor>()?;
    let can_add = viewer.role() == Role::Admin;
    let query = query.into_inner();
    let role_typed = query.role.trim();
    let mut errors = Vec::new();
    let role = match role_typed {
        "" => None,
        typed => Role::parse(typed).or_else(|| {
            errors.push(FieldError::new("role", "Choose a role from the list"));
            None
        }),
    };
    let order = match query.sort.trim() {
        "" => UserOrder::Added,
        sort => UserOrder::parse(sort)
            .ok_or_else(|| WebError::BadRequest("The list is sorted by name, by email or as added".into()))?,
    };
    let organisation = query.organisation.trim().to_uppercase();
    let active_only = query.status == "active";
    let filter = UserFilter {
        role,
        organisation_code: (!organisation.is_empty()).then(|| organisation.clone()),
        include_disabled: !active_only,
        order,
    };
    let address_in = |order: UserOrder| {
        format!(
            "/users?role={}&organisation={}&status={}&sort={}",
            query_value(role_typed),
            query_value(&organisation),
            if active_only { "active" } else { "all" },
            if order == UserOrder::Added { "" } else { order.as_str() },
        )
    };
    let address = address_in(order);
    let sort_heading = |label, by: UserOrder| SortHeading::ascending(label, address_in(by), by == order);
    let sort_headings = [sort_heading("Name", UserOrder::Name), sort_heading("Email", UserOrder::Email)];
    if query.format.as_deref() == Some("csv") && errors.is_empty() {
        let every = PageRequest::default();
        return Ok(spreadsheet::list(&state, true, "users", every, move |conn, page| {
            db::users::list(conn, &filter, page)
        })
        .await?);
    }
    let (users, next_cursor) = match errors.is_empty() {
        true => {
            let page = PageRequest { limit: Some(PAGE_SIZE), cursor: query.cursor.clone() };
            let found = state.read(move |conn| db::users::list(conn, &filter, &page)).await?;
            (found.items.into_iter().map(UserRow::from).collect(), found.next_cursor)
        }
        false => (Vec::new(), None),
    };
    let roles = std::iter::once(("", "Any role"))
        .chain(ROLE_CHOICES.iter().map(|(role, _)| (role.as_str(), role_label(*role))))
        .map(|(value, label)| Choice::new(value, label, role_typed))
        .collect();
    let (status, title) = match errors.is_empty() {
        true => (StatusCode::OK, "Users"),
        false => (StatusCode::UNPROCESSABLE_ENTITY, "Error: Users"),
    };
    let page = UsersPage {
        chrome: Chrome::for_session(title, &session, "/users"),
        roles,
        organisation,
        active_only,
        sort: if order == UserOrder::Added { "" } else { order.as_str() },
        sort_headings,
        order_words: match order {
            UserOrder::Added => "in the order they were added",
            UserOrder::Name => "by name",
            UserOrder::Email => "by email",
        },
        errors,
        users,
        first_page: query.cursor.is_some().then(|| address.clone()),
        next_page: next_cursor.map(|cursor| format!("{address}&cursor={}", query_value(&cursor))),
        download: format!("{address}&format=csv"),
        can_add,
    };
    render(status, &page)
}

/// The roles an admin may give, in the order the form offers them, with what each may do.
const ROLE_CHOICES: [(Role, &str); 4] = [
    (Role::Officer, "Claims national seats and records local purchases for one trust"),
    (Role::Exemplar, "Writes and publishes the buy-against standards of one exemplar trust"),
    (Role::Auditor, "Reads everything, the audit log included, and changes nothing"),
    (Role::Admin, "The national team: agreements, products, organisations, users and advisories"),
];

pub struct RoleChoice {
    pub value: &'static str,
    pub label: &'static str,
    pub hint: &'static str,
}

/// What the new-user form sends. The password is never shown back.
#[derive(Deserialize, Default)]
pub struct NewUserForm {
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    organisation_code: String,
    #[serde(default)]
    password: String,
}

#[derive(Template)]
#[template(path = "new_user.html")]
struct NewUserPage {
    chrome: Chrome,
    form: NewUserForm,
    roles: Vec<RoleChoice>,
    errors: Vec<FieldError>,
}

impl NewUserPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        error_for(&self.errors, field)
    }

    fn password_hint(&self) -> String {
        crate::web::password_hint("Give it to the person by another route than email.")
    }
}

/// The form for a new account (admins only).
pub async fn new_user_page(session: Session) -> WebResult<HttpResponse> {
    session.require::<AdminOnly>()?;
    render_new_user(&session, NewUserForm::default(), Vec::new())
}

fn render_new_user(session: &Session, form: NewUserForm, errors: Vec<FieldError>) -> WebResult<HttpResponse> {
    let (title, status) = if errors.is_empty() {
        ("Add a user", StatusCode::OK)
    } else {
        ("Error: Add a user", StatusCode::UNPROCESSABLE_ENTITY)
    };
    let roles = ROLE_CHOICES
        .iter()
        .map(|(role, hint)| RoleChoice { value: role.as_str(), label: role_label(*role), hint })
        .collect();
    let form = NewUserForm { password: String::new(), ..form };
    render(
        status,
        &NewUserPage { chrome: Chrome::for_session(title, session, "/users"), form, roles, errors },
    )
}

/// What is wrong with the form, every problem at once, each against its field; and the role
/// chosen when there is one.
fn new_user_problems(form: &NewUserForm) -> (Vec<FieldError>, Option<Role>) {
    let mut errors = Vec::new();
    if form.display_name.trim().is_empty() {
        errors.push(FieldError::new("display_name", "Enter the person's full name"));
    }
    if !db::users::is_email_address(&db::users::normalise_email(&form.email)) {
        errors.push(FieldError::new(
            "email",
            "Enter an email address in the correct format, like name@nhs.net",
        ));
    }
    let role = Role::parse(&form.role);
    match role {
        None => errors.push(FieldError::new("role", "Select what the person does")),
        Some(role) if role.needs_organisation() && form.organisation_code.trim().is_empty() => {
            errors.push(FieldError::new(
                "organisation_code",
                "Enter the ODS code of the trust a procurement officer or exemplar author acts for, like RR8",
            ))
        }
        Some(_) => {}
    }
    if let Some(weakness) = password::weakness(&form.password, &form.email) {
        errors.push(FieldError::new("password", &capitalised(&weakness)));
    }
    (errors, role)
}

/// Creates the account through `auth::accounts::create`, as `POST /v1/users` does; the user's
/// page on success, else the form again with every problem.
pub async fn create_user(
    state: web::Data<AppState>,
    submitted: Submitted<NewUserForm>,
) -> WebResult<HttpResponse> {
    let (session, form) = (submitted.session, submitted.form);
    let admin = session.require::<AdminOnly>()?;
    let (errors, role) = new_user_problems(&form);
    let Some(role) = role.filter(|_| errors.is_empty()) else {
        return render_new_user(&session, form, errors);
    };
    let request = AccountRequest {
        email: form.email.clone(),
        display_name: form.display_name.clone(),
        role,
        organisation_code: optional_text(&form.organisation_code),
        password: form.password.clone(),
    };
    match accounts::create(&state, admin.actor(), request).await {
        Ok(user) => Ok(see_other(&format!("/users/{}?notice=created", user.id))),
        Err(error) => {
            // The form's own checks cover the name and the email's shape, so what the data layer
            // still refuses is a taken email (a conflict) or an organisation that cannot take
            // the role (missing, closed, or not an exemplar).
            let refused = Refusal::of(error)?;
            let field = if refused.status == StatusCode::CONFLICT { "email" } else { "organisation_code" };
            render_new_user(&session, form, vec![FieldError::new(field, &capitalised(&refused.detail))])
        }
    }
}

#[derive(Deserialize)]
pub struct UserQuery {
    notice: Option<String>,
}

#[derive(Template)]
#[template(path = "user.html")]
struct UserPage {
    chrome: Chrome,
    user: UserRow,
    created_on: String,
    /// Whether the signed-in admin may disable or enable this account (not their own).
    can_change: bool,
    /// Whether the viewer is an admin, who may send the person a password reset email.
    can_send_reset: bool,
    /// Whether the service can send reset emails at all.
    reset_available: bool,
    notice: Option<String>,
}

/// One account, and for an admin, the buttons that disable or enable it.
pub async fn user_page(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<i64>,
    query: web::Query<UserQuery>,
) -> WebResult<HttpResponse> {
    let viewer = session.require::<AdminOrAuditor>()?;
    let id = id.into_inner();
    let user = state.read(move |conn| db::users::get(conn, id)).await?;
    let notice = match query.notice.as_deref() {
        Some("created") => {
            Some("Account created. Give the person their password by another route than email.".to_owned())
        }
        Some("disabled") => {
            Some("Account disabled: it is signed out everywhere and cannot sign in.".to_owned())
        }
        Some("enabled") => Some("Account enabled: the person can sign in again.".to_owned()),
        Some("reset_sent") => Some(format!(
            "A password reset email has been sent to {}. Its link works for {} minutes.",
            user.email,
            password_reset::lifetime_minutes()
        )),
        Some("reset_already_sent") => Some(format!(
            "A password reset email was sent to {} less than {} minutes ago, so no new one was sent.",
            user.email,
            db::password_resets::RESEND_AFTER.num_minutes()
        )),
        _ => None,
    };
    let page = UserPage {
        chrome: Chrome::for_session(user.display_name.clone(), &session, "/users"),
        created_on: long_date(user.created_at.date()),
        can_change: viewer.role() == Role::Admin && viewer.id() != user.id,
        can_send_reset: viewer.role() == Role::Admin,
        reset_available: state.password_reset_mail.is_some(),
        notice,
        user: UserRow::from(user),
    };
    render(StatusCode::OK, &page)
}

#[derive(Template)]
#[template(path = "disable_user.html")]
struct DisableUserPage {
    chrome: Chrome,
    id: i64,
    display_name: String,
    email: String,
}

/// Asks before an account is disabled: disabling signs the person out everywhere.
pub async fn disable_page(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<i64>,
) -> WebResult<HttpResponse> {
    let admin = session.require::<AdminOnly>()?;
    let id = id.into_inner();
    if id == admin.id() {
        // As db::users::update refuses it; the account page offers no button for it either.
        return Err(WebError::Forbidden("You cannot disable your own account: ask another admin".into()));
    }
    let user = state.read(move |conn| db::users::get(conn, id)).await?;
    let page = DisableUserPage {
        chrome: Chrome::for_session(format!("Disable {}", user.display_name), &session, "/users"),
        id: user.id,
        display_name: user.display_name,
        email: user.email,
    };
    render(StatusCode::OK, &page)
}

pub async fn disable(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    submitted: Submitted<NoFields>,
) -> WebResult<HttpResponse> {
    set_disabled(state, id.into_inner(), submitted.session, true).await
}

pub async fn enable(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    submitted: Submitted<NoFields>,
) -> WebResult<HttpResponse> {
    set_disabled(state, id.into_inner(), submitted.session, false).await
}

/// Disables or enables an account through `db::users::update`, as `PATCH /v1/users/{id}` does
/// (which ends every token the person holds, and refuses an admin's own account).
async fn set_disabled(
    state: web::Data<AppState>,
    id: i64,
    session: Session,
    disabled: bool,
) -> WebResult<HttpResponse> {
    let admin = session.require::<AdminOnly>()?;
    let actor = admin.actor();
    let changes = UserChanges { disabled: Some(disabled), ..Default::default() };
    state.run(move |db| db::users::update(db, &actor, id, changes, Precondition::Exists)).await?;
    let notice = if disabled { "disabled" } else { "enabled" };
    Ok(see_other(&format!("/users/{id}?notice={notice}")))
}

/// "Send a password reset email": the same email as "Forgotten your password?" sends, audited
/// as the admin (`auth::password_reset::send_for_user`). A disabled account gets none.
pub async fn send_password_reset(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    submitted: Submitted<NoFields>,
) -> WebResult<HttpResponse> {
    let admin = submitted.session.require::<AdminOnly>()?;
    let id = id.into_inner();
    let notice = match password_reset::send_for_user(&state, admin.actor(), id).await? {
        AdminSent::Sent => "reset_sent",
        AdminSent::AlreadySent => "reset_already_sent",
        AdminSent::Disabled => {
            return Err(WebError::BadRequest(
                "This account is disabled: enable it before sending a password reset email".into(),
            ));
        }
    };
    Ok(see_other(&format!("/users/{id}?notice={notice}")))
}
