//! "Needs your attention" on the start page: `db::attention` in words, each linked to the page
//! where it is dealt with. A procurement officer sees their trust's; the national team its own
//! decisions (also an admin recorded against a trust); exemplar authors and auditors, who act on
//! none of these, see no list.

use chrono::NaiveDateTime;
use db::attention::Attention;
use db::users::Role;

use crate::auth::CurrentUser;
use crate::state::AppState;
use crate::web::{WebResult, count, counted, date_time, long_date};

pub struct AttentionView {
    pub text: String,
    /// The page where it is dealt with.
    pub href: String,
    /// A tag before the text, and its NHS.UK colour: "Overdue" (red) for what is past its date,
    /// "Full" (orange) for a line with no seats left.
    pub tag: Option<(&'static str, &'static str)>,
}

const OVERDUE: Option<(&str, &str)> = Some(("Overdue", "red"));
const FULL: Option<(&str, &str)> = Some(("Full", "orange"));

/// What `user` must attend to at `now`; `None` for those who get no list (see the module
/// documentation).
pub async fn attention_for(
    state: &AppState,
    user: &CurrentUser,
    now: NaiveDateTime,
) -> WebResult<Option<Vec<AttentionView>>> {
    let found = match (user.role(), user.organisation().map(str::to_owned)) {
        (Role::Admin, _) => {
            let items = state.read(move |conn| db::attention::for_the_national_team(conn, now)).await?;
            items.into_iter().map(|item| in_words(item, None)).collect()
        }
        (Role::Officer, Some(code)) => {
            let items = state.read({
                let code = code.clone();
                move |conn| db::attention::for_organisation(conn, &code, now)
            });
            items.await?.into_iter().map(|item| in_words(item, Some(&code))).collect()
        }
        _ => return Ok(None),
    };
    Ok(Some(found))
}

fn in_words(item: Attention, organisation: Option<&str>) -> AttentionView {
    let own = organisation.unwrap_or_default();
    let (text, href, tag) = match item {
        Attention::AcknowledgementOverdue { advisory_id, reference, due } => (
            format!("Acknowledge advisory {reference}: it was due by {}", date_time(due)),
            format!("/organisations/{own}/advisories/{advisory_id}"),
            OVERDUE,
        ),
        Attention::AcknowledgementDue { advisory_id, reference, due } => (
            format!("Acknowledge advisory {reference} by {}", date_time(due)),
            format!("/organisations/{own}/advisories/{advisory_id}"),
            None,
        ),
        Attention::ObligationDue { description, due_on, overdue } => {
            let when = if overdue { "was due by" } else { "is due by" };
            (
                format!("An obligation {when} {}: {description}", long_date(due_on)),
                format!("/organisations/{own}"),
                if overdue { OVERDUE } else { None },
            )
        }
        Attention::RiskAcceptanceExpiring { product, expires_on, .. } => (
            format!("Your acceptance of the risk of running {product} ends on {}", long_date(expires_on)),
            // The organisation page lists its risk acceptances, each linked to its product.
            format!("/organisations/{own}#risk-acceptances"),
            None,
        ),
        Attention::SeatRequestsWaiting { count: waiting } if organisation.is_some() => (
            format!(
                "{} waiting for the national team's decision",
                counted(waiting, "seat request", "seat requests")
            ),
            "/seat-requests?status=pending".to_owned(),
            None,
        ),
        Attention::SeatRequestsWaiting { count: waiting } => (
            format!("{} waiting for your decision", counted(waiting, "seat request", "seat requests")),
            "/seat-requests?status=pending".to_owned(),
            None,
        ),
        Attention::ProductRequestsWaiting { count: waiting } => (
            format!("{} waiting", counted(waiting, "product request", "product requests")),
            "/product-requests?status=waiting".to_owned(),
            None,
        ),
        Attention::LineNearlyFull { agreement_id, product, allocated, cap } => (
            format!("{product}: {} of {} seats allocated", count(allocated), count(cap)),
            format!("/agreements/{agreement_id}"),
            if allocated >= cap { FULL } else { None },
        ),
        Attention::ExtensionDecisionDue { agreement_id, reference, months, decide_by, overdue } => (
            format!(
                "Decide on the {months}-month extension of agreement {reference} by {}",
                long_date(decide_by)
            ),
            format!("/agreements/{agreement_id}"),
            if overdue { OVERDUE } else { None },
        ),
    };
    AttentionView { text, href, tag }
}
