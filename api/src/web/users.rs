//! The users list, for the national team and auditors (the API's `AdminOrAuditor` rule).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use db::PageRequest;
use db::users::UserFilter;

use crate::auth::extractors::AdminOrAuditor;
use crate::spreadsheet::{self, PageDownload};
use crate::state::AppState;
use crate::web::{Chrome, Session, WebResult, render, role_label};

pub struct UserRow {
    pub email: String,
    pub display_name: String,
    pub role: &'static str,
    pub organisation_code: Option<String>,
    pub disabled: bool,
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    chrome: Chrome,
    users: Vec<UserRow>,
}

pub async fn users_page(
    state: web::Data<AppState>,
    session: Session,
    download: web::Query<PageDownload>,
) -> WebResult<HttpResponse> {
    session.require::<AdminOrAuditor>()?;
    let filter = UserFilter { role: None, organisation_code: None, include_disabled: true };
    if download.wanted() {
        let every = PageRequest::default();
        return Ok(spreadsheet::list(&state, true, "users", every, move |conn, page| {
            db::users::list(conn, &filter, page)
        })
        .await?);
    }
    let page = PageRequest { limit: Some(db::page::MAX_LIMIT), cursor: None };
    let users = state.run(move |db| db.read(|conn| db::users::list(conn, &filter, &page))).await?;
    let page = UsersPage {
        chrome: Chrome::for_session("Users", &session, "/users"),
        users: users
            .items
            .into_iter()
            .map(|u| UserRow {
                email: u.email,
                display_name: u.display_name,
                role: role_label(u.role),
                organisation_code: u.organisation_code,
                disabled: u.disabled,
            })
            .collect(),
    };
    render(StatusCode::OK, &page)
}
