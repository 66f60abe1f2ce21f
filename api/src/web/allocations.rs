//! Giving seats back: a page that shows what an allocation holds and asks how many seats to
//! release (all of them, or fewer to keep the rest), then releases them through
//! `db::ledger::release` under the API's rule (an allocation of another organisation is not
//! found). One click on a list never releases anything.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use db::agreements::{Agreement, Entitlement};
use db::ledger::Allocation;
use db::organisations::Organisation;
use serde::Deserialize;

use crate::auth::CurrentUser;
use crate::auth::extractors::AdminOrOfficer;
use crate::state::AppState;
use crate::web::{
    Chrome, Refusal, Session, Submitted, WebError, WebResult, count, counted, local_path, long_date, render,
    see_other, whole_number,
};

#[derive(Template)]
#[template(path = "release.html")]
struct ReleasePage {
    chrome: Chrome,
    allocation_id: i64,
    organisation_code: String,
    organisation_name: String,
    product: String,
    agreement_id: i64,
    agreement_reference: String,
    held: String,
    claimed_on: String,
    reference: Option<String>,
    /// What the quantity field shows: every seat at first, what was typed after an error.
    quantity: String,
    return_to: String,
    error: Option<String>,
}

impl ReleasePage {
    fn hint(&self) -> String {
        format!(
            "All {} are released unless you enter fewer. Seats released go back to the national line \
             for any organisation to claim.",
            self.held
        )
    }
}

#[derive(Deserialize)]
pub struct ReleaseQuery {
    #[serde(default)]
    return_to: Option<String>,
}

/// The allocation the user may release seats of: their organisation's (any for an admin).
/// Another organisation's answers 404, as the API's release does.
async fn releasable(state: &AppState, user: &CurrentUser, id: i64) -> WebResult<Allocation> {
    let allocation = state.read(move |conn| db::ledger::get_allocation(conn, id)).await?;
    user.ensure_can_act_for(&allocation.organisation_code).map_err(|_| WebError::NotFound)?;
    Ok(allocation)
}

/// The organisation `code`, and the entitlement line `line` with its agreement: what a page about
/// seats of that line for that organisation names (a release, a seat request).
pub(crate) async fn organisation_and_line(
    state: &AppState,
    code: &str,
    line: i64,
) -> WebResult<(Organisation, Entitlement, Agreement)> {
    let code = code.to_owned();
    Ok(state
        .read(move |conn| {
            let entitlement = db::agreements::get_entitlement(conn, line)?;
            let agreement = db::agreements::get(conn, entitlement.agreement_id)?;
            Ok((db::organisations::get(conn, &code)?, entitlement, agreement))
        })
        .await?)
}

/// The release page, with what was typed and what to correct when `error` is set.
async fn render_page(
    state: &AppState,
    session: &Session,
    allocation: Allocation,
    quantity: String,
    return_to: String,
    error: Option<String>,
    status: StatusCode,
) -> WebResult<HttpResponse> {
    let (organisation, entitlement, agreement) =
        organisation_and_line(state, &allocation.organisation_code, allocation.entitlement_id).await?;
    let title = if error.is_some() { "Error: Release seats" } else { "Release seats" };
    let page = ReleasePage {
        chrome: Chrome::for_session(title, session, ""),
        allocation_id: allocation.id,
        organisation_code: organisation.code,
        organisation_name: organisation.name,
        product: entitlement.product,
        agreement_id: agreement.id,
        agreement_reference: agreement.reference,
        held: counted(allocation.quantity, "seat", "seats"),
        claimed_on: long_date(allocation.created_at.date()),
        reference: allocation.reference,
        quantity,
        return_to,
        error,
    };
    render(status, &page)
}

/// Asks how many seats of an allocation to release.
pub async fn release_page(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<i64>,
    query: web::Query<ReleaseQuery>,
) -> WebResult<HttpResponse> {
    let user = session.require::<AdminOrOfficer>()?;
    let allocation = releasable(&state, user, id.into_inner()).await?;
    let back = local_path(query.return_to.as_deref());
    let all = count(allocation.quantity);
    render_page(&state, &session, allocation, all, back, None, StatusCode::OK).await
}

#[derive(Deserialize)]
pub struct ReleaseForm {
    /// Empty releases every seat (as a form sent without the field did before the page existed).
    #[serde(default)]
    quantity: String,
    #[serde(default)]
    return_to: String,
}

/// The seats a person typed to release, out of `held`: none typed means all of them (`None`);
/// else the message to show beside the field.
fn seats_to_release(typed: &str, held: i64) -> Result<Option<i64>, String> {
    if typed.trim().is_empty() {
        return Ok(None);
    }
    match whole_number(typed).filter(|quantity| *quantity >= 1) {
        Some(quantity) if quantity > held => {
            Err(format!("Enter {} or fewer: that is what this allocation holds", count(held)))
        }
        Some(quantity) => Ok(Some(quantity)),
        None => Err("Enter the number of seats to release as a whole number, like 5 or 1,200".to_owned()),
    }
}

/// Releases seats through `db::ledger::release`, as `POST /v1/allocations/{id}/release` does;
/// a number it cannot read, or more seats than are held, shows the page again with the message.
pub async fn release(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    submitted: Submitted<ReleaseForm>,
) -> WebResult<HttpResponse> {
    let (allocation_id, session, form) = (id.into_inner(), submitted.session, submitted.form);
    let user = session.require::<AdminOrOfficer>()?;
    let allocation = releasable(&state, user, allocation_id).await?;
    let back = local_path(Some(&form.return_to));
    let quantity = match seats_to_release(&form.quantity, allocation.quantity) {
        Ok(quantity) => quantity,
        Err(error) => {
            let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
            return render_page(
                &state,
                &session,
                allocation,
                form.quantity,
                back,
                Some(error),
                unprocessable,
            )
            .await;
        }
    };
    let actor = user.actor();
    let released = quantity.unwrap_or(allocation.quantity);
    if let Err(error) = state.run(move |db| db::ledger::release(db, &actor, allocation_id, quantity)).await {
        // Released meanwhile (another tab, another officer): the page again, as it stands now.
        let refused = Refusal::of(error)?;
        let now = releasable(&state, user, allocation_id).await?;
        return render_page(&state, &session, now, form.quantity, back, Some(refused.detail), refused.status)
            .await;
    }
    let back = back.split('#').next().unwrap_or("/").to_owned();
    let separator = if back.contains('?') { '&' } else { '?' };
    Ok(see_other(&format!("{back}{separator}notice=released&n={released}")))
}
