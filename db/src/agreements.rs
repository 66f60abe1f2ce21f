//! Central licence agreements and their entitlement lines, with the obligations a claiming
//! organisation takes on. Ended agreements are kept and listed on request; nothing is deleted.
//! An agreement carries its commercial record (value, currency, reseller, framework lot, initial
//! term, notices) and its options to extend, each with the date by which it must be decided.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use serde::Serialize;

use crate::audit::{Actor, Audited, Change, now};
use crate::connection::{BINDS_PER_QUERY, Database, DbConnection};
use crate::error::{DbError, DbResult};
use crate::page::{Page, PageRequest, Precondition};
use crate::schema::{agreement_extensions, agreements, entitlements, obligations, products, suppliers};
use crate::stored::{JsonText, KindList};
use crate::vocabulary::{
    AgreementStatus, ExtensionDecision, FundingModel, Metric, NhsmailService, OrganisationKind,
    OverAllocationPolicy, Tier, join_kinds,
};

/// The most seats one entitlement line may hold in all, capped or not (and the largest cap).
/// A hundred times the NHS workforce; the bound keeps every total the ledger and the reports
/// add up far inside 64 bits (SQLite turns an overflowing integer into a float; PostgreSQL fails).
pub const MAX_SEATS_PER_LINE: i64 = 1_000_000_000;

/// The largest value an agreement may hold, in the currency's minor unit: 10^14 pence is a
/// thousand billion pounds (the 2023 call-off is 7.745 * 10^10 pence). Values are integers so
/// they add up exactly; at this bound 92,000 agreements still sum inside 64 bits.
pub const MAX_VALUE_MINOR: i64 = 100_000_000_000_000;
/// The longest initial term or extension, in months (a hundred years).
pub const MAX_TERM_MONTHS: i32 = 1200;
/// The most notices and extension options one agreement lists.
pub const MAX_NOTICES: usize = 50;
/// The most characters a notice's address holds after `http://` or `https://`.
pub const MAX_NOTICE_CHARS: usize = 1990;
/// The longest buyer's name.
pub const MAX_BUYER_CHARS: usize = 200;
pub const MAX_EXTENSIONS: usize = 20;

/// An agreement's own columns, typed as [`Agreement`] holds them. It stays beside
/// `Agreement` because the agreement also carries what its table does not (the supplier's and
/// reseller's names and the extension options, read for a whole batch at once), and diesel's
/// derives have no field they leave out; `Agreement` is also the wire schema, so the columns
/// cannot be nested in it without changing the API document.
#[derive(Queryable, Selectable)]
#[diesel(table_name = agreements)]
struct AgreementRow {
    id: i64,
    supplier_id: i64,
    reference: String,
    title: String,
    framework_reference: Option<String>,
    starts_on: NaiveDate,
    ends_on: Option<NaiveDate>,
    funding_model: FundingModel,
    status: AgreementStatus,
    #[diesel(deserialize_as = KindList)]
    eligible_kinds: Vec<OrganisationKind>,
    source: Option<String>,
    revision: i64,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    value_minor: Option<i64>,
    currency: String,
    reseller_id: Option<i64>,
    framework_lot: Option<String>,
    initial_term_months: Option<i32>,
    #[diesel(deserialize_as = JsonText<Vec<String>>)]
    notice_urls: Vec<String>,
    commercial_source: Option<String>,
    buyer: Option<String>,
}

/// An option to extend an agreement, and what was decided on it.
#[derive(Clone, Debug, Serialize, PartialEq, Queryable, Selectable)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[diesel(table_name = agreement_extensions)]
pub struct ExtensionOption {
    pub id: i64,
    /// How long the extension runs, in months.
    pub months: i32,
    /// The date by which the option must be decided.
    pub decide_by: NaiveDate,
    /// Null while undecided.
    pub decision: Option<ExtensionDecision>,
    /// The date the decision was taken; null while undecided, or where no source publishes it.
    pub decided_on: Option<NaiveDate>,
    pub source: Option<String>,
}

impl ExtensionOption {
    fn fields(&self) -> NewExtensionOption {
        NewExtensionOption {
            months: self.months,
            decide_by: self.decide_by,
            decision: self.decision,
            decided_on: self.decided_on,
            source: self.source.clone(),
        }
    }
}

/// An extension option as written: on create, or as the whole new list on update.
#[derive(Clone, Debug, PartialEq, Serialize, Insertable)]
#[diesel(table_name = agreement_extensions)]
pub struct NewExtensionOption {
    pub months: i32,
    pub decide_by: NaiveDate,
    pub decision: Option<ExtensionDecision>,
    pub decided_on: Option<NaiveDate>,
    pub source: Option<String>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Agreement {
    pub id: i64,
    pub supplier_id: i64,
    pub supplier: String,
    /// The catalogue's reference for the agreement.
    pub reference: String,
    pub title: String,
    /// The framework it is called off from, e.g. the CCS framework `RM6068`.
    pub framework_reference: Option<String>,
    pub starts_on: NaiveDate,
    pub ends_on: Option<NaiveDate>,
    pub funding_model: FundingModel,
    pub status: AgreementStatus,
    /// Expired or terminated: kept for history, left out of lists unless `include_ended=true`.
    pub ended: bool,
    pub eligible_kinds: Vec<OrganisationKind>,
    pub source: Option<String>,
    /// The agreement's value in the currency's minor unit (pence for GBP); null when not published.
    #[cfg_attr(
        feature = "openapi",
        schema(minimum = 0, maximum = 100_000_000_000_000_i64, example = 77_450_000_000_i64)
    )]
    pub value_minor: Option<i64>,
    /// ISO 4217 code of the value's currency.
    #[cfg_attr(feature = "openapi", schema(example = "GBP", pattern = "^[A-Z]{3}$"))]
    pub currency: String,
    /// The reseller the agreement was awarded to, when it is not the supplier itself.
    pub reseller_id: Option<i64>,
    pub reseller: Option<String>,
    /// The framework lot it is called off from.
    pub framework_lot: Option<String>,
    /// The initial term, in months, before any extension.
    pub initial_term_months: Option<i32>,
    /// Addresses of its published notices (contract, award, variation).
    pub notice_urls: Vec<String>,
    /// The public documents behind the commercial facts.
    pub commercial_source: Option<String>,
    /// The contracting authority that bought it (for example NHS Digital, or the Crown
    /// Commercial Service for the whole public sector); null when the record does not say.
    #[cfg_attr(feature = "openapi", schema(max_length = 200, example = "NHS England"))]
    pub buyer: Option<String>,
    /// Options to extend, oldest decision date first.
    pub extension_options: Vec<ExtensionOption>,
    #[serde(skip)]
    pub revision: i64,
    #[serde(serialize_with = "crate::time::utc")]
    pub created_at: NaiveDateTime,
    #[serde(serialize_with = "crate::time::utc")]
    pub updated_at: NaiveDateTime,
}

