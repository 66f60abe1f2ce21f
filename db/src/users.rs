//! Users: who may sign in, with which role and for which organisation. Password hashes are
//! stored here but never leave this module in a type that can be serialised.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;

use crate::audit::{Actor, Audited, Change, now};
use crate::connection::{Database, DbConnection};
use crate::error::{DbError, DbResult};
use crate::page::{Page, PageRequest, Precondition};
use crate::schema::{organisations, password_resets, users};
use crate::text_filter::lower;

crate::vocabulary::text_enum!(Role {
    /// The national team: agreements, entitlements, products, organisations, users, advisories.
    Admin = "admin",
    /// An exemplar trust's author of "buy against" standards.
    Exemplar = "exemplar",
    /// A trust procurement officer.
    Officer = "officer",
    /// Reads everything, including the audit log; writes nothing.
    Auditor = "auditor",
});

impl Role {
    /// Officers and exemplars act for one organisation; admins and auditors for none in particular.
    pub fn needs_organisation(self) -> bool {
        matches!(self, Role::Exemplar | Role::Officer)
    }
}

/// A user as the API shows it: never the password hash.
#[derive(Clone, Debug, Serialize, PartialEq, Queryable, Selectable)]
#[diesel(table_name = users)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct User {
    pub id: i64,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub organisation_code: Option<String>,
    pub disabled: bool,
    #[serde(skip)]
    pub revision: i64,
    #[serde(serialize_with = "crate::time::utc")]
    pub created_at: NaiveDateTime,
    #[serde(serialize_with = "crate::time::utc")]
    pub updated_at: NaiveDateTime,
}

/// What signing in needs: the stored hash and whether the account may be used.
#[derive(Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct Credentials {
    #[diesel(column_name = id)]
    pub user_id: i64,
    pub password_hash: String,
    pub disabled: bool,
    pub token_generation: i64,
}

/// What authorising a request needs, read fresh so that a disabled user stops at once.
#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct Principal {
    #[diesel(column_name = id)]
    pub user_id: i64,
    pub email: String,
    /// What the pages' header calls them.
    pub display_name: String,
    pub role: Role,
    pub organisation_code: Option<String>,
    pub disabled: bool,
    pub token_generation: i64,
}

/// A user to make; `create` normalises the email and trims the name before inserting it.
#[derive(Insertable)]
#[diesel(table_name = users)]
pub struct NewUser {
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub organisation_code: Option<String>,
    pub password_hash: String,
}

/// What an update changes; `None` leaves a field as it is.
#[derive(Default, AsChangeset)]
#[diesel(table_name = users)]
pub struct UserChanges {
    pub display_name: Option<String>,
    pub role: Option<Role>,
    /// `Some(None)` removes the organisation.
    pub organisation_code: Option<Option<String>>,
    pub disabled: Option<bool>,
}

pub fn normalise_email(email: &str) -> String {
    email.trim().to_lowercase()
}

fn validate_email(email: &str) -> DbResult<()> {
    if is_email_address(email) {
        Ok(())
    } else {
        Err(DbError::Invalid("email is not a valid address".into()))
    }
}

/// Whether a (normalised) email address has the shape the service accepts: something, an @, and
/// a domain with a dot inside it; no spaces; at most 254 characters.
pub fn is_email_address(email: &str) -> bool {
    email.chars().count() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
        })
        && !email.chars().any(char::is_whitespace)
}

/// Checks that a role and organisation fit together and that the organisation can take them.
fn validate_assignment(conn: &mut DbConnection, role: Role, organisation: Option<&str>) -> DbResult<()> {
    match (role.needs_organisation(), organisation) {
        (true, None) => {
            return Err(DbError::Invalid(format!(
                "a user with role {} needs an organisation",
                role.as_str()
            )));
        }
        (_, None) => return Ok(()),
        (_, Some(_)) => {}
    }
    let code = organisation.unwrap_or_default();
    let found: Option<(bool, Option<chrono::NaiveDate>)> = organisations::table
        .find(code)
        .select((organisations::exemplar, organisations::closed_on))
        .first(conn)
        .optional()?;
    let Some((exemplar, closed_on)) = found else {
        return Err(DbError::Invalid(format!("organisation {code} does not exist")));
    };
    if closed_on.is_some() {
        return Err(DbError::Invalid(format!("organisation {code} is closed")));
    }
    if role == Role::Exemplar && !exemplar {
        return Err(DbError::Invalid(format!("organisation {code} is not an exemplar")));
    }
    Ok(())
}

