//! "Needs your attention" on the start page: `db::attention` in words, each linked to the page
//! where it is dealt with. An organisation's people see their organisation's; the national team
//! sees its own decisions; auditors, who act on nothing, see none.

use chrono::NaiveDateTime;
use db::attention::Attention;
use db::users::Role;

use crate::auth::CurrentUser;
use crate::state::AppState;
use crate::web::{WebResult, count, counted, date_time, long_date};

pub struct AttentionView {
    pub text: String,
    /// Where it is dealt with; none when no page does it (seat requests are decided through the API).
    pub href: Option<String>,
    /// Past its date: shown with a red "Overdue" tag.
    pub overdue: bool,
}

/// What `user` must attend to at `now`.
pub async fn attention_for(
    state: &AppState,
    user: &CurrentUser,
    now: NaiveDateTime,
) -> WebResult<Vec<AttentionView>> {
    let organisation = user.organisation().map(str::to_owned);
    let found = match (organisation, user.role()) {
        (Some(code), _) => {
            let items = state.read({
                let code = code.clone();
                move |conn| db::attention::for_organisation(conn, &code, now)
            });
            items.await?.into_iter().map(|item| in_words(item, Some(&code), now)).collect()
        }
        (None, Role::Admin) => {
            let items = state.read(move |conn| db::attention::for_the_national_team(conn, now)).await?;
            items.into_iter().map(|item| in_words(item, None, now)).collect()
        }
        (None, _) => Vec::new(),
    };
    Ok(found)
}

fn in_words(item: Attention, organisation: Option<&str>, now: NaiveDateTime) -> AttentionView {
    let own = organisation.unwrap_or_default();
    let (text, href, overdue) = match item {
        Attention::AcknowledgementOverdue { advisory_id, reference, due } => (
            format!("Acknowledge advisory {reference}: it was due by {}", date_time(due)),
            Some(format!("/organisations/{own}/advisories/{advisory_id}")),
            true,
        ),
        Attention::AcknowledgementDue { advisory_id, reference, due } => (
            format!("Acknowledge advisory {reference} by {}", date_time(due)),
            Some(format!("/organisations/{own}/advisories/{advisory_id}")),
            false,
        ),
        Attention::ObligationDue { description, due_on } => {
            let overdue = due_on < now.date();
            let when = if overdue { "was due by" } else { "is due by" };
            (
                format!("An obligation {when} {}: {description}", long_date(due_on)),
                Some(format!("/organisations/{own}")),
                overdue,
            )
        }
        Attention::RiskAcceptanceExpiring { product_id, product, expires_on } => (
            format!("Your acceptance of the risk of running {product} ends on {}", long_date(expires_on)),
            Some(format!("/products/{product_id}")),
            false,
        ),
        Attention::SeatRequestsWaiting { count: waiting } if organisation.is_some() => (
            format!(
                "{} waiting for the national team's decision",
                counted(waiting, "seat request", "seat requests")
            ),
            Some(format!("/organisations/{own}")),
            false,
        ),
        Attention::SeatRequestsWaiting { count: waiting } => (
            format!("{} waiting for your decision", counted(waiting, "seat request", "seat requests")),
            None,
            false,
        ),
        Attention::LineNearlyFull { agreement_id, product, allocated, cap } => (
            format!("{product}: {} of {} seats allocated", count(allocated), count(cap)),
            Some(format!("/agreements/{agreement_id}")),
            allocated >= cap,
        ),
        Attention::ExtensionDecisionDue { agreement_id, reference, months, decide_by } => (
            format!(
                "Decide on the {months}-month extension of agreement {reference} by {}",
                long_date(decide_by)
            ),
            Some(format!("/agreements/{agreement_id}")),
            false,
        ),
    };
    AttentionView { text, href, overdue }
}