impl Agreement {
    /// The options still undecided whose decision date is on or before `until` (overdue ones included).
    pub fn decisions_due(&self, until: NaiveDate) -> impl Iterator<Item = &ExtensionOption> {
        self.extension_options.iter().filter(move |o| o.decision.is_none() && o.decide_by <= until)
    }

    fn fields(&self) -> AgreementFields {
        AgreementFields {
            supplier_id: self.supplier_id,
            reference: self.reference.clone(),
            title: self.title.clone(),
            framework_reference: self.framework_reference.clone(),
            starts_on: self.starts_on,
            ends_on: self.ends_on,
            funding_model: self.funding_model,
            status: self.status,
            eligible_kinds: self.eligible_kinds.clone(),
            source: self.source.clone(),
            value_minor: self.value_minor,
            currency: self.currency.clone(),
            reseller_id: self.reseller_id,
            framework_lot: self.framework_lot.clone(),
            initial_term_months: self.initial_term_months,
            notice_urls: self.notice_urls.clone(),
            commercial_source: self.commercial_source.clone(),
            buyer: self.buyer.clone(),
            extension_options: self.extension_options.iter().map(ExtensionOption::fields).collect(),
        }
    }
}

const ENDED: [AgreementStatus; 2] = [AgreementStatus::Expired, AgreementStatus::Terminated];

fn to_agreement(
    row: AgreementRow,
    supplier: String,
    reseller: Option<String>,
    extension_options: Vec<ExtensionOption>,
) -> Agreement {
    Agreement {
        id: row.id,
        supplier_id: row.supplier_id,
        supplier,
        reference: row.reference,
        title: row.title,
        framework_reference: row.framework_reference,
        starts_on: row.starts_on,
        ends_on: row.ends_on,
        funding_model: row.funding_model,
        ended: matches!(row.status, AgreementStatus::Expired | AgreementStatus::Terminated),
        status: row.status,
        eligible_kinds: row.eligible_kinds,
        source: row.source,
        value_minor: row.value_minor,
        currency: row.currency,
        reseller_id: row.reseller_id,
        reseller,
        framework_lot: row.framework_lot,
        initial_term_months: row.initial_term_months,
        notice_urls: row.notice_urls,
        commercial_source: row.commercial_source,
        buyer: row.buyer,
        extension_options,
        revision: row.revision,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

/// Agreements from their rows, with resellers and extension options read in two statements
/// for the whole batch (per 10,000 agreements), never one per row.
fn to_agreements(conn: &mut DbConnection, rows: Vec<(AgreementRow, String)>) -> DbResult<Vec<Agreement>> {
    let mut resellers = std::collections::HashMap::new();
    let mut options: std::collections::HashMap<i64, Vec<ExtensionOption>> = std::collections::HashMap::new();
    let ids: Vec<i64> = rows.iter().map(|(row, _)| row.id).collect();
    let mut reseller_ids: Vec<i64> = rows.iter().filter_map(|(row, _)| row.reseller_id).collect();
    reseller_ids.sort_unstable();
    reseller_ids.dedup();
    for chunk in reseller_ids.chunks(BINDS_PER_QUERY) {
        let found: Vec<(i64, String)> = suppliers::table
            .filter(suppliers::id.eq_any(chunk))
            .select((suppliers::id, suppliers::name))
            .load(conn)?;
        resellers.extend(found);
    }
    for chunk in ids.chunks(BINDS_PER_QUERY) {
        let found: Vec<(i64, ExtensionOption)> = agreement_extensions::table
            .filter(agreement_extensions::agreement_id.eq_any(chunk))
            .order((agreement_extensions::decide_by, agreement_extensions::id))
            .select((agreement_extensions::agreement_id, ExtensionOption::as_select()))
            .load(conn)?;
        for (agreement_id, option) in found {
            options.entry(agreement_id).or_default().push(option);
        }
    }
    Ok(rows
        .into_iter()
        .map(|(row, supplier)| {
            let reseller = row.reseller_id.and_then(|id| resellers.get(&id).cloned());
            let extension_options = options.remove(&row.id).unwrap_or_default();
            to_agreement(row, supplier, reseller, extension_options)
        })
        .collect())
}

#[derive(Debug, Default)]
pub struct AgreementFilter {
    pub supplier_id: Option<i64>,
    pub status: Option<AgreementStatus>,
    pub framework_reference: Option<String>,
    pub include_ended: bool,
    /// Only agreements with an undecided extension option due on or before this date.
    pub decision_due_by: Option<NaiveDate>,
    /// Case-insensitive substring of the reference or the title.
    pub q: Option<String>,
    pub order: AgreementOrder,
}

/// The order of a list of agreements. Each pages by its own key with the id after it, so a page
/// never skips or repeats one, whatever the order. A cursor other than [`AgreementOrder::Id`]'s
/// is `ID:key` (an id never holds `:`; the key may).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AgreementOrder {
    /// By id (the API's order): the cursor is the last id.
    #[default]
    Id,
    /// By reference, then id.
    Reference,
    /// By title without regard to case, then id.
    Title,
    /// By end date, the soonest first and those with no end date last, then id. The cursor's key
    /// is the date (`2026-03-31`), or empty for no end date.
    EndDate,
}

impl AgreementOrder {
    pub const ALL: [AgreementOrder; 4] =
        [AgreementOrder::Id, AgreementOrder::Reference, AgreementOrder::Title, AgreementOrder::EndDate];

    pub fn as_str(self) -> &'static str {
        match self {
            AgreementOrder::Id => "id",
            AgreementOrder::Reference => "reference",
            AgreementOrder::Title => "title",
            AgreementOrder::EndDate => "end_date",
        }
    }

    pub fn parse(text: &str) -> Option<AgreementOrder> {
        AgreementOrder::ALL.into_iter().find(|order| order.as_str() == text)
    }

    /// The cursor naming `agreement` as the last of a page.
    fn cursor(self, agreement: &Agreement) -> String {
        match self {
            AgreementOrder::Id => agreement.id.to_string(),
            AgreementOrder::Reference => format!("{}:{}", agreement.id, agreement.reference),
            AgreementOrder::Title => format!("{}:{}", agreement.id, agreement.title),
            AgreementOrder::EndDate => {
                format!("{}:{}", agreement.id, agreement.ends_on.map(|d| d.to_string()).unwrap_or_default())
            }
        }
    }
}