pub fn create(db: &Database, actor: &Actor, new: NewUser) -> DbResult<User> {
    let email = normalise_email(&new.email);
    validate_email(&email)?;
    if new.display_name.trim().is_empty() {
        return Err(DbError::Invalid("display_name must not be empty".into()));
    }
    let new = NewUser { display_name: new.display_name.trim().to_owned(), email, ..new };
    db.write(actor, |conn| {
        validate_assignment(conn, new.role, new.organisation_code.as_deref())?;
        let taken: i64 = users::table.filter(users::email.eq(&new.email)).count().get_result(conn)?;
        if taken > 0 {
            return Err(DbError::Conflict("a user with this email already exists".into()));
        }
        let stamp = now();
        let id: i64 = diesel::insert_into(users::table)
            .values((&new, users::created_at.eq(stamp), users::updated_at.eq(stamp)))
            .returning(users::id)
            .get_result(conn)?;
        let user = get(conn, id)?;
        let change = Change::new("user.create", "user", user.id)
            .organisation(user.organisation_code.as_deref())
            .after(&user);
        let mut changes = vec![change];
        if let (Role::Officer, Some(code)) = (user.role, &user.organisation_code) {
            changes.extend(crate::subscriptions::add_officer_defaults(conn, user.id, code)?);
        }
        Ok(Audited::many(user, changes))
    })
}

pub fn get(conn: &mut DbConnection, id: i64) -> DbResult<User> {
    users::table.find(id).select(User::as_select()).first(conn).optional()?.ok_or(DbError::NotFound("user"))
}

pub struct UserFilter {
    pub role: Option<Role>,
    pub organisation_code: Option<String>,
    pub include_disabled: bool,
    pub order: UserOrder,
}

/// The order of a list of users. Each pages by its own key (with the id after a name, as names
/// repeat), so a page never skips or repeats an account, whatever the order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UserOrder {
    /// In the order they were added (the API's order): the cursor is the last id.
    #[default]
    Added,
    /// By name without regard to case, then id: the cursor is `ID:name` (an id holds no `:`).
    Name,
    /// By email (stored in lower case, and unique): the cursor is the last email.
    Email,
}

impl UserOrder {
    pub fn as_str(self) -> &'static str {
        match self {
            UserOrder::Added => "added",
            UserOrder::Name => "name",
            UserOrder::Email => "email",
        }
    }

    pub fn parse(text: &str) -> Option<UserOrder> {
        [UserOrder::Added, UserOrder::Name, UserOrder::Email].into_iter().find(|order| order.as_str() == text)
    }

    /// The cursor naming `user` as the last of a page.
    fn cursor(self, user: &User) -> String {
        match self {
            UserOrder::Added => user.id.to_string(),
            UserOrder::Name => format!("{}:{}", user.id, user.display_name),
            UserOrder::Email => user.email.clone(),
        }
    }
}

pub fn list(conn: &mut DbConnection, filter: &UserFilter, page: &PageRequest) -> DbResult<Page<User>> {
    let mut query = users::table.select(User::as_select()).into_boxed();
    if let Some(role) = filter.role {
        query = query.filter(users::role.eq(role));
    }
    if let Some(code) = &filter.organisation_code {
        query = query.filter(users::organisation_code.eq(code.clone()));
    }
    if !filter.include_disabled {
        query = query.filter(users::disabled.eq(false));
    }
    query = match filter.order {
        UserOrder::Added => {
            if let Some(after) = page.after_id()? {
                query = query.filter(users::id.gt(after));
            }
            query.order(users::id)
        }
        UserOrder::Name => {
            if let Some(after) = &page.cursor {
                let (id, name) = after.split_once(':').ok_or(DbError::InvalidCursor)?;
                let id: i64 = id.parse().map_err(|_| DbError::InvalidCursor)?;
                // Both sides lowered by the database, as it orders (see organisations::list).
                query = query.filter(
                    lower(users::display_name)
                        .gt(lower(name.to_owned()))
                        .or(lower(users::display_name).eq(lower(name.to_owned())).and(users::id.gt(id))),
                );
            }
            query.order((lower(users::display_name), users::id))
        }
        UserOrder::Email => {
            if let Some(after) = &page.cursor {
                query = query.filter(users::email.gt(after.clone()));
            }
            query.order(users::email)
        }
    };
    let limit = page.limit();
    let rows = query.limit(limit + 1).load(conn)?;
    Ok(Page::from_rows(rows, limit, |u| filter.order.cursor(u)))
}

pub fn credentials(conn: &mut DbConnection, email: &str) -> DbResult<Option<Credentials>> {
    Ok(users::table
        .filter(users::email.eq(normalise_email(email)))
        .select(Credentials::as_select())
        .first(conn)
        .optional()?)
}

pub fn principal(conn: &mut DbConnection, user_id: i64) -> DbResult<Option<Principal>> {
    Ok(users::table.find(user_id).select(Principal::as_select()).first(conn).optional()?)
}

pub fn password_hash(conn: &mut DbConnection, user_id: i64) -> DbResult<String> {
    users::table
        .find(user_id)
        .select(users::password_hash)
        .first(conn)
        .optional()?
        .ok_or(DbError::NotFound("user"))
}

