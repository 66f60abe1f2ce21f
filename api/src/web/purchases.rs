//! Recording a local purchase against a standard's published version, with a declaration per
//! requirement, and correcting one (purchases never change: a correction is a new purchase that
//! supersedes the old, as the API's `supersedes` field records), through `db::purchases::record`
//! and the API's rules (the `AdminOrOfficer` role set, acting for one's own organisation). Whether
//! it complies is the data layer's judgement.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::NaiveDate;
use db::products::ProductFilter;
use db::purchases::NewPurchase;
use db::standards::Outcome;
use db::{DbConnection, DbResult, PageRequest};
use serde::Deserialize;

use crate::auth::extractors::AdminOrOfficer;
use crate::state::AppState;
use crate::web::date_input::{DateField, DateInput, date_field};
use crate::web::start::{ChoiceView, RequirementView, words};
use crate::web::{
    Chrome, FieldError, Refusal, Session, Submitted, WebError, WebResult, long_date, optional_text, render,
    see_other, today,
};

/// The day of the purchase: the form's three date boxes.
const PURCHASED_ON: DateField = date_field!("purchased_on", "date of purchase");

#[derive(Template)]
#[template(path = "purchase.html")]
struct PurchasePage {
    chrome: Chrome,
    organisation: String,
    standard_id: i64,
    standard_title: String,
    category: String,
    category_words: String,
    version: i32,
    published_on: String,
    requirements: Vec<RequirementView>,
    products: Vec<ChoiceView>,
    /// What to correct, each against the id of its field.
    errors: Vec<FieldError>,
    values: HashMap<String, String>,
    purchased_on: DateInput,
    /// The purchase this one corrects, if it is a correction.
    corrects: Option<i64>,
}

impl PurchasePage {
    /// What the person typed before, when the form is shown again.
    fn value(&self, name: &str) -> &str {
        self.values.get(name).map_or("", String::as_str)
    }

    fn met(&self, code: &str) -> bool {
        self.values.get(&format!("met_{code}")).is_some_and(|v| v == "yes")
    }

    fn evidence(&self, code: &str) -> &str {
        self.values.get(&format!("evidence_{code}")).map_or("", String::as_str)
    }

    fn selected(&self, product_id: &i64) -> bool {
        self.value("product_id") == product_id.to_string()
    }
}

struct FormData {
    standard_title: String,
    category: String,
    version: i32,
    published_on: String,
    requirements: Vec<RequirementView>,
    products: Vec<ChoiceView>,
}

/// The form for the version published on the purchase date (if one was), else today's.
fn form_data(conn: &mut DbConnection, standard_id: i64, on: Option<NaiveDate>) -> DbResult<Option<FormData>> {
    let standard = db::standards::get(conn, standard_id)?;
    let then = match on {
        Some(on) => db::standards::published_on(conn, standard_id, on)?,
        None => None,
    };
    let Some(version) = then.or(db::standards::published_on(conn, standard_id, today())?) else {
        return Ok(None);
    };
    let filter = ProductFilter { category: Some(standard.category.clone()), ..Default::default() };
    let page = PageRequest { limit: Some(db::page::MAX_LIMIT), cursor: None };
    let products = db::products::list(conn, &filter, today(), &page)?;
    Ok(Some(FormData {
        standard_title: standard.title,
        category: standard.category,
        version: version.number,
        published_on: version.published_at.map(|t| long_date(t.date())).unwrap_or_default(),
        requirements: version
            .requirements
            .into_iter()
            .map(|r| RequirementView { code: r.code, text: r.text, level: r.level.as_str().to_owned() })
            .collect(),
        products: products.items.iter().map(|p| ChoiceView { product_id: p.id, label: p.label() }).collect(),
    }))
}