/// A cursor `ID:key` read as its id and key.
fn id_and_key(cursor: &str) -> DbResult<(i64, &str)> {
    let (id, key) = cursor.split_once(':').ok_or(DbError::InvalidCursor)?;
    Ok((id.parse().map_err(|_| DbError::InvalidCursor)?, key))
}

pub fn list(
    conn: &mut DbConnection,
    filter: &AgreementFilter,
    page: &PageRequest,
) -> DbResult<Page<Agreement>> {
    use crate::text_filter::{like_pattern, lower};
    let mut query = agreements::table
        .inner_join(suppliers::table)
        .select((AgreementRow::as_select(), suppliers::name))
        .into_boxed();
    if let Some(supplier) = filter.supplier_id {
        query = query.filter(agreements::supplier_id.eq(supplier));
    }
    if let Some(status) = filter.status {
        query = query.filter(agreements::status.eq(status));
    }
    if let Some(framework) = &filter.framework_reference {
        query = query.filter(agreements::framework_reference.eq(framework.clone()));
    }
    if !filter.include_ended && !filter.status.is_some_and(|s| ENDED.contains(&s)) {
        query = query.filter(agreements::status.ne_all(ENDED));
    }
    if let Some(due_by) = filter.decision_due_by {
        query = query.filter(
            agreements::id.eq_any(
                agreement_extensions::table
                    .filter(agreement_extensions::decision.is_null())
                    .filter(agreement_extensions::decide_by.le(due_by))
                    .select(agreement_extensions::agreement_id),
            ),
        );
    }
    if let Some(q) = &filter.q {
        let pattern = like_pattern(q);
        query = query.filter(
            lower(agreements::reference)
                .like(pattern.clone())
                .escape('\\')
                .or(lower(agreements::title).like(pattern).escape('\\')),
        );
    }
    query = match filter.order {
        AgreementOrder::Id => {
            if let Some(after) = page.after_id()? {
                query = query.filter(agreements::id.gt(after));
            }
            query.order(agreements::id)
        }
        AgreementOrder::Reference => {
            if let Some(cursor) = &page.cursor {
                let (id, reference) = id_and_key(cursor)?;
                query = query.filter(
                    agreements::reference
                        .gt(reference.to_owned())
                        .or(agreements::reference.eq(reference.to_owned()).and(agreements::id.gt(id))),
                );
            }
            query.order((agreements::reference, agreements::id))
        }
        AgreementOrder::Title => {
            if let Some(cursor) = &page.cursor {
                let (id, title) = id_and_key(cursor)?;
                // The database lowers both sides, so that the comparison is the one it orders by.
                query = query.filter(
                    lower(agreements::title)
                        .gt(lower(title.to_owned()))
                        .or(lower(agreements::title).eq(lower(title.to_owned())).and(agreements::id.gt(id))),
                );
            }
            query.order((lower(agreements::title), agreements::id))
        }
        AgreementOrder::EndDate => {
            if let Some(cursor) = &page.cursor {
                let (id, key) = id_and_key(cursor)?;
                query = match key {
                    "" => query.filter(agreements::ends_on.is_null().and(agreements::id.gt(id))),
                    date => {
                        let date: NaiveDate = date.parse().map_err(|_| DbError::InvalidCursor)?;
                        query.filter(
                            agreements::ends_on
                                .gt(date)
                                .or(agreements::ends_on.eq(date).and(agreements::id.gt(id)))
                                .or(agreements::ends_on.is_null()),
                        )
                    }
                };
            }
            // Those with no end date last: false orders before true on both engines.
            query.order((agreements::ends_on.is_null(), agreements::ends_on, agreements::id))
        }
    };
    let limit = page.limit();
    let rows: Vec<(AgreementRow, String)> = query.limit(limit + 1).load(conn)?;
    let items = to_agreements(conn, rows)?;
    Ok(Page::from_rows(items, limit, |a: &Agreement| filter.order.cursor(a)))
}

pub fn get(conn: &mut DbConnection, id: i64) -> DbResult<Agreement> {
    let row = agreements::table
        .inner_join(suppliers::table)
        .filter(agreements::id.eq(id))
        .select((AgreementRow::as_select(), suppliers::name))
        .first(conn)
        .optional()?
        .ok_or(DbError::NotFound("agreement"))?;
    to_agreements(conn, vec![row])?.pop().ok_or(DbError::NotFound("agreement"))
}

/// The agreements of `ids` that exist, ordered by id, in one statement (per 10,000 ids).
pub(crate) fn get_many(conn: &mut DbConnection, ids: &[i64]) -> DbResult<Vec<Agreement>> {
    let mut found = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(BINDS_PER_QUERY) {
        let rows: Vec<(AgreementRow, String)> = agreements::table
            .inner_join(suppliers::table)
            .filter(agreements::id.eq_any(chunk))
            .select((AgreementRow::as_select(), suppliers::name))
            .order(agreements::id)
            .load(conn)?;
        found.extend(to_agreements(conn, rows)?);
    }
    found.sort_by_key(|agreement| agreement.id);
    Ok(found)
}

#[derive(Debug, Clone, Serialize)]
pub struct AgreementFields {
    pub supplier_id: i64,
    pub reference: String,
    pub title: String,
    pub framework_reference: Option<String>,
    pub starts_on: NaiveDate,
    pub ends_on: Option<NaiveDate>,
    pub funding_model: FundingModel,
    pub status: AgreementStatus,
    pub eligible_kinds: Vec<OrganisationKind>,
    pub source: Option<String>,
    pub value_minor: Option<i64>,
    pub currency: String,
    pub reseller_id: Option<i64>,
    pub framework_lot: Option<String>,
    pub initial_term_months: Option<i32>,
    pub notice_urls: Vec<String>,
    pub commercial_source: Option<String>,
    pub buyer: Option<String>,
    pub extension_options: Vec<NewExtensionOption>,
}

