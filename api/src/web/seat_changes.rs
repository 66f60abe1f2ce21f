//! Seat changes from a file: an organisation claims and gives back seats on many national lines
//! from one CSV file, through `db::seat_changes` as the API's `POST
//! /v1/organisations/{code}/seat-changes` does, for those who act for it (`AdminOrOfficer`). The
//! form checks the file by default (`rehearse`: the rows go through the ledger in a transaction
//! that is rolled back), so that each row's outcome is seen before any seat moves; a real run
//! applies every row or, when one is refused, none.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use db::ledger::AllocationFilter;
use db::seat_changes::{SeatChangeKind, SeatChangeOutcome, SeatChangeReport};
use db::{DbConnection, DbResult, PageRequest};
use serde::Deserialize;

use crate::auth::extractors::AdminOrOfficer;
use crate::state::AppState;
use crate::web::capitalised;
use crate::web::{Chrome, Refusal, Session, Uploaded, WebResult, count, render, see_other, today};

/// A line the organisation holds seats on, so that the file can name it.
pub struct HeldLine {
    pub entitlement_id: i64,
    pub product_id: i64,
    pub product: String,
    pub seats: String,
    pub seats_left: String,
}

/// The lines the organisation holds live seats on, with its seats on each: one read of its
/// allocations, then one of each line it holds (a handful, not one per allocation).
fn held_lines(conn: &mut DbConnection, organisation: &str) -> DbResult<Vec<HeldLine>> {
    let filter = AllocationFilter {
        entitlement_id: None,
        organisation_code: Some(organisation.to_owned()),
        include_ended: false,
    };
    let page = PageRequest { limit: Some(db::page::MAX_LIMIT), cursor: None };
    let mut seats: BTreeMap<i64, i64> = BTreeMap::new();
    for allocation in db::ledger::list(conn, &filter, &page)?.items {
        let held = seats.entry(allocation.entitlement_id).or_default();
        *held = held.saturating_add(allocation.quantity);
    }
    seats
        .into_iter()
        .map(|(id, held)| {
            let line = db::agreements::get_entitlement(conn, id)?;
            Ok(HeldLine {
                entitlement_id: id,
                product_id: line.product_id,
                product: line.product,
                seats: count(held),
                seats_left: line.seats_remaining.map(count).unwrap_or_else(|| "No cap".to_owned()),
            })
        })
        .collect()
}

#[derive(Template)]
#[template(path = "seat_changes.html")]
struct SeatChangesPage {
    chrome: Chrome,
    code: String,
    name: String,
    lines: Vec<HeldLine>,
    max_rows: String,
    dry_run: bool,
    error: Option<String>,
}

async fn render_form(
    state: &AppState,
    session: &Session,
    code: String,
    dry_run: bool,
    error: Option<String>,
    status: StatusCode,
) -> WebResult<HttpResponse> {
    let (organisation, lines) = state
        .run(move |db| {
            db.read(|conn| {
                let organisation = db::organisations::get(conn, &code)?;
                let lines = held_lines(conn, &organisation.code)?;
                Ok((organisation, lines))
            })
        })
        .await?;
    let page = SeatChangesPage {
        chrome: Chrome::for_session("Change seats from a file", session, ""),
        code: organisation.code,
        name: organisation.name,
        lines,
        max_rows: count(db::seat_changes::MAX_ROWS as i64),
        dry_run,
        error,
    };
    render(status, &page)
}

/// The form: a file of seat changes, checked first by default.
pub async fn seat_changes_page(
    state: web::Data<AppState>,
    session: Session,
    code: web::Path<String>,
) -> WebResult<HttpResponse> {
    let code = code.into_inner().to_uppercase();
    session.require_acting_for::<AdminOrOfficer>(&code)?;
    render_form(&state, &session, code, true, None, StatusCode::OK).await
}

#[derive(Deserialize)]
pub struct SeatChangesForm {
    /// The "check the file first" box: `yes` when ticked.
    dry_run: Option<String>,
}

/// One row of a check, in words.
pub struct CheckedRow {
    pub line: u64,
    pub entitlement_id: String,
    pub change: &'static str,
    pub quantity: String,
    /// `claimed`, `released` or `refused`.
    pub outcome: &'static str,
    pub reason: String,
    pub seats_left: String,
}