pub fn update(
    db: &Database,
    actor: &Actor,
    id: i64,
    changes: UserChanges,
    precondition: Precondition,
) -> DbResult<User> {
    let changes =
        UserChanges { display_name: changes.display_name.map(|name| name.trim().to_owned()), ..changes };
    db.write(actor, |conn| {
        let before = get(conn, id)?;
        precondition.check(before.revision)?;
        let role = changes.role.unwrap_or(before.role);
        let organisation =
            changes.organisation_code.clone().unwrap_or_else(|| before.organisation_code.clone());
        let disabled = changes.disabled.unwrap_or(before.disabled);
        let display_name = changes.display_name.clone().unwrap_or_else(|| before.display_name.clone());
        if display_name.trim().is_empty() {
            return Err(DbError::Invalid("display_name must not be empty".into()));
        }
        if role != before.role || organisation != before.organisation_code {
            validate_assignment(conn, role, organisation.as_deref())?;
        }
        let stays_admin = role == Role::Admin && !disabled;
        if before.role == Role::Admin && !before.disabled && !stays_admin {
            if actor.user_id == Some(id) {
                return Err(DbError::Conflict(
                    "you cannot disable your own account or give up your own admin role; ask another admin".into(),
                ));
            }
            let other_admins: i64 = users::table
                .filter(users::role.eq(Role::Admin))
                .filter(users::disabled.eq(false))
                .filter(users::id.ne(id))
                .count()
                .get_result(conn)?;
            if other_admins == 0 {
                return Err(DbError::Conflict(
                    "this is the last enabled admin: make another admin first, or nobody could run the service".into(),
                ));
            }
        }
        // Any change to what the user may do ends every token they hold.
        let revoke =
            role != before.role || organisation != before.organisation_code || disabled != before.disabled;
        diesel::update(users::table.find(id))
            .set((
                &changes,
                users::token_generation.eq(users::token_generation + if revoke { 1 } else { 0 }),
                users::revision.eq(users::revision + 1),
                users::updated_at.eq(now()),
            ))
            .execute(conn)?;
        let after = get(conn, id)?;
        let change = Change::new("user.update", "user", id)
            .organisation(after.organisation_code.as_deref())
            .before(&before)
            .after(&after);
        Ok(Audited::one(after, change))
    })
}

/// Replaces the password hash and ends every token issued before.
pub fn set_password(db: &Database, actor: &Actor, id: i64, password_hash: &str) -> DbResult<()> {
    db.write(actor, |conn| {
        store_password(conn, id, password_hash)?;
        Ok(Audited::one((), Change::new("user.password_change", "user", id)))
    })
}

/// Replaces user `id`'s password hash, ending every token issued before (every web session and
/// bearer token) and every password reset link: what setting a password does, however it is set
/// (`set_password`, `password_resets::reset_password`).
pub(crate) fn store_password(conn: &mut DbConnection, id: i64, password_hash: &str) -> DbResult<()> {
    let updated = diesel::update(users::table.find(id))
        .set((
            users::password_hash.eq(password_hash),
            users::token_generation.eq(users::token_generation + 1),
            users::revision.eq(users::revision + 1),
            users::updated_at.eq(now()),
        ))
        .execute(conn)?;
    if updated == 0 {
        return Err(DbError::NotFound("user"));
    }
    diesel::delete(password_resets::table.filter(password_resets::user_id.eq(id))).execute(conn)?;
    Ok(())
}

/// Ends every token the user holds (signing out of the web pages ends the session's token, and with
/// it every other session and bearer token of the account): the next request with any of them is
/// refused, on every instance, as after a change of password.
pub fn end_sessions(db: &Database, actor: &Actor, id: i64) -> DbResult<()> {
    db.write(actor, |conn| {
        let updated = diesel::update(users::table.find(id))
            .set(users::token_generation.eq(users::token_generation + 1))
            .execute(conn)?;
        if updated == 0 {
            return Err(DbError::NotFound("user"));
        }
        Ok(Audited::one((), Change::new("user.sign_out", "user", id)))
    })
}

pub fn find_id_by_email(conn: &mut DbConnection, email: &str) -> DbResult<i64> {
    users::table
        .filter(users::email.eq(normalise_email(email)))
        .select(users::id)
        .first(conn)
        .optional()?
        .ok_or(DbError::NotFound("user"))
}

pub fn count(conn: &mut DbConnection) -> DbResult<i64> {
    Ok(users::table.count().get_result(conn)?)
}

/// Whether any admin exists, enabled or not.
pub fn admin_exists(conn: &mut DbConnection) -> DbResult<bool> {
    let admins: i64 = users::table.filter(users::role.eq(Role::Admin)).count().get_result(conn)?;
    Ok(admins > 0)
}

/// Every user's authorisation facts (for the read model).
pub fn all_principals(conn: &mut DbConnection) -> DbResult<Vec<Principal>> {
    Ok(users::table.select(Principal::as_select()).load(conn)?)
}
