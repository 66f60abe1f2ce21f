//! An organisation's estate: what its imported inventories say it runs (`db::estates::estate`),
//! as a page or, with `?format=csv`, as a file of its products and releases; and the form that
//! imports an inventory file (`db::estates::plan` for the check, `db::estates::import` for the
//! import), as the API's `POST /v1/organisations/{code}/estate` does. Whoever may read the
//! organisation's data sees the page (another trust's officer gets 404, as from the API); the
//! form is for those who act for it (`AdminOrOfficer`), and checks the file by default: a check
//! writes nothing and lists what each row would match, so that a mistaken export is seen before
//! it replaces the last good one.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::NaiveDate;
use db::estates::{ImportReport, RowReport};
use db::vocabulary::{EstateSource, RowStatus};
use serde::Deserialize;

use crate::auth::extractors::{AdminOrOfficer, ReadsOrganisation};
use crate::spreadsheet;
use crate::state::AppState;
use crate::web::date_input::{DateField, DateInput, date_field};
use crate::web::session::{PageOrganisation, UploadedFile};
use crate::web::start::can_act_for;
use crate::web::{
    Chrome, FieldError, Refusal, Session, Uploaded, WebResult, capitalised, count, counted, long_date,
    render, see_other, today,
};

/// Rows of a check listed on its page (with every invalid row the report names besides): the
/// report itself holds up to `db::estates::MAX_REPORTED_ROWS`, too many to read on a page.
const CHECKED_ROWS_SHOWN: usize = 250;

/// How the pages name a source: in full (the form's choices, the tables), and short.
fn source_label(source: EstateSource) -> &'static str {
    match source {
        EstateSource::Catalogue => "The catalogue's own CSV",
        EstateSource::Defender => "Microsoft Defender for Endpoint software inventory",
        EstateSource::Intune => "Intune discovered apps",
    }
}

fn source_short(source: EstateSource) -> &'static str {
    match source {
        EstateSource::Catalogue => "catalogue CSV",
        EstateSource::Defender => "Defender",
        EstateSource::Intune => "Intune",
    }
}

/// What the form says of each source's file: its layout's columns (`db::estates::required_columns`
/// are those the import needs; a unit test checks each hint names them).
fn source_hint(source: EstateSource) -> &'static str {
    match source {
        EstateSource::Catalogue => {
            "One row per product and release, with the columns product (a product's name or SKU) and, \
             if known, release, devices, users and site."
        }
        EstateSource::Defender => {
            "The DeviceTvmSoftwareInventory export from advanced hunting, one row per device and \
             program, with the columns DeviceId, SoftwareVendor, SoftwareName and SoftwareVersion."
        }
        EstateSource::Intune => {
            "The AppInvAggregate report, with the columns ApplicationName, ApplicationPublisher, \
             ApplicationVersion and DeviceCount."
        }
    }
}

pub struct SourceChoice {
    pub value: &'static str,
    pub label: &'static str,
    pub hint: &'static str,
}

fn source_choices() -> Vec<SourceChoice> {
    EstateSource::ALL
        .iter()
        .map(|source| SourceChoice {
            value: source.as_str(),
            label: source_label(*source),
            hint: source_hint(*source),
        })
        .collect()
}

/// The day the inventory was taken, as the upload form asks for it.
const TAKEN_ON: DateField = date_field!("taken_on", "date the inventory was taken");

/// What the upload form was given, to show it again.
pub struct Answers {
    pub source: String,
    pub taken_on: DateInput,
    pub dry_run: bool,
}

impl Answers {
    fn fresh() -> Answers {
        Answers {
            source: EstateSource::Catalogue.as_str().to_owned(),
            taken_on: DateInput::showing(TAKEN_ON, today()),
            dry_run: true,
        }
    }
}

pub struct SnapshotRow {
    pub source: &'static str,
    pub taken_on: String,
    pub imported_on: String,
    pub rows_read: String,
    pub rows_matched: String,
    pub rows_unmatched: String,
}

pub struct RunningRow {
    pub product_id: i64,
    pub product: String,
    pub release: Option<String>,
    pub devices: String,
    pub users: String,
    pub sources: String,
}

#[derive(Template)]
#[template(path = "estate.html")]
struct EstatePage {
    chrome: Chrome,
    code: String,
    name: String,
    snapshots: Vec<SnapshotRow>,
    running: Vec<RunningRow>,
    /// Admins and auditors also have the national report of this organisation.
    national_report: bool,
    can_import: bool,
    sources: Vec<SourceChoice>,
    answers: Answers,
    /// What to correct, each against the id of its field.
    errors: Vec<FieldError>,
    notice: Option<String>,
}

#[derive(Deserialize)]
pub struct EstateQuery {
    notice: Option<String>,
    source: Option<String>,
    /// `csv`: the products and releases as a file (the page's "Download CSV").
    format: Option<String>,
}