/// Whether `code` has the shape of an ISO 4217 currency code (three capital letters).
pub fn is_currency_code(code: &str) -> bool {
    code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase())
}

/// Digits after the decimal point of `currency`'s minor unit (ISO 4217): none for the yen, the
/// won and the other zero-exponent currencies, three for the dinars and rials that have them, two
/// otherwise (the pound, the euro, the dollar).
pub fn minor_unit_digits(currency: &str) -> u32 {
    const NONE: [&str; 16] = [
        "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "VND", "VUV", "XAF",
        "XOF", "XPF",
    ];
    const THREE: [&str; 7] = ["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"];
    if NONE.contains(&currency) {
        0
    } else if THREE.contains(&currency) {
        3
    } else {
        2
    }
}

/// A value in minor units as whole major units and the rest: 77,450,000,000 pence is
/// (774,500,000, 0). Values are never negative (the table's CHECK).
pub fn major_units(value_minor: i64, currency: &str) -> (i64, i64) {
    let scale = 10_i64.pow(minor_unit_digits(currency));
    (value_minor / scale, value_minor % scale)
}

/// A rule an agreement's fields break, as [`problems`] lists them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AgreementProblem {
    ValueOutOfRange,
    NotACurrencyCode,
    TermOutOfRange,
    TooManyNotices,
    /// The notice's address, as given.
    NotAnAddress(String),
    BuyerLength,
    TooManyExtensions,
    ExtensionMonthsOutOfRange,
    DecidedOnWithoutDecision,
    NoReference,
    NoTitle,
    EndsBeforeStarts,
    NoEligibleKinds,
}

impl AgreementProblem {
    /// The refusal, in the API's words (which name its fields).
    pub fn detail(&self) -> String {
        use AgreementProblem::*;
        match self {
            ValueOutOfRange => format!("value_minor must be between 0 and {MAX_VALUE_MINOR}"),
            NotACurrencyCode => "currency must be an ISO 4217 code such as GBP".into(),
            TermOutOfRange => format!("initial_term_months must be between 1 and {MAX_TERM_MONTHS}"),
            TooManyNotices => format!("at most {MAX_NOTICES} notice_urls"),
            NotAnAddress(bad) => format!("notice_urls: {bad:?} is not an http(s) address"),
            BuyerLength => format!("buyer must be 1 to {MAX_BUYER_CHARS} characters"),
            TooManyExtensions => format!("at most {MAX_EXTENSIONS} extension_options"),
            ExtensionMonthsOutOfRange => {
                format!("an extension's months must be between 1 and {MAX_TERM_MONTHS}")
            }
            DecidedOnWithoutDecision => "an extension with decided_on needs a decision".into(),
            NoReference | NoTitle => "reference and title must not be empty".into(),
            EndsBeforeStarts => "ends_on is before starts_on".into(),
            NoEligibleKinds => "eligible_kinds must name at least one organisation kind".into(),
        }
    }
}

/// Whether `url` is an address a notice may have: `http://` or `https://`, then 1 to
/// [`MAX_NOTICE_CHARS`] characters with no white space.
fn is_notice_address(url: &str) -> bool {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://")).unwrap_or_default();
    (1..=MAX_NOTICE_CHARS).contains(&rest.chars().count()) && !rest.contains(char::is_whitespace)
}

/// Every rule `fields` break that the fields alone can tell: the one statement of the rules that
/// [`create`] and [`update`] refuse with (the first of them, so the API's message is the one it
/// always gave) and that the agreement pages list field by field. The supplier, the reseller, a
/// reference already taken and the move between statuses are checked against the database when
/// written.
pub fn problems(fields: &AgreementFields) -> Vec<AgreementProblem> {
    use AgreementProblem::*;
    let mut found = Vec::new();
    if fields.value_minor.is_some_and(|v| !(0..=MAX_VALUE_MINOR).contains(&v)) {
        found.push(ValueOutOfRange);
    }
    if !is_currency_code(&fields.currency) {
        found.push(NotACurrencyCode);
    }
    if fields.initial_term_months.is_some_and(|m| !(1..=MAX_TERM_MONTHS).contains(&m)) {
        found.push(TermOutOfRange);
    }
    if fields.notice_urls.len() > MAX_NOTICES {
        found.push(TooManyNotices);
    }
    if let Some(bad) = fields.notice_urls.iter().find(|u| !is_notice_address(u)) {
        found.push(NotAnAddress(bad.clone()));
    }
    if fields.buyer.as_deref().is_some_and(|b| !(1..=MAX_BUYER_CHARS).contains(&b.trim().chars().count())) {
        found.push(BuyerLength);
    }
    if fields.extension_options.len() > MAX_EXTENSIONS {
        found.push(TooManyExtensions);
    }
    // In the options' order, so that the first problem is the first option's.
    for option in &fields.extension_options {
        let broken = [
            (!(1..=MAX_TERM_MONTHS).contains(&option.months), ExtensionMonthsOutOfRange),
            (option.decided_on.is_some() && option.decision.is_none(), DecidedOnWithoutDecision),
        ];
        for (is_broken, problem) in broken {
            if is_broken && !found.contains(&problem) {
                found.push(problem);
            }
        }
    }
    if fields.reference.trim().is_empty() {
        found.push(NoReference);
    }
    if fields.title.trim().is_empty() {
        found.push(NoTitle);
    }
    if fields.ends_on.is_some_and(|end| end < fields.starts_on) {
        found.push(EndsBeforeStarts);
    }
    if fields.eligible_kinds.is_empty() {
        found.push(NoEligibleKinds);
    }
    found
}

impl AgreementFields {
    fn validate(&self) -> DbResult<()> {
        match problems(self).first() {
            Some(problem) => Err(DbError::Invalid(problem.detail())),
            None => Ok(()),
        }
    }

