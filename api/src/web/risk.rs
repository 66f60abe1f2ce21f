//! Recording a risk acceptance for unsupported software an organisation cannot yet replace
//! (typically a medical device), with its compensating controls and an expiry, through
//! `db::risk::accept` and the API's rules (the `AdminOrOfficer` role set, acting for one's own
//! organisation). The organisation's page lists its acceptances.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use db::risk::NewRiskAcceptance;
use serde::Deserialize;

use crate::auth::extractors::AdminOrOfficer;
use crate::state::AppState;
use crate::web::start::ChoiceView;
use crate::web::{Chrome, Refusal, Session, Submitted, WebResult, optional_text, render, see_other, today};

/// Software whose support ends within this many months is offered too, not only unsupported.
const WITHIN_MONTHS: u32 = 12;

#[derive(Template)]
#[template(path = "risk_acceptance.html")]
struct AcceptancePage {
    chrome: Chrome,
    code: String,
    name: String,
    products: Vec<ChoiceView>,
    error: Option<(String, &'static str)>,
    values: RiskForm,
    example_expiry: String,
}

impl AcceptancePage {
    fn selected(&self, product_id: &i64) -> bool {
        self.values.product_id.trim() == product_id.to_string()
    }
}

#[derive(Default, Deserialize)]
pub struct RiskForm {
    #[serde(default)]
    product_id: String,
    #[serde(default)]
    compensating_controls: String,
    #[serde(default)]
    mds2_reference: String,
    #[serde(default)]
    expires_on: String,
}

#[derive(Deserialize)]
pub struct NewQuery {
    product: Option<i64>,
}

/// The products to choose from: what the organisation holds that is unsupported today or loses
/// support within a year, by the national report's rules, with or without a risk acceptance.
async fn render_form(
    state: &AppState,
    session: &Session,
    code: String,
    values: RiskForm,
    error: Option<(String, &'static str)>,
    status: StatusCode,
) -> WebResult<HttpResponse> {
    let lookup = code.clone();
    let (organisation, held) = state
        .run(move |db| {
            db.read(|conn| {
                let organisation = db::organisations::get(conn, &lookup)?;
                let held = db::risk::products_at_risk(conn, &organisation.code, today(), WITHIN_MONTHS)?;
                Ok((organisation, held))
            })
        })
        .await?;
    let products: Vec<ChoiceView> =
        held.into_iter().map(|(product_id, label)| ChoiceView { product_id, label }).collect();
    let example = today().checked_add_months(chrono::Months::new(6)).unwrap_or_else(today);
    let page = AcceptancePage {
        chrome: Chrome::for_session("Record a risk acceptance", session, ""),
        code: organisation.code,
        name: organisation.name,
        products,
        error,
        values,
        example_expiry: example.to_string(),
    };
    render(status, &page)
}

/// The form to record a risk acceptance.
pub async fn new_acceptance_page(
    state: web::Data<AppState>,
    session: Session,
    code: web::Path<String>,
    query: web::Query<NewQuery>,
) -> WebResult<HttpResponse> {
    let code = code.into_inner().to_uppercase();
    session.require_acting_for::<AdminOrOfficer>(&code)?;
    let values = RiskForm {
        product_id: query.product.map(|id| id.to_string()).unwrap_or_default(),
        ..Default::default()
    };
    render_form(&state, &session, code, values, None, StatusCode::OK).await
}

/// Reads the form into an acceptance, or says what to correct (and which field).
fn acceptance_from(code: &str, form: &RiskForm) -> Result<NewRiskAcceptance, (String, &'static str)> {
    let product_id = form
        .product_id
        .trim()
        .parse::<i64>()
        .map_err(|_| ("Choose the product the acceptance is for".to_owned(), "product_id"))?;
    let expires_on = crate::dates::parse(&form.expires_on).ok_or_else(|| {
        ("Enter the expiry date as year-month-day, like 2027-05-31".to_owned(), "expires_on")
    })?;
    Ok(NewRiskAcceptance {
        organisation_code: code.to_owned(),
        product_id,
        compensating_controls: form.compensating_controls.trim().to_owned(),
        mds2_reference: optional_text(&form.mds2_reference),
        expires_on,
    })
}

/// Records the acceptance, as `POST /v1/organisations/{code}/risk-acceptances` does.
pub async fn record_acceptance(
    state: web::Data<AppState>,
    code: web::Path<String>,
    submitted: Submitted<RiskForm>,
) -> WebResult<HttpResponse> {
    let (code, session, form) = (code.into_inner().to_uppercase(), submitted.session, submitted.form);
    let user = session.require_acting_for::<AdminOrOfficer>(&code)?;
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    let new = match acceptance_from(&code, &form) {
        Ok(new) => new,
        Err(error) => return render_form(&state, &session, code, form, Some(error), unprocessable).await,
    };
    let actor = user.actor();
    match state.run(move |db| db::risk::accept(db, &actor, new, today())).await {
        Ok(_) => Ok(see_other(&format!("/organisations/{code}?notice=risk-accepted"))),
        Err(error) => {
            let Refusal { detail, status } = Refusal::of(error)?;
            let field = if detail.contains("expires_on") { "expires_on" } else { "compensating_controls" };
            render_form(&state, &session, code, form, Some((detail, field)), status).await
        }
    }
}