async fn render_form(
    state: &AppState,
    session: &Session,
    organisation: String,
    standard_id: i64,
    values: HashMap<String, String>,
    purchased_on: DateInput,
    errors: Vec<FieldError>,
) -> WebResult<HttpResponse> {
    // Whatever the problem, the record as typed cannot be kept (a purchase already superseded is
    // a conflict to the API).
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let on = purchased_on.date().ok();
    let data = state.run(move |db| db.read(|conn| form_data(conn, standard_id, on))).await?;
    let corrects = values.get("supersedes").and_then(|id| id.trim().parse::<i64>().ok());
    let title = if corrects.is_some() { "Correct a local purchase" } else { "Record a local purchase" };
    let data =
        data.ok_or_else(|| WebError::BadRequest("No version of this standard is published today".into()))?;
    let page = PurchasePage {
        chrome: Chrome::for_session(title, session, ""),
        organisation,
        standard_id,
        category_words: words(&data.category).to_lowercase(),
        standard_title: data.standard_title,
        category: data.category,
        version: data.version,
        published_on: data.published_on,
        requirements: data.requirements,
        products: data.products,
        errors,
        values,
        purchased_on,
        corrects,
    };
    render(status, &page)
}

#[derive(Deserialize)]
pub struct NewQuery {
    standard: i64,
    /// The purchase to correct: the form starts with what it recorded.
    corrects: Option<i64>,
}

/// What a recorded purchase said, as the form's fields, to start a correction from.
fn values_of(purchase: &db::purchases::Purchase) -> HashMap<String, String> {
    let mut values = HashMap::from([
        ("supersedes".to_owned(), purchase.id.to_string()),
        ("product_id".to_owned(), purchase.product_id.map(|id| id.to_string()).unwrap_or_default()),
        ("description".to_owned(), purchase.description.clone().unwrap_or_default()),
        ("quantity".to_owned(), purchase.quantity.to_string()),
        (
            "unit_cost".to_owned(),
            format!("{}.{:02}", purchase.unit_cost_pence / 100, purchase.unit_cost_pence % 100),
        ),
        ("order_reference".to_owned(), purchase.order_reference.clone()),
    ]);
    values.extend(DateInput::showing(PURCHASED_ON, purchase.purchased_on).fields());
    for declaration in &purchase.declarations {
        if declaration.met {
            values.insert(format!("met_{}", declaration.requirement), "yes".to_owned());
        }
        if let Some(evidence) = &declaration.evidence {
            values.insert(format!("evidence_{}", declaration.requirement), evidence.clone());
        }
    }
    values
}

/// The form to record a purchase against the standard's published version.
pub async fn new_purchase_page(
    state: web::Data<AppState>,
    session: Session,
    code: web::Path<String>,
    query: web::Query<NewQuery>,
) -> WebResult<HttpResponse> {
    let code = code.into_inner().to_uppercase();
    session.require_acting_for::<AdminOrOfficer>(&code)?;
    let values = match query.corrects {
        Some(id) => {
            let purchase = state.run(move |db| db.read(|conn| db::purchases::get(conn, id))).await?;
            // Another organisation's purchase is not found, as its pages are not.
            if purchase.organisation_code != code || purchase.standard_id != query.standard {
                return Err(WebError::NotFound);
            }
            values_of(&purchase)
        }
        None => HashMap::from(DateInput::showing(PURCHASED_ON, today()).fields()),
    };
    let purchased_on = DateInput::from_form(PURCHASED_ON, &values);
    render_form(&state, &session, code, query.standard, values, purchased_on, Vec::new()).await
}

/// An optional id field: `Some(None)` when empty, `None` when it is not an id.
fn optional_id(text: &str) -> Option<Option<i64>> {
    match text {
        "" => Some(None),
        id => id.parse::<i64>().ok().map(Some),
    }
}

