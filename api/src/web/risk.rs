//! Recording a risk acceptance for unsupported software an organisation cannot yet replace
//! (typically a medical device), with its compensating controls and an expiry, through
//! `db::risk::accept` and the API's rules (the `AdminOrOfficer` role set, acting for one's own
//! organisation). The organisation's page lists its acceptances.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use db::risk::{AcceptanceProblem, NewRiskAcceptance};
use serde::Deserialize;

use crate::auth::extractors::AdminOrOfficer;
use crate::state::AppState;
use crate::web::date_input::{DateField, DateInput, date_field};
use crate::web::start::ChoiceView;
use crate::web::{
    Chrome, FieldError, Refusal, Session, Submitted, WebResult, capitalised, error_for, optional_text,
    render, see_other, today,
};

/// Software whose support ends within this many months is offered too, not only unsupported.
const WITHIN_MONTHS: u32 = 12;

/// The day the acceptance stops covering the product.
const EXPIRES_ON: DateField = date_field!("expires_on", "expiry date");

#[derive(Template)]
#[template(path = "risk_acceptance.html")]
struct AcceptancePage {
    chrome: Chrome,
    code: String,
    name: String,
    products: Vec<ChoiceView>,
    /// What to correct, each against the id of its field.
    errors: Vec<FieldError>,
    values: RiskForm,
    expires_on: DateInput,
    /// The expiry's hint, with a date six months ahead as its example.
    expiry_hint: String,
}

impl AcceptancePage {
    fn selected(&self, product_id: &i64) -> bool {
        self.values.product_id.trim() == product_id.to_string()
    }

    fn error_for(&self, field: &str) -> Option<&str> {
        error_for(&self.errors, field)
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
    #[serde(default, rename = "expires_on-day")]
    expires_on_day: String,
    #[serde(default, rename = "expires_on-month")]
    expires_on_month: String,
    #[serde(default, rename = "expires_on-year")]
    expires_on_year: String,
}

impl RiskForm {
    fn expires_on(&self) -> DateInput {
        DateInput::typed(EXPIRES_ON, &self.expires_on_day, &self.expires_on_month, &self.expires_on_year)
    }
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
    expires_on: DateInput,
    errors: Vec<FieldError>,
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
        errors,
        values,
        expires_on,
        expiry_hint: format!(
            "After this date the acceptance no longer covers the product. For example, {}",
            example.format("%-d %-m %Y")
        ),
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
    let expires_on = values.expires_on();
    render_form(&state, &session, code, values, expires_on, Vec::new(), StatusCode::OK).await
}

/// Reads the form into an acceptance, or says everything to correct, each against its field (the
/// expiry's wrong boxes marked in `expires_on`).
fn acceptance_from(
    code: &str,
    form: &RiskForm,
    expires_on: &mut DateInput,
) -> Result<NewRiskAcceptance, Vec<FieldError>> {
    let mut errors = Vec::new();
    let product_id = form.product_id.trim().parse::<i64>().ok();
    if product_id.is_none() {
        errors.push(FieldError::new("product_id", "Choose the product the acceptance is for"));
    }
    let (Some(product_id), Some(expires_on)) = (product_id, expires_on.read(&mut errors)) else {
        return Err(errors);
    };
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
    let mut expires_on = form.expires_on();
    let new = match acceptance_from(&code, &form, &mut expires_on) {
        Ok(new) => new,
        Err(errors) => {
            return render_form(&state, &session, code, form, expires_on, errors, unprocessable).await;
        }
    };
    // The data layer's rules, every one broken listed against its field, as the form says
    // them (the API's words name its fields): a refused expiry marks the whole date.
    let problems = db::risk::problems(&new, today());
    if !problems.is_empty() {
        let mut errors = Vec::new();
        for problem in problems {
            match problem {
                AcceptanceProblem::NoCompensatingControls => errors
                    .push(FieldError::new("compensating_controls", "Describe the compensating controls")),
                AcceptanceProblem::ExpiryNotInFuture => {
                    expires_on.refuse("Expiry date must be in the future", &mut errors)
                }
            }
        }
        return render_form(&state, &session, code, form, expires_on, errors, unprocessable).await;
    }
    let actor = user.actor();
    match state.run(move |db| db::risk::accept(db, &actor, new, today())).await {
        Ok(_) => Ok(see_other(&format!("/organisations/{code}?notice=risk-accepted"))),
        Err(error) => {
            // What is left is about the product (it does not exist).
            let Refusal { detail, status } = Refusal::of(error)?;
            let errors = vec![FieldError::new("product_id", &capitalised(&detail))];
            render_form(&state, &session, code, form, expires_on, errors, status).await
        }
    }
}
