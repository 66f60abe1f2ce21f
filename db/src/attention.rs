//! What needs someone's attention today, for the start page (issue 22): for an organisation,
//! advisories to acknowledge, obligations and risk acceptances falling due, and its seat requests
//! waiting for a decision; for the national team, the seat and product requests it must decide, lines nearly
//! full, and extension decisions due. The reminders (`reminders`) tell people of each occasion
//! once, as it arises; this is the list as it stands, whether or not anyone was told.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use crate::advisories::{self, ResponseStatus};
use crate::connection::DbConnection;
use crate::error::DbResult;
use crate::products::label;
use crate::reminders::{
    EXTENSION_DECISION_DAYS, OBLIGATION_DUE_DAYS, extension_decisions_due, open_obligations_due,
    risk_acceptances_ending, within,
};
use crate::schema::{agreements, entitlements, products, seat_requests};
use crate::vocabulary::{AgreementStatus, SeatRequestStatus};

/// A product's name, edition and version, as [`label`] joins them.
type ProductWords = (String, String, String);
const PRODUCT_WORDS: (products::name, products::edition, products::version) =
    (products::name, products::edition, products::version);

/// Advisories published longer ago than this are not looked at: reading an advisory's exposure
/// walks every organisation that holds what it names, and the start page is read often. Their
/// 48-hour deadlines passed long before; the organisation page still lists every one.
pub const ADVISORY_LOOKBACK_DAYS: i64 = 90;

/// A line is nearly full when this share of its cap (in tenths) is allocated.
pub const NEARLY_FULL_TENTHS: i64 = 9;

/// One thing to attend to, most pressing kinds first (the order [`for_organisation`] and
/// [`for_the_national_team`] return them in).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attention {
    /// An advisory the organisation should have acknowledged by `due`.
    AcknowledgementOverdue { advisory_id: i64, reference: String, due: NaiveDateTime },
    /// An advisory the organisation must acknowledge by `due`.
    AcknowledgementDue { advisory_id: i64, reference: String, due: NaiveDateTime },
    /// An obligation the organisation took on with seats, due by `due_on`; `overdue` once that
    /// day has passed.
    ObligationDue { description: String, due_on: NaiveDate, overdue: bool },
    /// The organisation's acceptance of running an unsupported product ends on `expires_on`.
    RiskAcceptanceExpiring { product_id: i64, product: String, expires_on: NaiveDate },
    /// Requests for seats on lines that need approval, not yet decided.
    SeatRequestsWaiting { count: i64 },
    /// Requests for products the catalogue does not list, not yet decided.
    ProductRequestsWaiting { count: i64 },
    /// A capped line with at least nine tenths of its seats allocated.
    LineNearlyFull { agreement_id: i64, product: String, allocated: i64, cap: i64 },
    /// An agreement's extension option must be taken up or let go by `decide_by`; `overdue`
    /// once that day has passed with nothing decided.
    ExtensionDecisionDue {
        agreement_id: i64,
        reference: String,
        months: i32,
        decide_by: NaiveDate,
        overdue: bool,
    },
}

/// What organisation `code` must attend to at `now`.
pub fn for_organisation(conn: &mut DbConnection, code: &str, now: NaiveDateTime) -> DbResult<Vec<Attention>> {
    let code = code.to_uppercase();
    let today = now.date();
    let mut found = Vec::new();
    let since = now - chrono::Duration::days(ADVISORY_LOOKBACK_DAYS);
    for standing in advisories::report_since(conn, Some(&code), Some(since), now)? {
        let Some(due) = standing.acknowledge_by else { continue };
        let (advisory_id, reference) = (standing.advisory_id, standing.reference);
        match standing.status {
            ResponseStatus::Overdue => {
                found.push(Attention::AcknowledgementOverdue { advisory_id, reference, due })
            }
            ResponseStatus::NotAcknowledged => {
                found.push(Attention::AcknowledgementDue { advisory_id, reference, due })
            }
            ResponseStatus::Acknowledged | ResponseStatus::Closed => {}
        }
    }
    let obligations = open_obligations_due(conn, Some(&code), None, within(today, OBLIGATION_DUE_DAYS))?;
    found.extend(obligations.into_iter().map(|obligation| Attention::ObligationDue {
        overdue: obligation.due_on < today,
        description: obligation.description,
        due_on: obligation.due_on,
    }));
    found.extend(risk_acceptances_ending(conn, Some(&code), today)?.into_iter().map(|acceptance| {
        Attention::RiskAcceptanceExpiring {
            product_id: acceptance.product_id,
            product: acceptance.product,
            expires_on: acceptance.expires_on,
        }
    }));
    let waiting: i64 = seat_requests::table
        .filter(seat_requests::organisation_code.eq(&code))
        .filter(seat_requests::status.eq(SeatRequestStatus::Pending))
        .count()
        .get_result(conn)?;
    if waiting > 0 {
        found.push(Attention::SeatRequestsWaiting { count: waiting });
    }
    Ok(found)
}

/// What the national team must attend to at `now`.
pub fn for_the_national_team(conn: &mut DbConnection, now: NaiveDateTime) -> DbResult<Vec<Attention>> {
    let today = now.date();
    let mut found = Vec::new();
    let waiting: i64 = seat_requests::table
        .filter(seat_requests::status.eq(SeatRequestStatus::Pending))
        .count()
        .get_result(conn)?;
    if waiting > 0 {
        found.push(Attention::SeatRequestsWaiting { count: waiting });
    }
    let products_asked_for = crate::product_requests::waiting_count(conn)?;
    if products_asked_for > 0 {
        found.push(Attention::ProductRequestsWaiting { count: products_asked_for });
    }
    // Caps are at most MAX_SEATS_PER_LINE (10^9), and a line never holds more than its cap
    // allows, so neither product can overflow. A cap of 0 is a line closed to claims, not one
    // nearly full.
    let nearly_full: Vec<(i64, ProductWords, i64, i64)> = entitlements::table
        .inner_join(products::table)
        .inner_join(agreements::table)
        .filter(agreements::status.eq(AgreementStatus::Active))
        .filter(entitlements::seat_cap.gt(0))
        .filter(entitlements::ends_on.is_null().or(entitlements::ends_on.ge(today)))
        .filter(
            (entitlements::seats_allocated * 10)
                .ge(entitlements::seat_cap.assume_not_null() * NEARLY_FULL_TENTHS),
        )
        .order(entitlements::id)
        .select((
            entitlements::agreement_id,
            PRODUCT_WORDS,
            entitlements::seats_allocated,
            entitlements::seat_cap.assume_not_null(),
        ))
        .load(conn)?;
    found.extend(nearly_full.into_iter().map(|(agreement_id, (name, edition, version), allocated, cap)| {
        Attention::LineNearlyFull { agreement_id, product: label(&name, &edition, &version), allocated, cap }
    }));
    let decisions = extension_decisions_due(conn, today, None, within(today, EXTENSION_DECISION_DAYS))?;
    found.extend(decisions.into_iter().map(|option| Attention::ExtensionDecisionDue {
        agreement_id: option.agreement_id,
        reference: option.reference,
        months: option.months,
        overdue: option.decide_by < today,
        decide_by: option.decide_by,
    }));
    Ok(found)
}