#[derive(Template)]
#[template(path = "seat_changes_check.html")]
struct CheckPage {
    chrome: Chrome,
    code: String,
    name: String,
    file_name: String,
    seats_claimed: String,
    seats_released: String,
    rows_refused: i64,
    rows_refused_words: String,
    rows: Vec<CheckedRow>,
}

fn check_page(session: &Session, name: String, file_name: String, report: SeatChangeReport) -> CheckPage {
    let rows = report
        .rows
        .into_iter()
        .map(|row| CheckedRow {
            line: row.line,
            entitlement_id: row.entitlement_id.map(|id| id.to_string()).unwrap_or_default(),
            change: match row.change {
                Some(SeatChangeKind::Claim) => "Claim",
                Some(SeatChangeKind::Release) => "Release",
                None => "",
            },
            quantity: row.quantity.map(count).unwrap_or_default(),
            outcome: match row.outcome {
                SeatChangeOutcome::Claimed => "claimed",
                SeatChangeOutcome::Released => "released",
                SeatChangeOutcome::Refused => "refused",
            },
            reason: row.reason.unwrap_or_default(),
            seats_left: match (row.outcome, row.seats_remaining) {
                (SeatChangeOutcome::Refused, _) => String::new(),
                (_, Some(left)) => count(left),
                (_, None) => "No cap".to_owned(),
            },
        })
        .collect();
    CheckPage {
        chrome: Chrome::for_session(format!("Check of {file_name}"), session, ""),
        code: report.organisation_code,
        name,
        file_name,
        seats_claimed: count(report.seats_claimed),
        seats_released: count(report.seats_released),
        rows_refused: report.rows_refused,
        rows_refused_words: count(report.rows_refused),
        rows,
    }
}

/// What became of a file: checked (with the organisation's name for the page), or applied.
enum Done {
    Checked { name: String, file_name: String, report: SeatChangeReport },
    Applied(SeatChangeReport),
}

/// Checks or applies a file of seat changes. A check shows each row's outcome; a real run goes
/// back to the organisation's page; a file refused (a refused row, a header missing a column)
/// shows the form again with why, naming the lines.
pub async fn apply_seat_changes(
    state: web::Data<AppState>,
    code: web::Path<String>,
    upload: Uploaded<SeatChangesForm>,
) -> WebResult<HttpResponse> {
    let code = code.into_inner().to_uppercase();
    let Uploaded { session, form, file } = upload;
    let user = session.require_acting_for::<AdminOrOfficer>(&code)?;
    let dry_run = form.dry_run.as_deref() == Some("yes");
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    let file = match file {
        Some(file) if !file.bytes.is_empty() => file,
        Some(file) => {
            let error = Some(format!("The file {} is empty", file.name));
            return render_form(&state, &session, code, dry_run, error, unprocessable).await;
        }
        None => {
            let error = Some("Choose the file of seat changes to upload".to_owned());
            return render_form(&state, &session, code, dry_run, error, unprocessable).await;
        }
    };
    let (actor, organisation) = (user.actor(), code.clone());
    let done = state
        .run(move |db| {
            if dry_run {
                let name = db.read(|conn| db::organisations::get(conn, &organisation))?.name;
                let report = db::seat_changes::rehearse(db, &actor, &organisation, &file.bytes, today())?;
                Ok(Done::Checked { name, file_name: file.name, report })
            } else {
                db::seat_changes::apply(db, &actor, &organisation, &file.bytes, today()).map(Done::Applied)
            }
        })
        .await;
    match done {
        Ok(Done::Checked { name, file_name, report }) => {
            render(StatusCode::OK, &check_page(&session, name, file_name, report))
        }
        Ok(Done::Applied(applied)) => {
            Ok(see_other(&format!("/organisations/{code}?notice=seat-changes&n={}", applied.rows.len())))
        }
        Err(error) => {
            let refused = Refusal::of(error)?;
            render_form(&state, &session, code, dry_run, Some(capitalised(&refused.detail)), refused.status)
                .await
        }
    }
}
