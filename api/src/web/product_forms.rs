//! Adding and changing a product, for the national team only (the API's `AdminOnly`), through
//! `db::products::create` and `db::products::update`, the calls `POST /v1/products` and
//! `PATCH /v1/products/{id}` make. The rules are the data layer's: `db::products::problems` lists
//! every one the fields break and `db::products::successor_problem` what is wrong with the
//! successor, each shown against its field, and the write applies them again. The page adds only
//! what a form needs: a supplier chosen from a list (there are few), the three dates read from
//! their boxes, and the successor typed as a product id, shown by its label.
//!
//! A change carries the product's revision from when the form was shown, in a hidden field, and is
//! written only at that revision (`Precondition::Revision`, the API's `If-Match`): when someone
//! changed the product meanwhile, nothing is written and the form says so, keeping what was typed
//! and now carrying the new revision, so that sending it again replaces the other change knowingly.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::NaiveDate;
use db::products::{Product, ProductFields, ProductProblem, Supplier};
use serde::Deserialize;

use crate::auth::extractors::AdminOnly;
use crate::error::ApiError;
use crate::state::AppState;
use crate::web::date_input::{DateField, DateInput, date_field};
use crate::web::{
    CHANGED_FIELD, Chrome, FieldError, Refusal, Session, Submitted, WebError, WebResult, capitalised,
    changed_meanwhile, error_for, optional_text, render, see_other, today,
};

const RELEASED_ON: DateField = date_field!("released_on", "release date");
const MAINSTREAM_ENDS: DateField = date_field!("mainstream_support_ends_on", "end of mainstream support");
const EXTENDED_ENDS: DateField = date_field!("extended_support_ends_on", "end of extended support");

/// What was typed into the form, kept to show again.
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct Typed {
    /// The supplier's id, chosen from the list.
    pub supplier: String,
    pub name: String,
    pub edition: String,
    pub version: String,
    pub sku: String,
    pub category: String,
    #[serde(rename = "released_on-day")]
    pub released_on_day: String,
    #[serde(rename = "released_on-month")]
    pub released_on_month: String,
    #[serde(rename = "released_on-year")]
    pub released_on_year: String,
    #[serde(rename = "mainstream_support_ends_on-day")]
    pub mainstream_day: String,
    #[serde(rename = "mainstream_support_ends_on-month")]
    pub mainstream_month: String,
    #[serde(rename = "mainstream_support_ends_on-year")]
    pub mainstream_year: String,
    #[serde(rename = "extended_support_ends_on-day")]
    pub extended_day: String,
    #[serde(rename = "extended_support_ends_on-month")]
    pub extended_month: String,
    #[serde(rename = "extended_support_ends_on-year")]
    pub extended_year: String,
    /// `yes` when ticked.
    pub dtac_passed: String,
    /// `yes` when ticked.
    pub mds2_supplied: String,
    /// The successor's product id, or nothing.
    pub successor: String,
    pub source: String,
    /// The product's revision when the form was shown (a change only).
    pub revision: String,
}

/// A date's three boxes, as typed.
type Boxes = [String; 3];

/// The three boxes filled in with `date`, or empty.
fn boxes(field: DateField, date: Option<NaiveDate>) -> Boxes {
    match date {
        Some(date) => DateInput::showing(field, date).fields().map(|(_, value)| value),
        None => Default::default(),
    }
}

impl Typed {
    /// The form filled in with a product as it stands.
    fn of(product: &Product) -> Typed {
        let [released_on_day, released_on_month, released_on_year] = boxes(RELEASED_ON, product.released_on);
        let [mainstream_day, mainstream_month, mainstream_year] =
            boxes(MAINSTREAM_ENDS, product.mainstream_support_ends_on);
        let [extended_day, extended_month, extended_year] =
            boxes(EXTENDED_ENDS, product.extended_support_ends_on);
        let ticked = |yes: bool| if yes { "yes".to_owned() } else { String::new() };
        Typed {
            supplier: product.supplier_id.to_string(),
            name: product.name.clone(),
            edition: product.edition.clone(),
            version: product.version.clone(),
            sku: product.sku.clone().unwrap_or_default(),
            category: product.category.clone(),
            released_on_day,
            released_on_month,
            released_on_year,
            mainstream_day,
            mainstream_month,
            mainstream_year,
            extended_day,
            extended_month,
            extended_year,
            dtac_passed: ticked(product.dtac_passed),
            mds2_supplied: ticked(product.mds2_supplied),
            successor: product.successor_id.map(|id| id.to_string()).unwrap_or_default(),
            source: product.source.clone().unwrap_or_default(),
            revision: product.revision.to_string(),
        }
    }