async fn render_estate(
    state: &AppState,
    session: &Session,
    code: String,
    answers: Answers,
    errors: Vec<FieldError>,
    notice: Option<String>,
    status: StatusCode,
) -> WebResult<HttpResponse> {
    let lookup = code.clone();
    let (organisation, estate) = state
        .run(move |db| {
            db.read(|conn| Ok((db::organisations::get(conn, &lookup)?, db::estates::estate(conn, &lookup)?)))
        })
        .await?;
    let snapshots = estate
        .snapshots
        .iter()
        .map(|s| SnapshotRow {
            source: source_label(s.source),
            taken_on: long_date(s.taken_on),
            imported_on: long_date(s.imported_at.date()),
            rows_read: count(s.rows_read),
            rows_matched: count(s.rows_matched),
            rows_unmatched: count(s.rows_unmatched),
        })
        .collect::<Vec<_>>();
    let running = estate
        .running
        .into_iter()
        .map(|r| RunningRow {
            product_id: r.product_id,
            product: r.product,
            release: r.release,
            devices: count(r.devices),
            users: count(r.users),
            sources: r.sources.iter().map(|s| capitalised(source_short(*s))).collect::<Vec<_>>().join(", "),
        })
        .collect();
    let page = EstatePage {
        chrome: Chrome::for_session(format!("What {} runs", organisation.code), session, ""),
        national_report: session.require::<crate::auth::extractors::AdminOrAuditor>().is_ok(),
        can_import: can_act_for(session, &organisation.code),
        code: organisation.code,
        name: organisation.name,
        snapshots,
        running,
        sources: source_choices(),
        answers,
        errors,
        notice,
    };
    render(status, &page)
}

/// The estate page; with `format=csv`, its products and releases as a file.
pub async fn estate_page(
    state: web::Data<AppState>,
    page: PageOrganisation<ReadsOrganisation>,
    query: web::Query<EstateQuery>,
) -> WebResult<HttpResponse> {
    let PageOrganisation { session, code, .. } = page;
    let query = query.into_inner();
    if query.format.as_deref() == Some("csv") {
        let lookup = code.clone();
        let estate = state
            .run(move |db| {
                db.read(|conn| {
                    db::organisations::get(conn, &lookup)?;
                    db::estates::estate(conn, &lookup)
                })
            })
            .await?;
        let mut response =
            spreadsheet::whole(&format!("estate-{}", estate.organisation_code), &estate.running);
        // It names what the organisation runs, as the page does.
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return Ok(response);
    }
    let notice = match query.notice.as_deref() {
        Some("imported") => Some(match query.source.as_deref().and_then(EstateSource::parse) {
            Some(source) => {
                format!("The file is imported. It replaces any earlier {} file.", source_short(source))
            }
            None => "The file is imported.".to_owned(),
        }),
        _ => None,
    };
    render_estate(&state, &session, code, Answers::fresh(), Vec::new(), notice, StatusCode::OK).await
}

#[derive(Deserialize)]
pub struct UploadForm {
    #[serde(default)]
    source: String,
    #[serde(default, rename = "taken_on-day")]
    taken_on_day: String,
    #[serde(default, rename = "taken_on-month")]
    taken_on_month: String,
    #[serde(default, rename = "taken_on-year")]
    taken_on_year: String,
    /// The "check the file first" box: `yes` when ticked.
    dry_run: Option<String>,
}

/// The form's answers read, or every problem with them, each against its field (the date's boxes
/// marked in `taken_on`).
fn read_form(
    form: &UploadForm,
    file: Option<UploadedFile>,
    taken_on: &mut DateInput,
) -> Result<(EstateSource, NaiveDate, UploadedFile), Vec<FieldError>> {
    let mut errors = Vec::new();
    let file = match file {
        None => {
            errors.push(FieldError::new("file", "Choose the inventory file to upload"));
            None
        }
        Some(file) if file.bytes.is_empty() => {
            errors.push(FieldError::new("file", &format!("The file {} is empty", file.name)));
            None
        }
        Some(file) => Some(file),
    };
    let source = EstateSource::parse(form.source.trim());
    if source.is_none() {
        errors.push(FieldError::new("source-catalogue", "Choose which export the file is"));
    }
    match (file, source, taken_on.read(&mut errors)) {
        (Some(file), Some(source), Some(taken_on)) => Ok((source, taken_on, file)),
        _ => Err(errors),
    }
}

/// One row of a check, in words.
pub struct CheckedRow {
    pub line: u64,
    pub name: String,
    pub version: String,
    /// `matched`, `unmatched` or `invalid`.
    pub outcome: &'static str,
    pub product_id: Option<i64>,
    pub product: String,
    pub release: Option<String>,
    pub reason: String,
}

