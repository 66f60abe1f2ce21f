//! A product's page: its supplier, category and lifecycle, and (for a user with an
//! organisation) the coverage answer for that organisation. The national team is offered
//! "Change" (`product_forms`), and told when the product was added or changed.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use db::coverage::Subject;
use serde::Deserialize;

use crate::auth::extractors::AdminOnly;
use crate::state::AppState;
use crate::web::start::{CoverageView, can_act_for, coverage_view, words};
use crate::web::{Chrome, Session, WebResult, long_date, render, today};

#[derive(Template)]
#[template(path = "product.html")]
struct ProductPage {
    chrome: Chrome,
    id: i64,
    label: String,
    /// The product that replaces this one: its id and label.
    successor: Option<(i64, String)>,
    supplier: String,
    category: String,
    sku: Option<String>,
    support_status: String,
    released_on: Option<String>,
    mainstream_support_ends_on: Option<String>,
    extended_support_ends_on: Option<String>,
    dtac_passed: bool,
    mds2_supplied: bool,
    answer: Option<Box<CoverageView>>,
    /// Whether to offer "Change" (the national team).
    can_change: bool,
    notice: Option<&'static str>,
    form_key: String,
    return_to: String,
    question: String,
}

#[derive(Deserialize)]
pub struct NoticeQuery {
    notice: Option<String>,
}

pub async fn product_page(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<i64>,
    query: web::Query<NoticeQuery>,
) -> WebResult<HttpResponse> {
    let id = id.into_inner();
    let organisation = session.user.organisation().map(str::to_owned);
    let can_claim = organisation.as_deref().is_some_and(|code| can_act_for(&session, code));
    let model = state.read_model();
    let (product, successor, answer) = state
        .run(move |db| {
            db.read(|conn| {
                let product = db::products::get(conn, id, today())?;
                let successor = match product.successor_id {
                    Some(successor) => db::products::with_ids(conn, &[successor], today())?.pop(),
                    None => None,
                };
                let answer = match &organisation {
                    Some(code) => Some(Box::new(coverage_view(
                        conn,
                        model.as_deref(),
                        code,
                        Subject::Product(id, None),
                        today(),
                        can_claim,
                    )?)),
                    None => None,
                };
                Ok((product, successor, answer))
            })
        })
        .await?;
    let label = product.label();
    let page = ProductPage {
        chrome: Chrome::for_session(label.clone(), &session, ""),
        question: label.clone(),
        return_to: format!("/products/{id}"),
        id,
        label,
        successor: successor.map(|successor| (successor.id, successor.label())),
        supplier: product.supplier,
        category: words(&product.category),
        sku: product.sku,
        support_status: words(product.support_status.as_str()),
        released_on: product.released_on.map(long_date),
        mainstream_support_ends_on: product.mainstream_support_ends_on.map(long_date),
        extended_support_ends_on: product.extended_support_ends_on.map(long_date),
        dtac_passed: product.dtac_passed,
        mds2_supplied: product.mds2_supplied,
        answer,
        can_change: session.require::<AdminOnly>().is_ok(),
        notice: match query.notice.as_deref() {
            Some("added") => Some("The product is added."),
            Some("changed") => Some("Your changes to the product are saved."),
            _ => None,
        },
        form_key: uuid::Uuid::new_v4().to_string(),
    };
    render(StatusCode::OK, &page)
}