    /// The three dates' boxes as typed, in the form's order.
    fn dates(&self) -> Dates {
        Dates {
            released: DateInput::typed(
                RELEASED_ON,
                &self.released_on_day,
                &self.released_on_month,
                &self.released_on_year,
            ),
            mainstream: DateInput::typed(
                MAINSTREAM_ENDS,
                &self.mainstream_day,
                &self.mainstream_month,
                &self.mainstream_year,
            ),
            extended: DateInput::typed(
                EXTENDED_ENDS,
                &self.extended_day,
                &self.extended_month,
                &self.extended_year,
            ),
        }
    }

    /// The successor's id when one is typed and it is a number; `Err` when it is not one.
    fn successor_id(&self) -> Result<Option<i64>, ()> {
        match self.successor.trim() {
            "" => Ok(None),
            typed => typed.parse().map(Some).map_err(|_| ()),
        }
    }
}

/// The product's three dates, each as typed and, once read, what is wrong with it.
pub struct Dates {
    pub released: DateInput,
    pub mainstream: DateInput,
    pub extended: DateInput,
}

/// One option of the supplier list.
pub struct SupplierChoice {
    pub id: i64,
    pub name: String,
    pub selected: bool,
}

/// The product changed: its id and label.
pub struct Editing {
    pub id: i64,
    pub label: String,
}

#[derive(Template)]
#[template(path = "product_form.html")]
struct ProductFormPage {
    chrome: Chrome,
    /// `None` when adding one.
    editing: Option<Editing>,
    typed: Typed,
    dates: Dates,
    suppliers: Vec<SupplierChoice>,
    /// The label of the successor typed, when it is a product.
    successor_label: Option<String>,
    errors: Vec<FieldError>,
}

impl ProductFormPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        error_for(&self.errors, field)
    }

    /// The successor's hint: how to find its ID, and the product the ID typed names.
    fn successor_hint(&self) -> String {
        let how = "The product that replaces this one, by its ID: the number at the end of its page's address. \
                   Leave it empty if there is none";
        match &self.successor_label {
            Some(label) => format!("{how}. Now: {label}"),
            None => how.to_owned(),
        }
    }

    fn submit_label(&self) -> &'static str {
        if self.editing.is_some() { "Save the changes" } else { "Add the product" }
    }

    /// Back to the product changed, or to the start page where products are found.
    fn cancel_href(&self) -> String {
        self.editing.as_ref().map_or_else(|| "/".to_owned(), |editing| format!("/products/{}", editing.id))
    }

    /// Whether the product changed since the form was shown.
    fn changed_meanwhile(&self) -> bool {
        self.error_for(CHANGED_FIELD).is_some()
    }
}

/// Every supplier, by name (a catalogue has tens of them, not thousands), and the label of the
/// successor typed when it is a product.
async fn choices(state: &AppState, typed: &Typed) -> WebResult<(Vec<SupplierChoice>, Option<String>)> {
    let successor = typed.successor_id().ok().flatten();
    let (mut suppliers, successor) = state
        .read(move |conn| {
            let mut suppliers: Vec<Supplier> = Vec::new();
            let mut page = db::PageRequest { limit: Some(db::page::MAX_LIMIT), cursor: None };
            loop {
                let found = db::products::list_suppliers(conn, &page)?;
                suppliers.extend(found.items);
                match found.next_cursor {
                    Some(cursor) => page.cursor = Some(cursor),
                    None => break,
                }
            }
            let successor = match successor {
                Some(id) => db::products::with_ids(conn, &[id], today())?.pop(),
                None => None,
            };
            Ok((suppliers, successor))
        })
        .await?;
    suppliers.sort_by_key(|supplier| supplier.name.to_lowercase());
    let chosen = typed.supplier.trim();
    let suppliers = suppliers
        .into_iter()
        .map(|supplier| SupplierChoice {
            selected: supplier.id.to_string() == chosen,
            id: supplier.id,
            name: supplier.name,
        })
        .collect();
    Ok((suppliers, successor.map(|product| format!("{} (product {})", product.label(), product.id))))
}