fn checked_row(row: RowReport) -> CheckedRow {
    CheckedRow {
        line: row.line,
        name: row.name,
        version: row.version,
        outcome: row.outcome.as_str(),
        product_id: row.product_id,
        product: row.product.unwrap_or_default(),
        release: row.release,
        reason: row.reason.unwrap_or_default(),
    }
}

#[derive(Template)]
#[template(path = "estate_check.html")]
struct CheckPage {
    chrome: Chrome,
    code: String,
    name: String,
    file_name: String,
    source: &'static str,
    source_short: &'static str,
    taken_on: String,
    rows_read: String,
    rows_matched: String,
    rows_unmatched: String,
    rows_invalid: i64,
    rows_invalid_words: String,
    /// The report lists fewer rows than the file has.
    partial: bool,
    rows: Vec<CheckedRow>,
}

fn check_page(session: &Session, name: String, file_name: String, report: ImportReport) -> CheckPage {
    let listed = report.rows.len();
    let rows: Vec<CheckedRow> = report
        .rows
        .into_iter()
        .enumerate()
        .filter(|(index, row)| *index < CHECKED_ROWS_SHOWN || row.outcome == RowStatus::Invalid)
        .map(|(_, row)| checked_row(row))
        .collect();
    CheckPage {
        chrome: Chrome::for_session(format!("Check of {file_name}"), session, ""),
        partial: (rows.len() as i64) < report.rows_read || listed as i64 > rows.len() as i64,
        code: report.organisation_code,
        name,
        file_name,
        source: source_label(report.source),
        source_short: source_short(report.source),
        taken_on: long_date(report.taken_on),
        rows_read: counted(report.rows_read, "row", "rows"),
        rows_matched: format!(
            "{}, {}",
            counted(report.rows_matched, "row", "rows"),
            counted(report.products, "product", "products")
        ),
        rows_unmatched: counted(report.rows_unmatched, "row", "rows"),
        rows_invalid: report.rows_invalid,
        rows_invalid_words: counted(report.rows_invalid, "row", "rows"),
        rows,
    }
}

/// What became of a file: checked (with the organisation's name for the page), or imported.
enum Done {
    Checked { name: String, file_name: String, report: ImportReport },
    Imported,
}

/// Checks or imports an inventory file. A check shows each row's outcome; an import goes back to
/// the estate page; a file the data layer refuses (invalid rows, missing columns) shows the form
/// again with why.
pub async fn import_estate(
    state: web::Data<AppState>,
    code: web::Path<String>,
    upload: Uploaded<UploadForm>,
) -> WebResult<HttpResponse> {
    let code = code.into_inner().to_uppercase();
    let Uploaded { session, form, file } = upload;
    let user = session.require_acting_for::<AdminOrOfficer>(&code)?;
    let mut answers = Answers {
        source: form.source.trim().to_owned(),
        taken_on: DateInput::typed(TAKEN_ON, &form.taken_on_day, &form.taken_on_month, &form.taken_on_year),
        dry_run: form.dry_run.as_deref() == Some("yes"),
    };
    let (source, taken_on, file) = match read_form(&form, file, &mut answers.taken_on) {
        Ok(read) => read,
        Err(errors) => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return render_estate(&state, &session, code, answers, errors, None, status).await;
        }
    };
    let (actor, organisation, dry_run) = (user.actor(), code.clone(), answers.dry_run);
    let done = state
        .run(move |db| {
            if dry_run {
                db.read(|conn| {
                    let name = db::organisations::get(conn, &organisation)?.name;
                    let plan = db::estates::plan(
                        conn,
                        &organisation,
                        source,
                        taken_on,
                        file.bytes.as_slice(),
                        &mut |_| {},
                    )?;
                    Ok(Done::Checked { name, file_name: file.name, report: plan.report })
                })
            } else {
                db::estates::import(
                    db,
                    &actor,
                    &organisation,
                    source,
                    taken_on,
                    file.bytes.as_slice(),
                    &mut |_| {},
                )
                .map(|_| Done::Imported)
            }
        })
        .await;
    match done {
        Ok(Done::Checked { name, file_name, report }) => {
            render(StatusCode::OK, &check_page(&session, name, file_name, report))
        }
        Ok(Done::Imported) => {
            Ok(see_other(&format!("/organisations/{code}/estate?notice=imported&source={}", source.as_str())))
        }
        Err(error) => {
            let refused = Refusal::of(error)?;
            let errors = vec![FieldError::new("file", &capitalised(&refused.detail))];
            render_estate(&state, &session, code, answers, errors, None, refused.status).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_source_hint_names_the_columns_its_import_needs() {
        for source in EstateSource::ALL {
            for column in db::estates::required_columns(*source) {
                assert!(source_hint(*source).contains(column), "{source}: {column}");
            }
        }
    }
}
