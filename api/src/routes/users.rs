use actix_web::{HttpRequest, HttpResponse, get, patch, post, web};
use db::users::{Role, User, UserChanges, UserFilter, UserOrder};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::auth::Authorised;
use crate::auth::accounts::{self, AccountRequest};
use crate::auth::extractors::{AdminOnly, AdminOrAuditor};
use crate::body::Json;
use crate::error::ApiResult;
use crate::openapi::{PreconditionErrors, ReadErrors, WriteErrors};
use crate::preconditions::{IfMatch, double_option, page_request, with_etag};
use crate::spreadsheet;
use crate::state::AppState;
use crate::views::{UserPage, list_query};

list_query! {
    pub struct UserQuery {
        pub role: Option<Role>,
        /// An ODS code.
        pub organisation: Option<String>,
        /// Disabled users are left out unless this is true.
        #[serde(default)]
        pub include_disabled: bool,
        ..page,
        /// `csv` for every row from the cursor on as one CSV file (or send `Accept: text/csv`).
        pub format: Option<crate::spreadsheet::Format>,
    }
}

/// List users, ordered by id.
#[utoipa::path(
    tag = "users",
    operation_id = "list_users",
    security(("bearer" = [])),
    params(UserQuery),
    responses((status = 200, description = "A page of users, or all of them as CSV", content(
            (UserPage = "application/json"),
            (String = "text/csv"),
        )), ReadErrors)
)]
#[get("/users")]
pub async fn list_users(
    state: web::Data<AppState>,
    _user: Authorised<AdminOrAuditor>,
    query: web::Query<UserQuery>,
    request: HttpRequest,
) -> ApiResult<HttpResponse> {
    let query = query.into_inner();
    let csv = spreadsheet::wants_csv(&request, query.format);
    let page = page_request(query.limit, query.cursor)?;
    let filter = UserFilter {
        role: query.role,
        organisation_code: query.organisation.map(|c| c.to_uppercase()),
        include_disabled: query.include_disabled,
        order: UserOrder::Added,
    };
    spreadsheet::list(&state, csv, "users", page, move |conn, page| db::users::list(conn, &filter, page))
        .await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    #[schema(
        max_length = 254,
        pattern = "^[^@\\s\\u0000-\\u001F\\u007F-\\u009F]+@[^@\\s\\u0000-\\u001F\\u007F-\\u009F.][^@\\s\\u0000-\\u001F\\u007F-\\u009F]*\\.[^@\\s\\u0000-\\u001F\\u007F-\\u009F]*[^@\\s\\u0000-\\u001F\\u007F-\\u009F.]$"
    )]
    pub email: String,
    #[schema(min_length = 1)]
    #[schema(pattern = "[^\\s\\u0085]")]
    pub display_name: String,
    pub role: Role,
    /// Required for officers and exemplars (an exemplar organisation for the latter).
    #[schema(pattern = "^[A-Za-z0-9]{3,10}$")]
    pub organisation_code: Option<String>,
    /// 12 to 256 characters; long passphrases are welcome and there are no composition rules.
    /// Refused with 422 (NCSC password guidance, OWASP ASVS 2.1): common and breached passwords,
    /// dictionary words and names, keyboard patterns, repeats and sequences (`aaaaaaaaaaaa`,
    /// `123456789012`, `Password1234`), and passwords containing the user's email, its name part
    /// or the service's name.
    #[schema(format = Password)]
    #[schema(min_length = 12, max_length = 256)]
    pub password: String,
}

/// Create a user.
#[utoipa::path(
    tag = "users",
    operation_id = "create_user",
    security(("bearer" = [])),
    request_body = CreateUser,
    responses(
        (status = 201, body = User, headers(("ETag" = String, description = "The user's version"))),
        WriteErrors
    )
)]
#[post("/users")]
pub async fn create_user(
    state: web::Data<AppState>,
    admin: Authorised<AdminOnly>,
    body: Json<CreateUser>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    let request = AccountRequest {
        email: body.email,
        display_name: body.display_name,
        role: body.role,
        organisation_code: body.organisation_code,
        password: body.password,
    };
    let user = accounts::create(&state, admin.actor(), request).await?;
    Ok(with_etag(HttpResponse::Created(), user.revision, &user))
}

/// One user.
#[utoipa::path(
    tag = "users",
    operation_id = "get_user",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "User id")),
    responses((status = 200, body = User, headers(("ETag" = String, description = "The user's version"))), ReadErrors)
)]
#[get("/users/{id}")]
pub async fn get_user(
    state: web::Data<AppState>,
    _user: Authorised<AdminOrAuditor>,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let user = state.read(move |conn| db::users::get(conn, id)).await?;
    Ok(with_etag(HttpResponse::Ok(), user.revision, &user))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    #[schema(min_length = 1)]
    #[schema(pattern = "[^\\s\\u0085]")]
    pub display_name: Option<String>,
    pub role: Option<Role>,
    /// An ODS code, or null to remove it (admins and auditors only).
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, pattern = "^[A-Za-z0-9]{3,10}$")]
    pub organisation_code: Option<Option<String>>,
    pub disabled: Option<bool>,
}

/// Change a user's role, organisation, name or disabled flag. A change of role, organisation or
/// disabled flag ends every token the user holds.
#[utoipa::path(
    tag = "users",
    operation_id = "update_user",
    security(("bearer" = [])),
    params(
        ("id" = i64, Path, description = "User id"),
        ("If-Match" = String, Header, description = "The ETag from GET (a quoted entity tag such as \"3\"; several may be listed), or *; anything else is refused with 400", pattern = r#"^\s*(\*|(W/)?"[^"]*"(\s*,\s*(W/)?"[^"]*")*)\s*$"#),
    ),
    request_body = UpdateUser,
    responses(
        (status = 200, body = User, headers(("ETag" = String, description = "The user's new version"))),
        WriteErrors,
        PreconditionErrors
    )
)]
#[patch("/users/{id}")]
pub async fn update_user(
    state: web::Data<AppState>,
    admin: Authorised<AdminOnly>,
    id: web::Path<i64>,
    if_match: IfMatch,
    body: Json<UpdateUser>,
) -> ApiResult<HttpResponse> {
    let precondition = if_match.precondition()?;
    let body = body.into_inner();
    let changes = UserChanges {
        display_name: body.display_name,
        role: body.role,
        organisation_code: body.organisation_code.map(|c| c.map(|c| c.to_uppercase())),
        disabled: body.disabled,
    };
    let (id, actor) = (id.into_inner(), admin.actor());
    let user = state.run(move |db| db::users::update(db, &actor, id, changes, precondition)).await?;
    Ok(with_etag(HttpResponse::Ok(), user.revision, &user))
}