async fn render_form(
    state: &AppState,
    session: &Session,
    editing: Option<Editing>,
    typed: Typed,
    dates: Dates,
    errors: Vec<FieldError>,
    status: StatusCode,
) -> WebResult<HttpResponse> {
    let heading = match &editing {
        Some(editing) => format!("Change {}", editing.label),
        None => "Add a product".to_owned(),
    };
    let title = if errors.is_empty() { heading } else { format!("Error: {heading}") };
    let (suppliers, successor_label) = choices(state, &typed).await?;
    let page = ProductFormPage {
        chrome: Chrome::for_session(title, session, ""),
        editing,
        typed,
        dates,
        suppliers,
        successor_label,
        errors,
    };
    render(status, &page)
}

/// The message beside a field for a rule of the data layer; the dates' rule marks the date.
fn field_error(problem: ProductProblem, dates: &mut Dates, errors: &mut Vec<FieldError>) {
    let (field, message) = match problem {
        ProductProblem::NoName => ("name", "Enter the product's name".to_owned()),
        ProductProblem::CategoryNotASlug => (
            "category",
            "Enter the category in lower-case letters, digits and hyphens, like operating-system".to_owned(),
        ),
        ProductProblem::MainstreamAfterExtended => {
            dates.mainstream.refuse("Mainstream support must end on or before extended support", errors);
            return;
        }
        ProductProblem::NoSuchSuccessor(id) => (
            "successor",
            format!("There is no product {id}: check the successor's product ID, or leave it empty"),
        ),
        ProductProblem::OwnSuccessor => (
            "successor",
            "The successor cannot be this product, nor a product that this one leads on to".to_owned(),
        ),
        ProductProblem::TooManySuccessors => (
            "successor",
            "The successor leads on through too many other products: choose a later one".to_owned(),
        ),
    };
    errors.push(FieldError::new(field, &message));
}

/// The form's fields in order: the summary lists problems top to bottom.
const ORDER: [&str; 15] = [
    "supplier",
    "name",
    "category",
    RELEASED_ON.day,
    RELEASED_ON.month,
    RELEASED_ON.year,
    MAINSTREAM_ENDS.day,
    MAINSTREAM_ENDS.month,
    MAINSTREAM_ENDS.year,
    EXTENDED_ENDS.day,
    EXTENDED_ENDS.month,
    EXTENDED_ENDS.year,
    "successor",
    "source",
    CHANGED_FIELD,
];

/// An optional date: nothing when its boxes are empty, else the date or its problem in `errors`.
fn optional_date(date: &mut DateInput, errors: &mut Vec<FieldError>) -> Option<NaiveDate> {
    if date.is_blank() { None } else { date.read(errors) }
}

/// Reads the form into a product's fields, or says everything to correct, each against its field
/// in the form's order: what the form alone can tell (a supplier chosen, real dates, a successor
/// that is a number), every rule of `db::products::problems`, and what is wrong with the successor
/// (`db::products::successor_problem`; `id` is the product changed, `None` for a new one).
async fn fields_from(
    state: &AppState,
    typed: &Typed,
    id: Option<i64>,
    dates: &mut Dates,
) -> WebResult<Result<ProductFields, Vec<FieldError>>> {
    let mut errors = Vec::new();
    let supplier = typed.supplier.trim().parse::<i64>().ok();
    if supplier.is_none() {
        errors.push(FieldError::new("supplier", "Choose the supplier"));
    }
    let released_on = optional_date(&mut dates.released, &mut errors);
    let mainstream_support_ends_on = optional_date(&mut dates.mainstream, &mut errors);
    let extended_support_ends_on = optional_date(&mut dates.extended, &mut errors);
    let successor_id = typed.successor_id().unwrap_or_else(|()| {
        errors.push(FieldError::new(
            "successor",
            "Enter the successor's product ID as a number, like 12, or leave it empty",
        ));
        None
    });
    let fields = ProductFields {
        supplier_id: supplier.unwrap_or_default(),
        name: typed.name.trim().to_owned(),
        edition: typed.edition.trim().to_owned(),
        version: typed.version.trim().to_owned(),
        sku: optional_text(&typed.sku),
        category: typed.category.trim().to_owned(),
        released_on,
        mainstream_support_ends_on,
        extended_support_ends_on,
        dtac_passed: typed.dtac_passed == "yes",
        mds2_supplied: typed.mds2_supplied == "yes",
        successor_id,
        source: optional_text(&typed.source),
    };
    let successor = state.read(move |conn| db::products::successor_problem(conn, id, successor_id)).await?;
    for problem in db::products::problems(&fields).into_iter().chain(successor) {
        field_error(problem, dates, &mut errors);
    }
    errors.sort_by_key(|error| ORDER.iter().position(|field| *field == error.field));
    Ok(match errors.is_empty() {
        true => Ok(fields),
        false => Err(errors),
    })
}