    /// The fields of `agreement` as they stand: what a change starts from.
    pub fn of(agreement: &Agreement) -> AgreementFields {
        agreement.fields()
    }

    /// Whether these fields, replacing `before`'s, take lines out of force: they end the
    /// agreement (expired or terminated), or bring its end date forward (or give it one).
    pub fn ends_sooner_than(&self, before: &Agreement) -> bool {
        let ends = ENDED.contains(&self.status) && !ENDED.contains(&before.status);
        let sooner = match (self.ends_on, before.ends_on) {
            (Some(new), Some(old)) => new < old,
            (Some(_), None) => true,
            (None, _) => false,
        };
        ends || sooner
    }
}

pub fn create(db: &Database, actor: &Actor, fields: AgreementFields) -> DbResult<Agreement> {
    db.write(actor, |conn| {
        let agreement = create_in(conn, &fields)?;
        let change = Change::new("agreement.create", "agreement", agreement.id).after(&agreement);
        Ok(Audited::one(agreement, change))
    })
}

/// [`create`] inside the caller's transaction, with the same checks: what seeding calls too, so
/// a shipped agreement passes the rules an admin's does.
pub(crate) fn create_in(conn: &mut DbConnection, fields: &AgreementFields) -> DbResult<Agreement> {
    fields.validate()?;
    let supplier: i64 =
        suppliers::table.filter(suppliers::id.eq(fields.supplier_id)).count().get_result(conn)?;
    if supplier == 0 {
        return Err(DbError::Invalid(format!("supplier {} does not exist", fields.supplier_id)));
    }
    check_reseller(conn, fields.reseller_id)?;
    let taken: i64 = agreements::table
        .filter(agreements::reference.eq(fields.reference.trim()))
        .count()
        .get_result(conn)?;
    if taken > 0 {
        return Err(DbError::Conflict(format!(
            "an agreement with reference {} exists",
            fields.reference.trim()
        )));
    }
    let stamp = now();
    let id: i64 = diesel::insert_into(agreements::table)
        .values((
            fields.columns()?,
            agreements::supplier_id.eq(fields.supplier_id),
            agreements::reference.eq(fields.reference.trim()),
            agreements::created_at.eq(stamp),
            agreements::updated_at.eq(stamp),
        ))
        .returning(agreements::id)
        .get_result(conn)?;
    insert_extensions(conn, id, &fields.extension_options)?;
    get(conn, id)
}

fn check_reseller(conn: &mut DbConnection, reseller_id: Option<i64>) -> DbResult<()> {
    if let Some(reseller) = reseller_id {
        let found: i64 = suppliers::table.filter(suppliers::id.eq(reseller)).count().get_result(conn)?;
        if found == 0 {
            return Err(DbError::Invalid(format!("reseller {reseller} is not a known supplier")));
        }
    }
    Ok(())
}

/// The columns an agreement's create and update both write, from validated fields. A `None`
/// is written as NULL, so an update clears what the fields no longer hold.
#[derive(Insertable, AsChangeset)]
#[diesel(table_name = agreements, treat_none_as_null = true)]
struct AgreementColumns<'a> {
    title: &'a str,
    framework_reference: Option<&'a str>,
    starts_on: NaiveDate,
    ends_on: Option<NaiveDate>,
    funding_model: FundingModel,
    status: AgreementStatus,
    eligible_kinds: String,
    source: Option<&'a str>,
    value_minor: Option<i64>,
    currency: &'a str,
    reseller_id: Option<i64>,
    framework_lot: Option<&'a str>,
    initial_term_months: Option<i32>,
    notice_urls: String,
    commercial_source: Option<&'a str>,
    buyer: Option<&'a str>,
}

impl AgreementFields {
    fn columns(&self) -> DbResult<AgreementColumns<'_>> {
        Ok(AgreementColumns {
            title: self.title.trim(),
            framework_reference: self.framework_reference.as_deref(),
            starts_on: self.starts_on,
            ends_on: self.ends_on,
            funding_model: self.funding_model,
            status: self.status,
            eligible_kinds: join_kinds(&self.eligible_kinds),
            source: self.source.as_deref(),
            value_minor: self.value_minor,
            currency: &self.currency,
            reseller_id: self.reseller_id,
            framework_lot: self.framework_lot.as_deref(),
            initial_term_months: self.initial_term_months,
            notice_urls: serde_json::to_string(&self.notice_urls)
                .map_err(|e| DbError::Internal(format!("notice_urls: {e}")))?,
            commercial_source: self.commercial_source.as_deref(),
            buyer: self.buyer.as_deref().map(str::trim),
        })
    }
}

pub(crate) fn insert_extensions(
    conn: &mut DbConnection,
    agreement_id: i64,
    options: &[NewExtensionOption],
) -> DbResult<()> {
    for option in options {
        diesel::insert_into(agreement_extensions::table)
            .values((agreement_extensions::agreement_id.eq(agreement_id), option))
            .execute(conn)?;
    }
    Ok(())
}

/// Status moves forward only: draft to active or terminated; active to expired or terminated.
pub fn status_change_allowed(from: AgreementStatus, to: AgreementStatus) -> bool {
    use AgreementStatus::*;
    from == to
        || matches!(
            (from, to),
            (Draft, Active) | (Draft, Terminated) | (Active, Expired) | (Active, Terminated)
        )
}

pub fn update(
    db: &Database,
    actor: &Actor,
    id: i64,
    change: impl FnOnce(&mut AgreementFields),
    precondition: Precondition,
) -> DbResult<Agreement> {
    db.write(actor, |conn| {
        let before = get(conn, id)?;
        precondition.check(before.revision)?;
        let after = update_in(conn, &before, change)?;
        Ok(Audited::one(
            after.clone(),
            Change::new("agreement.update", "agreement", id).before(&before).after(&after),
        ))
    })
}