/// Reads the form into a purchase, or says everything to correct, each against its field in the
/// form's order (the date's wrong boxes marked in `purchased_on`).
fn purchase_from(
    organisation: &str,
    form: &HashMap<String, String>,
    purchased_on: &mut DateInput,
) -> Result<NewPurchase, Vec<FieldError>> {
    let field = |name: &str| form.get(name).map_or("", |v| v.trim());
    let mut errors = Vec::new();
    let standard_id = field("standard_id").parse::<i64>().ok();
    let version = field("version").parse::<i32>().ok();
    let supersedes_id = optional_id(field("supersedes"));
    if standard_id.is_none() || version.is_none() || supersedes_id.is_none() {
        errors.push(FieldError::new("product_id", "The form is out of date"));
    }
    let product_id = optional_id(field("product_id"));
    if product_id.is_none() {
        errors.push(FieldError::new("product_id", "Choose a product"));
    }
    let date = purchased_on.read(&mut errors);
    let quantity = field("quantity").parse::<i64>().ok().filter(|q| *q >= 1);
    if quantity.is_none() {
        errors.push(FieldError::new("quantity", "Enter the quantity as a whole number, 1 or more"));
    }
    let unit_cost_pence = pounds_to_pence(field("unit_cost"));
    if unit_cost_pence.is_none() {
        errors
            .push(FieldError::new("unit_cost", "Enter the cost of one unit in pounds, like 1250 or 1250.50"));
    }
    let (
        Some(standard_id),
        Some(version),
        Some(supersedes_id),
        Some(product_id),
        Some(purchased_on),
        Some(quantity),
        Some(unit_cost_pence),
    ) = (standard_id, version, supersedes_id, product_id, date, quantity, unit_cost_pence)
    else {
        return Err(errors);
    };
    let codes: Vec<String> =
        form.keys().filter_map(|key| key.strip_prefix("requirement_").map(str::to_owned)).collect();
    let mut codes = codes;
    codes.sort();
    let declarations: Vec<Outcome> = codes
        .iter()
        .map(|code| Outcome {
            requirement: code.clone(),
            met: field(&format!("met_{code}")) == "yes",
            evaluated: None,
            note: None,
        })
        .collect();
    let evidence = codes.iter().map(|code| optional_text(field(&format!("evidence_{code}")))).collect();
    Ok(NewPurchase {
        organisation_code: organisation.to_owned(),
        product_id,
        description: optional_text(field("description")),
        category: field("category").to_owned(),
        standard_id,
        version,
        purchased_on,
        quantity,
        unit_cost_pence,
        order_reference: field("order_reference").to_owned(),
        declarations,
        evidence,
        supersedes_id,
    })
}

/// "1250", "1,250.5" or "£1250.50" in pence.
fn pounds_to_pence(text: &str) -> Option<i64> {
    let cleaned: String = text.trim().trim_start_matches('£').chars().filter(|c| *c != ',').collect();
    let (whole, fraction) = cleaned.split_once('.').unwrap_or((&cleaned, ""));
    if whole.is_empty()
        || fraction.len() > 2
        || !whole.chars().chain(fraction.chars()).all(|c| c.is_ascii_digit())
    {
        return None;
    }
    let pounds: i64 = whole.parse().ok()?;
    let pence: i64 = format!("{fraction:0<2}").parse().ok()?;
    pounds.checked_mul(100)?.checked_add(pence)
}

/// Records the purchase; the organisation's page then lists it, marked compliant or not.
pub async fn record_purchase(
    state: web::Data<AppState>,
    code: web::Path<String>,
    submitted: Submitted<HashMap<String, String>>,
) -> WebResult<HttpResponse> {
    let (code, session, form) = (code.into_inner().to_uppercase(), submitted.session, submitted.form);
    let user = session.require_acting_for::<AdminOrOfficer>(&code)?;
    let standard_id =
        form.get("standard_id").and_then(|v| v.trim().parse::<i64>().ok()).ok_or(WebError::NotFound)?;
    let mut purchased_on = DateInput::from_form(PURCHASED_ON, &form);
    let new = match purchase_from(&code, &form, &mut purchased_on) {
        Ok(new) => new,
        Err(errors) => {
            return render_form(&state, &session, code, standard_id, form, purchased_on, errors).await;
        }
    };
    let actor = user.actor();
    match state.run(move |db| db::purchases::record(db, &actor, new)).await {
        Ok(purchase) => Ok(see_other(&format!(
            "/organisations/{code}?notice={}",
            match (purchase.supersedes_id.is_some(), purchase.compliant) {
                (false, true) => "purchased",
                (false, false) => "purchased-non-compliant",
                (true, true) => "corrected",
                (true, false) => "corrected-non-compliant",
            }
        ))),
        Err(error) => {
            let errors = vec![FieldError::new("product_id", &Refusal::of(error)?.detail)];
            render_form(&state, &session, code, standard_id, form, purchased_on, errors).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pounds_read_as_pence() {
        assert_eq!(pounds_to_pence("1250"), Some(125_000));
        assert_eq!(pounds_to_pence("£1,250.5"), Some(125_050));
        assert_eq!(pounds_to_pence("0.07"), Some(7));
        for bad in ["", "abc", "1.234", "-5", "1.2.3", "."] {
            assert_eq!(pounds_to_pence(bad), None, "{bad}");
        }
    }
}