/// A refusal of the write the form could not foresee (a supplier gone meanwhile), against the
/// field it concerns.
fn refused(detail: &str) -> FieldError {
    let field = if detail.starts_with("supplier") { "supplier" } else { "successor" };
    FieldError::new(field, &capitalised(detail))
}

/// The form to add a product.
pub async fn new_product_page(state: web::Data<AppState>, session: Session) -> WebResult<HttpResponse> {
    session.require::<AdminOnly>()?;
    let typed = Typed::default();
    let dates = typed.dates();
    render_form(&state, &session, None, typed, dates, Vec::new(), StatusCode::OK).await
}

/// Adds the product, as `POST /v1/products` does; its page on success, else the form again with
/// every problem and what was typed.
pub async fn create_product(
    state: web::Data<AppState>,
    submitted: Submitted<Typed>,
) -> WebResult<HttpResponse> {
    let (session, typed) = (submitted.session, submitted.form);
    let admin = session.require::<AdminOnly>()?;
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    let mut dates = typed.dates();
    let fields = match fields_from(&state, &typed, None, &mut dates).await? {
        Ok(fields) => fields,
        Err(errors) => return render_form(&state, &session, None, typed, dates, errors, unprocessable).await,
    };
    let actor = admin.actor();
    let error = match state.run(move |db| db::products::create(db, &actor, fields, today())).await {
        Ok(product) => return Ok(see_other(&format!("/products/{}?notice=added", product.id))),
        Err(error) => error,
    };
    let refusal = Refusal::of(error)?;
    render_form(&state, &session, None, typed, dates, vec![refused(&refusal.detail)], unprocessable).await
}

async fn product(state: &AppState, id: i64) -> WebResult<Product> {
    Ok(state.read(move |conn| db::products::get(conn, id, today())).await?)
}

fn editing(product: &Product) -> Option<Editing> {
    Some(Editing { id: product.id, label: product.label() })
}

/// The form to change a product, filled in as it stands, with its revision.
pub async fn edit_product_page(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<i64>,
) -> WebResult<HttpResponse> {
    session.require::<AdminOnly>()?;
    let product = product(&state, id.into_inner()).await?;
    let typed = Typed::of(&product);
    let dates = typed.dates();
    render_form(&state, &session, editing(&product), typed, dates, Vec::new(), StatusCode::OK).await
}

/// Changes the product at the revision the form was shown with, as `PATCH /v1/products/{id}` with
/// `If-Match` does; its page on success, else the form again with every problem and what was
/// typed.
pub async fn update_product(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    submitted: Submitted<Typed>,
) -> WebResult<HttpResponse> {
    let (id, session, mut typed) = (id.into_inner(), submitted.session, submitted.form);
    let admin = session.require::<AdminOnly>()?;
    let revision: i64 =
        typed.revision.trim().parse().map_err(|_| WebError::BadRequest("the form is out of date".into()))?;
    let current = product(&state, id).await?;
    let mut dates = typed.dates();
    let fields = match fields_from(&state, &typed, Some(id), &mut dates).await? {
        Ok(fields) => fields,
        Err(errors) => {
            let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
            return render_form(&state, &session, editing(&current), typed, dates, errors, unprocessable)
                .await;
        }
    };
    let actor = admin.actor();
    let precondition = db::Precondition::Revision(revision);
    let change = move |stored: &mut ProductFields| *stored = fields;
    let written =
        state.run(move |db| db::products::update(db, &actor, id, change, precondition, today())).await;
    let (problem, status, shown) = match written {
        Ok(_) => return Ok(see_other(&format!("/products/{id}?notice=changed"))),
        Err(ApiError::PreconditionFailed) => {
            // The form now carries the product's revision as it is: sent again, it is a choice.
            let now = product(&state, id).await?;
            typed.revision = now.revision.to_string();
            (changed_meanwhile("product"), StatusCode::CONFLICT, now)
        }
        Err(other) => {
            let refusal = Refusal::of(other)?;
            (refused(&refusal.detail), refusal.status, current)
        }
    };
    render_form(&state, &session, editing(&shown), typed, dates, vec![problem], status).await
}