/// [`update`] of the agreement `before` inside the caller's transaction, with the same checks
/// (seeding ends a shipped agreement this way, after giving it its lines).
pub(crate) fn update_in(
    conn: &mut DbConnection,
    before: &Agreement,
    change: impl FnOnce(&mut AgreementFields),
) -> DbResult<Agreement> {
    let id = before.id;
    let mut fields = before.fields();
    change(&mut fields);
    fields.validate()?;
    check_reseller(conn, fields.reseller_id)?;
    if !status_change_allowed(before.status, fields.status) {
        return Err(DbError::Conflict(format!(
            "an agreement cannot go from {} to {}",
            before.status, fields.status
        )));
    }
    diesel::update(agreements::table.find(id))
        .set((
            fields.columns()?,
            agreements::revision.eq(agreements::revision + 1),
            agreements::updated_at.eq(now()),
        ))
        .execute(conn)?;
    // The options are replaced only when they changed, so their ids stay put otherwise.
    if before.fields().extension_options != fields.extension_options {
        diesel::delete(agreement_extensions::table.filter(agreement_extensions::agreement_id.eq(id)))
            .execute(conn)?;
        insert_extensions(conn, id, &fields.extension_options)?;
    }
    get(conn, id)
}

/// An entitlement line's own columns, typed as [`Entitlement`] holds them. It stays beside
/// `Entitlement` for the reasons [`AgreementRow`] does: the line also carries its product's
/// label, the seats worked out from the cap, and its obligations, read for a whole batch at once.
#[derive(Queryable, Selectable)]
#[diesel(table_name = entitlements)]
struct EntitlementRow {
    id: i64,
    agreement_id: i64,
    product_id: i64,
    tier: Tier,
    metric: Metric,
    seat_cap: Option<i64>,
    seats_allocated: i64,
    over_allocation_policy: OverAllocationPolicy,
    #[diesel(deserialize_as = KindList)]
    eligible_kinds: Vec<OrganisationKind>,
    starts_on: NaiveDate,
    ends_on: Option<NaiveDate>,
    how_to_claim: Option<String>,
    source: Option<String>,
    revision: i64,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    requires_approval: bool,
    per_organisation_cap: Option<i64>,
    nhsmail_service: Option<NhsmailService>,
}

#[derive(Clone, Debug, Serialize, Queryable, Selectable, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[diesel(table_name = obligations)]
pub struct Obligation {
    pub id: i64,
    #[serde(skip)]
    pub entitlement_id: i64,
    #[cfg_attr(feature = "openapi", schema(example = "Move all devices to Windows 10"))]
    pub description: String,
    pub due_on: Option<NaiveDate>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Entitlement {
    pub id: i64,
    pub agreement_id: i64,
    pub product_id: i64,
    /// The product's name, edition and version.
    pub product: String,
    pub tier: Tier,
    pub metric: Metric,
    /// The national seat cap; null when uncapped.
    pub seat_cap: Option<i64>,
    /// Seats held by live allocations.
    pub seats_allocated: i64,
    /// Seats left under the cap (never negative); null when uncapped.
    pub seats_remaining: Option<i64>,
    /// Seats allocated beyond the cap, flagged for true-up (only under `allow_and_flag`).
    pub seats_over_cap: i64,
    pub over_allocation_policy: OverAllocationPolicy,
    pub eligible_kinds: Vec<OrganisationKind>,
    pub starts_on: NaiveDate,
    pub ends_on: Option<NaiveDate>,
    pub how_to_claim: Option<String>,
    /// A claim on this line is held as a seat request until the national team approves it; it
    /// takes no seats before then.
    pub requires_approval: bool,
    /// The most seats one organisation may hold of this line; null when only the line's cap applies.
    pub per_organisation_cap: Option<i64>,
    /// Offered only to organisations taking this NHSmail service on the day asked about (the
    /// national provision of that service); null when the service does not matter.
    pub nhsmail_service: Option<NhsmailService>,
    /// What a claiming organisation takes on, each with its deadline.
    pub obligations: Vec<Obligation>,
    pub source: Option<String>,
    #[serde(skip)]
    pub revision: i64,
    #[serde(serialize_with = "crate::time::utc")]
    pub created_at: NaiveDateTime,
    #[serde(serialize_with = "crate::time::utc")]
    pub updated_at: NaiveDateTime,
}

impl Entitlement {
    /// In force on `on` by its own dates (the agreement's are checked separately).
    pub fn in_force_on(&self, on: NaiveDate) -> bool {
        within_dates(self.starts_on, self.ends_on, on)
    }

    /// Sets the seats held by live allocations, and what follows from them under the cap.
    pub(crate) fn set_seats_allocated(&mut self, seats_allocated: i64) {
        self.seats_allocated = seats_allocated;
        self.seats_remaining = seats_remaining(self.seat_cap, seats_allocated);
        self.seats_over_cap = seats_over_cap(self.seat_cap, seats_allocated);
    }
}

/// Seats left under a cap (never negative), or `None` when the line is uncapped.
pub(crate) fn seats_remaining(seat_cap: Option<i64>, seats_allocated: i64) -> Option<i64> {
    seat_cap.map(|cap| (cap - seats_allocated).max(0))
}

/// Seats allocated beyond a cap (flagged for true-up), or 0 when the line is uncapped.
pub(crate) fn seats_over_cap(seat_cap: Option<i64>, seats_allocated: i64) -> i64 {
    seat_cap.map_or(0, |cap| (seats_allocated - cap).max(0))
}

/// Whether `on` falls within a start date and an optional (inclusive) end date.
pub(crate) fn within_dates(starts_on: NaiveDate, ends_on: Option<NaiveDate>, on: NaiveDate) -> bool {
    starts_on <= on && ends_on.is_none_or(|end| on <= end)
}

fn to_entitlements(
    conn: &mut DbConnection,
    rows: Vec<(EntitlementRow, (String, String, String))>,
) -> DbResult<Vec<Entitlement>> {
    let ids: Vec<i64> = rows.iter().map(|(row, _)| row.id).collect();
    let all_obligations: Vec<Obligation> = obligations::table
        .filter(obligations::entitlement_id.eq_any(&ids))
        .order((obligations::entitlement_id, obligations::id))
        .select(Obligation::as_select())
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(row, (name, edition, version))| {
            let seats_remaining = seats_remaining(row.seat_cap, row.seats_allocated);
            let seats_over_cap = seats_over_cap(row.seat_cap, row.seats_allocated);
            Entitlement {
                obligations: all_obligations.iter().filter(|o| o.entitlement_id == row.id).cloned().collect(),
                id: row.id,
                agreement_id: row.agreement_id,
                product_id: row.product_id,
                product: crate::products::label(&name, &edition, &version),
                tier: row.tier,
                metric: row.metric,
                seat_cap: row.seat_cap,
                seats_allocated: row.seats_allocated,
                seats_remaining,
                seats_over_cap,
                over_allocation_policy: row.over_allocation_policy,
                eligible_kinds: row.eligible_kinds,
                starts_on: row.starts_on,
                ends_on: row.ends_on,
                how_to_claim: row.how_to_claim,
                requires_approval: row.requires_approval,
                per_organisation_cap: row.per_organisation_cap,
                nhsmail_service: row.nhsmail_service,
                source: row.source,
                revision: row.revision,
                created_at: row.created_at,
                updated_at: row.updated_at,
            }
        })
        .collect())
}

/// Entitlement rows with their product's name, edition and version.
macro_rules! entitlement_query {
    () => {
        entitlements::table
            .inner_join(products::table)
            .select((EntitlementRow::as_select(), (products::name, products::edition, products::version)))
    };
}

pub fn entitlements_of(
    conn: &mut DbConnection,
    agreement_id: i64,
    page: &PageRequest,
) -> DbResult<Page<Entitlement>> {
    get(conn, agreement_id)?;
    let mut query = entitlement_query!()
        .filter(entitlements::agreement_id.eq(agreement_id))
        .order(entitlements::id)
        .into_boxed();
    if let Some(after) = page.after_id()? {
        query = query.filter(entitlements::id.gt(after));
    }
    let limit = page.limit();
    let rows = query.limit(limit + 1).load(conn)?;
    Ok(Page::from_rows(to_entitlements(conn, rows)?, limit, |e| e.id.to_string()))
}

/// When any agreement last changed; `None` when there are none.
pub fn last_updated(conn: &mut DbConnection) -> DbResult<Option<NaiveDateTime>> {
    Ok(agreements::table.select(diesel::dsl::max(agreements::updated_at)).first(conn)?)
}

/// Every agreement, ended ones included (for the read model).
pub fn all(conn: &mut DbConnection) -> DbResult<Vec<Agreement>> {
    let rows: Vec<(AgreementRow, String)> = agreements::table
        .inner_join(suppliers::table)
        .select((AgreementRow::as_select(), suppliers::name))
        .order(agreements::id)
        .load(conn)?;
    to_agreements(conn, rows)
}

/// Every entitlement line (for the read model).
pub fn all_entitlements(conn: &mut DbConnection) -> DbResult<Vec<Entitlement>> {
    let rows = entitlement_query!().order(entitlements::id).load(conn)?;
    to_entitlements(conn, rows)
}

/// Every entitlement line for a product, oldest first.
pub fn entitlements_for_products(conn: &mut DbConnection, product_ids: &[i64]) -> DbResult<Vec<Entitlement>> {
    let rows = entitlement_query!()
        .filter(entitlements::product_id.eq_any(product_ids))
        .order(entitlements::id)
        .load(conn)?;
    to_entitlements(conn, rows)
}

pub fn get_entitlement(conn: &mut DbConnection, id: i64) -> DbResult<Entitlement> {
    let rows = entitlement_query!().filter(entitlements::id.eq(id)).load(conn)?;
    to_entitlements(conn, rows)?.pop().ok_or(DbError::NotFound("entitlement"))
}

#[derive(Debug, Clone, Serialize)]
pub struct NewObligation {
    pub description: String,
    pub due_on: Option<NaiveDate>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EntitlementFields {
    pub product_id: i64,
    pub tier: Tier,
    pub metric: Metric,
    pub seat_cap: Option<i64>,
    pub over_allocation_policy: OverAllocationPolicy,
    pub eligible_kinds: Vec<OrganisationKind>,
    pub starts_on: NaiveDate,
    pub ends_on: Option<NaiveDate>,
    pub how_to_claim: Option<String>,
    pub requires_approval: bool,
    pub per_organisation_cap: Option<i64>,
    pub nhsmail_service: Option<NhsmailService>,
    pub source: Option<String>,
}

/// The columns an entitlement line's create and update both write (an update keeps the line's
/// product, tier, metric and start). A `None` is written as NULL, so an update clears it.
#[derive(Insertable, AsChangeset)]
#[diesel(table_name = entitlements, treat_none_as_null = true)]
struct EntitlementColumns<'a> {
    seat_cap: Option<i64>,
    over_allocation_policy: OverAllocationPolicy,
    eligible_kinds: String,
    ends_on: Option<NaiveDate>,
    how_to_claim: Option<&'a str>,
    requires_approval: bool,
    per_organisation_cap: Option<i64>,
    nhsmail_service: Option<NhsmailService>,
    source: Option<&'a str>,
}

impl EntitlementFields {
    fn columns(&self) -> EntitlementColumns<'_> {
        EntitlementColumns {
            seat_cap: self.seat_cap,
            over_allocation_policy: self.over_allocation_policy,
            eligible_kinds: join_kinds(&self.eligible_kinds),
            ends_on: self.ends_on,
            how_to_claim: self.how_to_claim.as_deref(),
            requires_approval: self.requires_approval,
            per_organisation_cap: self.per_organisation_cap,
            nhsmail_service: self.nhsmail_service,
            source: self.source.as_deref(),
        }
    }

    fn validate(&self, agreement: &Agreement) -> DbResult<()> {
        if self.seat_cap.is_some_and(|cap| !(0..=MAX_SEATS_PER_LINE).contains(&cap)) {
            return Err(DbError::Invalid(format!("seat_cap must be between 0 and {}", MAX_SEATS_PER_LINE)));
        }
        if self.per_organisation_cap.is_some_and(|cap| !(1..=MAX_SEATS_PER_LINE).contains(&cap)) {
            return Err(DbError::Invalid(format!(
                "per_organisation_cap must be between 1 and {MAX_SEATS_PER_LINE}"
            )));
        }
        if let (Some(per_organisation), Some(cap)) = (self.per_organisation_cap, self.seat_cap)
            && per_organisation > cap
            && self.over_allocation_policy == OverAllocationPolicy::Block
        {
            return Err(DbError::Invalid(format!(
                "per_organisation_cap ({per_organisation}) is more than the line's seat_cap ({cap})"
            )));
        }
        if self.ends_on.is_some_and(|end| end < self.starts_on) {
            return Err(DbError::Invalid("ends_on is before starts_on".into()));
        }
        if self.starts_on < agreement.starts_on
            || agreement.ends_on.is_some_and(|end| self.ends_on.is_none_or(|e| e > end))
        {
            return Err(DbError::Invalid(
                "an entitlement's dates must lie within its agreement's dates".into(),
            ));
        }
        if self.eligible_kinds.is_empty() {
            return Err(DbError::Invalid("eligible_kinds must name at least one organisation kind".into()));
        }
        if let Some(kind) = self.eligible_kinds.iter().find(|k| !agreement.eligible_kinds.contains(k)) {
            return Err(DbError::Invalid(format!(
                "the agreement does not admit organisations of kind {kind}"
            )));
        }
        Ok(())
    }
}

pub fn create_entitlement(
    db: &Database,
    actor: &Actor,
    agreement_id: i64,
    fields: EntitlementFields,
    new_obligations: Vec<NewObligation>,
) -> DbResult<Entitlement> {
    db.write(actor, |conn| {
        let entitlement = create_entitlement_in(conn, agreement_id, &fields, &new_obligations)?;
        let change = Change::new("entitlement.create", "entitlement", entitlement.id).after(&entitlement);
        Ok(Audited::one(entitlement, change))
    })
}

/// [`create_entitlement`] inside the caller's transaction, with the same checks: what seeding
/// calls too, so a shipped line passes the rules an admin's does.
pub(crate) fn create_entitlement_in(
    conn: &mut DbConnection,
    agreement_id: i64,
    fields: &EntitlementFields,
    new_obligations: &[NewObligation],
) -> DbResult<Entitlement> {
    let agreement = get(conn, agreement_id)?;
    fields.validate(&agreement)?;
    if agreement.ended {
        return Err(DbError::Conflict("the agreement has ended: it takes no new lines".into()));
    }
    let product: i64 = products::table.filter(products::id.eq(fields.product_id)).count().get_result(conn)?;
    if product == 0 {
        return Err(DbError::Invalid(format!("product {} does not exist", fields.product_id)));
    }
    if new_obligations.iter().any(|o| o.description.trim().is_empty()) {
        return Err(DbError::Invalid("an obligation needs a description".into()));
    }
    let stamp = now();
    let id: i64 = diesel::insert_into(entitlements::table)
        .values((
            fields.columns(),
            entitlements::agreement_id.eq(agreement_id),
            entitlements::product_id.eq(fields.product_id),
            entitlements::tier.eq(fields.tier),
            entitlements::metric.eq(fields.metric),
            entitlements::starts_on.eq(fields.starts_on),
            entitlements::created_at.eq(stamp),
            entitlements::updated_at.eq(stamp),
        ))
        .returning(entitlements::id)
        .get_result(conn)?;
    for obligation in new_obligations {
        diesel::insert_into(obligations::table)
            .values((
                obligations::entitlement_id.eq(id),
                obligations::description.eq(obligation.description.trim()),
                obligations::due_on.eq(obligation.due_on),
            ))
            .execute(conn)?;
    }
    get_entitlement(conn, id)
}

#[derive(Debug, Default)]
pub struct EntitlementChanges {
    pub seat_cap: Option<Option<i64>>,
    pub over_allocation_policy: Option<OverAllocationPolicy>,
    pub eligible_kinds: Option<Vec<OrganisationKind>>,
    pub ends_on: Option<Option<NaiveDate>>,
    pub how_to_claim: Option<Option<String>>,
    pub requires_approval: Option<bool>,
    pub per_organisation_cap: Option<Option<i64>>,
    pub nhsmail_service: Option<Option<NhsmailService>>,
    pub source: Option<Option<String>>,
}

/// Changes an entitlement line. A cap may drop below what is allocated only when the policy
/// allows over-allocation (the excess is then flagged for true-up); otherwise 409.
pub fn update_entitlement(
    db: &Database,
    actor: &Actor,
    id: i64,
    changes: EntitlementChanges,
    precondition: Precondition,
) -> DbResult<Entitlement> {
    db.write(actor, |conn| {
        let before = get_entitlement(conn, id)?;
        let agreement = get(conn, before.agreement_id)?;
        let fields = EntitlementFields {
            product_id: before.product_id,
            tier: before.tier,
            metric: before.metric,
            seat_cap: changes.seat_cap.unwrap_or(before.seat_cap),
            over_allocation_policy: changes.over_allocation_policy.unwrap_or(before.over_allocation_policy),
            eligible_kinds: changes.eligible_kinds.clone().unwrap_or_else(|| before.eligible_kinds.clone()),
            starts_on: before.starts_on,
            ends_on: changes.ends_on.unwrap_or(before.ends_on),
            how_to_claim: changes.how_to_claim.clone().unwrap_or_else(|| before.how_to_claim.clone()),
            requires_approval: changes.requires_approval.unwrap_or(before.requires_approval),
            per_organisation_cap: changes.per_organisation_cap.unwrap_or(before.per_organisation_cap),
            nhsmail_service: changes.nhsmail_service.unwrap_or(before.nhsmail_service),
            source: changes.source.clone().unwrap_or_else(|| before.source.clone()),
        };
        // Bad input is refused as such (422) before a stale If-Match is (412).
        fields.validate(&agreement)?;
        precondition.check(before.revision)?;
        // Checked against the row as it stands inside this transaction; the table's check
        // constraint holds the same rule against any concurrent claim.
        let allocated: i64 =
            entitlements::table.find(id).select(entitlements::seats_allocated).first(conn)?;
        if let Some(cap) = fields.seat_cap
            && cap < allocated
            && fields.over_allocation_policy == OverAllocationPolicy::Block
        {
            return Err(DbError::Conflict(format!(
                "{allocated} seats are allocated: the cap cannot drop to {cap} unless the policy is allow_and_flag"
            )));
        }
        diesel::update(entitlements::table.find(id))
            .set((
                fields.columns(),
                entitlements::revision.eq(entitlements::revision + 1),
                entitlements::updated_at.eq(now()),
            ))
            .execute(conn)?;
        let after = get_entitlement(conn, id)?;
        let change = Change::new("entitlement.update", "entitlement", id).before(&before).after(&after);
        Ok(Audited::one(after, change))
    })
}
