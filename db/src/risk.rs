//! Lifecycle risk: who holds or runs software that is unsupported (or soon will be) at a date,
//! and the
//! risk acceptances organisations record for unsupported products they cannot yet replace
//! (typically medical devices), with compensating controls and an expiry.
//!
//! The national report is read a page at a time: holdings in (organisation, product) order after
//! a cursor, found with SQL `DISTINCT` and `LIMIT`, and the whole report's counts from aggregate
//! queries. Built whole it was 36 MB of JSON at national scale, and eight requests at once took
//! the server to 1 GB; now what a request holds follows the page size, not the number of holdings.
//! On the 1x synthetic data set (129,066 holdings at risk) a page of 50 is 14 KB and its rows are
//! found in under 10 ms on either engine; the totals, a scan of every holding in the database,
//! take 0.6-0.8 s (`sqlite3` and `psql` on the shared 2-core machine).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Months, NaiveDate, NaiveDateTime};
use diesel::dsl::{self, case_when, count, exists, not};
use diesel::prelude::*;
use diesel::query_source::{Alias, AliasedField};
use diesel::sql_types::Text;
use serde::Serialize;

use crate::audit::{Actor, Audited, Change, now};
use crate::connection::{Database, DbConnection};
use crate::error::{DbError, DbResult};
use crate::organisations;
use crate::page::{Page, PageRequest};
use crate::products::{self, support_ends_within, support_status};
use crate::schema::{
    allocations, entitlements, estate_items, estate_snapshots, organisations as orgs,
    products as products_table, purchases, risk_acceptances,
};
use crate::vocabulary::{RiskStatus, SupportStatus};

#[derive(Clone, Debug, Serialize, Queryable, Selectable, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[diesel(table_name = risk_acceptances)]
pub struct RiskAcceptance {
    pub id: i64,
    pub organisation_code: String,
    pub product_id: i64,
    pub compensating_controls: String,
    /// Reference of the MDS2 form or other evidence.
    pub mds2_reference: Option<String>,
    pub expires_on: NaiveDate,
    pub created_by: Option<i64>,
    #[serde(serialize_with = "crate::time::utc")]
    pub created_at: NaiveDateTime,
}

pub struct NewRiskAcceptance {
    pub organisation_code: String,
    pub product_id: i64,
    pub compensating_controls: String,
    pub mds2_reference: Option<String>,
    pub expires_on: NaiveDate,
}

/// A rule an acceptance's fields break, naming the field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AcceptanceProblem {
    NoCompensatingControls,
    ExpiryNotInFuture,
}

impl AcceptanceProblem {
    /// The refusal, in the API's words (which name its fields).
    pub fn detail(self) -> &'static str {
        match self {
            AcceptanceProblem::NoCompensatingControls => "describe the compensating controls",
            AcceptanceProblem::ExpiryNotInFuture => "expires_on must be in the future",
        }
    }
}

/// Every rule `new` breaks on `today`, in the fields' order: what [`accept`] refuses with, and
/// what the risk-acceptance page lists field by field. Whether the product exists is checked
/// when it is written.
pub fn problems(new: &NewRiskAcceptance, today: NaiveDate) -> Vec<AcceptanceProblem> {
    [
        (new.compensating_controls.trim().is_empty(), AcceptanceProblem::NoCompensatingControls),
        (new.expires_on <= today, AcceptanceProblem::ExpiryNotInFuture),
    ]
    .into_iter()
    .filter_map(|(broken, problem)| broken.then_some(problem))
    .collect()
}

pub fn accept(
    db: &Database,
    actor: &Actor,
    new: NewRiskAcceptance,
    today: NaiveDate,
) -> DbResult<RiskAcceptance> {
    if let Some(problem) = problems(&new, today).first() {
        return Err(DbError::Invalid(problem.detail().into()));
    }
    db.write(actor, |conn| {
        let organisation = organisations::get(conn, &new.organisation_code)?;
        products::get(conn, new.product_id, today)
            .map_err(|_| DbError::Invalid(format!("product {} does not exist", new.product_id)))?;
        let id: i64 = diesel::insert_into(risk_acceptances::table)
            .values((
                risk_acceptances::organisation_code.eq(&organisation.code),
                risk_acceptances::product_id.eq(new.product_id),
                risk_acceptances::compensating_controls.eq(new.compensating_controls.trim()),
                risk_acceptances::mds2_reference.eq(&new.mds2_reference),
                risk_acceptances::expires_on.eq(new.expires_on),
                risk_acceptances::created_by.eq(actor.user_id),
                risk_acceptances::created_at.eq(now()),
            ))
            .returning(risk_acceptances::id)
            .get_result(conn)?;
        let acceptance = risk_acceptances::table.find(id).select(RiskAcceptance::as_select()).first(conn)?;
        let change = Change::new("risk_acceptance.create", "risk_acceptance", id)
            .organisation(Some(&organisation.code))
            .after(&acceptance);
        Ok(Audited::one(acceptance, change))
    })
}

pub fn acceptances_of(conn: &mut DbConnection, code: &str) -> DbResult<Vec<RiskAcceptance>> {
    Ok(risk_acceptances::table
        .filter(risk_acceptances::organisation_code.eq(code.to_uppercase()))
        .order(risk_acceptances::id)
        .select(RiskAcceptance::as_select())
        .load(conn)?)
}

#[derive(Clone, Debug, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AcceptanceState {
    pub risk_acceptance_id: i64,
    pub expires_on: NaiveDate,
    /// The acceptance had expired by the report date.
    pub expired: bool,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RiskyHolding {
    pub organisation_code: String,
    pub organisation_name: String,
    pub region: Option<String>,
    pub product_id: i64,
    pub product: String,
    pub support_status: SupportStatus,
    pub support_ends_on: Option<NaiveDate>,
    /// Seats held through allocations on the date.
    pub seats: i64,
    /// Units bought locally by the date.
    pub purchased: i64,
    /// Devices or users running it by the organisation's estate snapshots taken by the date
    /// (each source added up, the largest source counted, as in the reconciliation): an
    /// organisation that runs unsupported software is at risk whether or not it holds seats.
    pub running: i64,
    /// The latest risk acceptance for this organisation and product, if any.
    pub acceptance: Option<AcceptanceState>,
}

/// Which holdings the report is about.
/// The longest look-ahead of the unsupported-software report, in months.
pub const MAX_WITHIN_MONTHS: u32 = 120;

#[derive(Clone, Debug)]
pub struct UnsupportedFilter {
    /// The date asked about.
    pub on: NaiveDate,
    /// Products whose support ends within this many months of `on` also count (0: only
    /// unsupported ones).
    pub within_months: u32,
    /// Only holdings in this state; both when `None`. The totals always count both.
    pub status: Option<RiskStatus>,
    /// Only this organisation's holdings (ODS code).
    pub organisation: Option<String>,
    /// Only holdings of organisations in this region.
    pub region: Option<String>,
    /// Only products still supported on `on` whose support ends within the months (those
    /// about to leave support, as the reminders tell of), not those already unsupported.
    pub only_ending: bool,
}

/// The whole report's counts under a filter's date, organisation and region, whatever its
/// status and whichever page is read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UnsupportedTotals {
    /// Holdings with no risk acceptance in force.
    pub holdings_at_risk: i64,
    /// Holdings covered by a risk acceptance in force.
    pub holdings_accepted: i64,
    /// Organisations with at least one holding at risk.
    pub organisations_at_risk: i64,
    /// Holdings at risk whose latest acceptance had expired.
    pub expired_acceptances: i64,
}

/// A holding: the organisation's code and the product's id, the report's order.
type HoldingKey = (String, i64);

type Backend = <DbConnection as Connection>::Backend;

/// A filter as the queries compare it, with a window of holding keys.
#[derive(Clone)]
struct Scope {
    on: NaiveDate,
    /// What happened on `on` happened before this.
    day_ends: NaiveDateTime,
    /// Products whose support ends on or after `risk_from` and before `risk_before` are at risk.
    risk_from: NaiveDate,
    risk_before: NaiveDate,
    status: Option<RiskStatus>,
    organisation: Option<String>,
    region: Option<String>,
    /// Only holdings after this key,
    after: Option<HoldingKey>,
    /// and up to this one.
    through: Option<HoldingKey>,
}

impl Scope {
    fn of(filter: &UnsupportedFilter) -> Scope {
        let on = filter.on;
        // Support that ends within the months counts when it ends by the horizon's last day.
        let risk_before = match filter.within_months {
            0 => on,
            months => on
                .checked_add_months(Months::new(months))
                .and_then(|horizon| horizon.succ_opt())
                .unwrap_or(NaiveDate::MAX),
        };
        Scope {
            on,
            day_ends: crate::time::end_of(on),
            // Without `only_ending` the window has no first day: no support ended before year 1.
            risk_from: if filter.only_ending {
                on
            } else {
                NaiveDate::from_ymd_opt(1, 1, 1).unwrap_or(NaiveDate::MIN)
            },
            risk_before,
            status: filter.status,
            organisation: filter.organisation.as_deref().map(str::to_uppercase),
            region: filter.region.clone(),
            after: None,
            through: None,
        }
    }
}

/// Allocations that held seats at the end of the day: made by then, and not released or
/// transferred by then (the time of a release is the allocation's last update).
#[dsl::auto_type]
fn allocation_held(day_ends: NaiveDateTime) -> _ {
    let made: dsl::Lt<allocations::created_at, NaiveDateTime> = allocations::created_at.lt(day_ends);
    let live: dsl::Eq<allocations::status, &'static str> = allocations::status.eq("live");
    made.and(live.or(allocations::updated_at.ge(day_ends)))
}

diesel::alias! {
    const REPLACEMENTS: Alias<Replacements> = purchases as replacements;
}

type Replaced = dsl::Select<
    dsl::Filter<Alias<Replacements>, dsl::IsNotNull<AliasedField<Replacements, purchases::supersedes_id>>>,
    dsl::AssumeNotNull<AliasedField<Replacements, purchases::supersedes_id>>,
>;

/// The ids of purchases a later purchase corrected (superseded), as a subquery.
fn replaced_purchases() -> Replaced {
    let replaced = REPLACEMENTS.field(purchases::supersedes_id);
    REPLACEMENTS.filter(replaced.is_not_null()).select(replaced.assume_not_null())
}

/// Purchases that stood on the day: made by then and not superseded.
#[dsl::auto_type]
fn purchase_standing(on: NaiveDate) -> _ {
    let made: dsl::LtEq<purchases::purchased_on, NaiveDate> = purchases::purchased_on.le(on);
    let replaced: Replaced = replaced_purchases();
    made.and(purchases::id.ne_all(replaced))
}

/// `EXISTS` a risk acceptance of the holding of `$organisation` (a column) and `products.id`
/// recorded by the end of the day; `in_force`: one that had not expired on the day. The latest
/// acceptance (the longest running) is in force exactly when any is. A macro because
/// allocations and purchases name the organisation in columns that diesel types apart.
macro_rules! acceptance {
    (recorded, $organisation:expr, $scope:expr) => {
        exists(acceptance!(@rows $organisation, $scope))
    };
    (in_force, $organisation:expr, $scope:expr) => {
        exists(acceptance!(@rows $organisation, $scope).filter(risk_acceptances::expires_on.ge($scope.on)))
    };
    (@rows $organisation:expr, $scope:expr) => {
        risk_acceptances::table
            .filter(risk_acceptances::organisation_code.eq($organisation))
            .filter(risk_acceptances::product_id.eq(products_table::id))
            .filter(risk_acceptances::created_at.lt($scope.day_ends))
    };
}

/// Narrows a boxed query of holdings (the organisation in `$organisation`, the product in
/// `products.id`) to a scope's organisation, region, status and window of keys.
macro_rules! narrowed {
    ($query:expr, $organisation:expr, $scope:expr) => {{
        let scope: &Scope = $scope;
        let mut query = $query;
        if let Some(code) = &scope.organisation {
            query = query.filter($organisation.eq(code.clone()));
        }
        if let Some(region) = &scope.region {
            let codes = orgs::table.filter(orgs::region.eq(region.clone())).select(orgs::code);
            query = query.filter($organisation.eq_any(codes));
        }
        match scope.status {
            Some(RiskStatus::Accepted) => query = query.filter(acceptance!(in_force, $organisation, scope)),
            Some(RiskStatus::AtRisk) => {
                query = query.filter(not(acceptance!(in_force, $organisation, scope)))
            }
            None => {}
        }
        if let Some((code, product)) = &scope.after {
            query = query.filter(
                $organisation
                    .gt(code.clone())
                    .or($organisation.eq(code.clone()).and(products_table::id.gt(*product))),
            );
        }
        if let Some((code, product)) = &scope.through {
            query = query.filter(
                $organisation
                    .lt(code.clone())
                    .or($organisation.eq(code.clone()).and(products_table::id.le(*product))),
            );
        }
        query
    }};
}

type HeldQuery = dsl::IntoBoxed<
    'static,
    dsl::InnerJoin<allocations::table, dsl::InnerJoin<entitlements::table, products_table::table>>,
    Backend,
>;

/// Allocations of products at risk held at the end of the day, within the scope.
fn held(scope: &Scope) -> HeldQuery {
    let query = allocations::table
        .inner_join(entitlements::table.inner_join(products_table::table))
        .filter(allocation_held(scope.day_ends))
        .filter(support_ends_within(scope.risk_from, scope.risk_before))
        .into_boxed();
    narrowed!(query, allocations::organisation_code, scope)
}

type BoughtQuery = dsl::IntoBoxed<
    'static,
    dsl::InnerJoinOn<
        purchases::table,
        products_table::table,
        dsl::Eq<purchases::product_id, dsl::Nullable<products_table::id>>,
    >,
    Backend,
>;

/// Local purchases of products at risk made by the day and not superseded, within the scope.
fn bought(scope: &Scope) -> BoughtQuery {
    let query = purchases::table
        .inner_join(products_table::table.on(purchases::product_id.eq(products_table::id.nullable())))
        .filter(purchase_standing(scope.on))
        .filter(support_ends_within(scope.risk_from, scope.risk_before))
        .into_boxed();
    narrowed!(query, purchases::organisation_code, scope)
}

type RanQuery = dsl::IntoBoxed<
    'static,
    dsl::InnerJoin<dsl::InnerJoin<estate_items::table, estate_snapshots::table>, products_table::table>,
    Backend,
>;

/// Rows of estate snapshots taken by the day that show products at risk running, within the
/// scope. A snapshot is the organisation's latest for its source (an import replaces it).
fn ran(scope: &Scope) -> RanQuery {
    let query = estate_items::table
        .inner_join(estate_snapshots::table)
        .inner_join(products_table::table)
        .filter(estate_snapshots::taken_on.le(scope.on))
        .filter(estate_items::devices.gt(0).or(estate_items::users.gt(0)))
        .filter(support_ends_within(scope.risk_from, scope.risk_before))
        .into_boxed();
    narrowed!(query, estate_snapshots::organisation_code, scope)
}

// `a || b`: text joined to text or to a number (both engines write the number as text).
diesel::infix_operator!(Joined, " || ", Text);

/// A cursor names the last holding of a page: `CODE:PRODUCT_ID`.
fn cursor_of((code, product): &HoldingKey) -> String {
    format!("{code}:{product}")
}

fn parse_cursor(cursor: &str) -> DbResult<HoldingKey> {
    let (code, product) = cursor.rsplit_once(':').ok_or(DbError::InvalidCursor)?;
    let product = product.parse::<i64>().map_err(|_| DbError::InvalidCursor)?;
    if code.is_empty() {
        return Err(DbError::InvalidCursor);
    }
    Ok((code.to_owned(), product))
}

/// The most rows [`first_keys`] reads at once.
const LARGEST_BATCH: i64 = 10_000;

/// The first `wanted` holdings of one source after the scope's cursor, in order, from `read`
/// (the source's keys after the scope's, one per row, in order, at most a batch of them). The
/// rows are read in batches and made distinct here: with `DISTINCT` SQLite read every row of the
/// report before answering (880 ms for the first page at national scale, against 9 ms for
/// ordered rows, which it sorts one organisation at a time and stops reading at the limit).
fn first_keys(
    conn: &mut DbConnection,
    scope: &Scope,
    wanted: usize,
    read: impl Fn(&mut DbConnection, &Scope, i64) -> DbResult<Vec<HoldingKey>>,
) -> DbResult<Vec<HoldingKey>> {
    let mut keys: Vec<HoldingKey> = Vec::with_capacity(wanted);
    let mut scope = scope.clone();
    // Most holdings are a row or two: two rows a holding usually fill the page at once.
    let mut batch = (wanted as i64).saturating_mul(2).min(LARGEST_BATCH);
    loop {
        let rows = read(conn, &scope, batch)?;
        let more = rows.len() as i64 == batch;
        for key in rows {
            if keys.last() != Some(&key) {
                keys.push(key);
                if keys.len() == wanted {
                    return Ok(keys);
                }
            }
        }
        // The rest of the last holding read does not matter: it is already found.
        match keys.last() {
            Some(last) if more => scope.after = Some(last.clone()),
            _ => return Ok(keys),
        }
        batch = batch.saturating_mul(4).min(LARGEST_BATCH);
    }
}

/// Adds `quantity` to a holding's total, refusing a total past `i64`.
fn add_to(totals: &mut BTreeMap<HoldingKey, i64>, key: HoldingKey, quantity: i64) -> DbResult<()> {
    let total = totals.entry(key).or_default();
    *total = total
        .checked_add(quantity)
        .ok_or_else(|| DbError::Internal("a holding's quantities add up past the largest integer".into()))?;
    Ok(())
}

/// One page of who held software at risk on the filter's date: holdings in (organisation code,
/// product id) order after the page's cursor. A holding is an organisation's allocations of a
/// product held at the end of the day, its local purchases made by the day and not superseded,
/// and what its estate snapshots taken by the day show running (so an organisation that runs
/// Windows 7 is listed though it never claimed or bought a seat of it); the product is at risk
/// when unsupported on the day, or when its support ends within the filter's months. Each query
/// reads at most a page of holdings.
pub fn unsupported_holdings(
    conn: &mut DbConnection,
    filter: &UnsupportedFilter,
    page: &PageRequest,
) -> DbResult<Page<RiskyHolding>> {
    let mut scope = Scope::of(filter);
    scope.after = page.cursor.as_deref().map(parse_cursor).transpose()?;
    let limit = page.limit();
    let wanted = limit as usize + 1;
    // The first keys of the two sources in order: the page's are among them.
    let mut keys: BTreeSet<HoldingKey> = first_keys(conn, &scope, wanted, |conn, scope, batch| {
        Ok(held(scope)
            .select((allocations::organisation_code, products_table::id))
            .order((allocations::organisation_code, products_table::id))
            .limit(batch)
            .load(conn)?)
    })?
    .into_iter()
    .collect();
    keys.extend(first_keys(conn, &scope, wanted, |conn, scope, batch| {
        Ok(bought(scope)
            .select((purchases::organisation_code, products_table::id))
            .order((purchases::organisation_code, products_table::id))
            .limit(batch)
            .load(conn)?)
    })?);
    keys.extend(first_keys(conn, &scope, wanted, |conn, scope, batch| {
        Ok(ran(scope)
            .select((estate_snapshots::organisation_code, products_table::id))
            .order((estate_snapshots::organisation_code, products_table::id))
            .limit(batch)
            .load(conn)?)
    })?);
    let more = keys.len() as i64 > limit;
    let keys: Vec<HoldingKey> = keys.into_iter().take(limit as usize).collect();
    let Some(last) = keys.last().cloned() else {
        return Ok(Page { items: Vec::new(), next_cursor: None });
    };
    // Every row between the cursor and the page's last key belongs to a holding on the page.
    scope.through = Some(last.clone());
    let mut seats = BTreeMap::new();
    for (code, product, quantity) in held(&scope)
        .select((allocations::organisation_code, products_table::id, allocations::quantity))
        .load::<(String, i64, i64)>(conn)?
    {
        add_to(&mut seats, (code, product), quantity)?;
    }
    let mut purchased = BTreeMap::new();
    for (code, product, quantity) in bought(&scope)
        .select((purchases::organisation_code, products_table::id, purchases::quantity))
        .load::<(String, i64, i64)>(conn)?
    {
        add_to(&mut purchased, (code, product), quantity)?;
    }
    let running = crate::estates::largest_source(
        ran(&scope)
            .select((
                estate_snapshots::organisation_code,
                estate_snapshots::id,
                products_table::id,
                estate_items::devices,
                estate_items::users,
            ))
            .load::<(String, i64, i64, i64, i64)>(conn)?,
    );
    let codes: BTreeSet<&str> = keys.iter().map(|(code, _)| code.as_str()).collect();
    let product_ids: BTreeSet<i64> = keys.iter().map(|&(_, product)| product).collect();
    let names: BTreeMap<String, (String, Option<String>)> = orgs::table
        .filter(orgs::code.eq_any(&codes))
        .select((orgs::code, orgs::name, orgs::region))
        .load::<(String, String, Option<String>)>(conn)?
        .into_iter()
        .map(|(code, name, region)| (code, (name, region)))
        .collect();
    type ProductRow = (i64, String, String, String, Option<NaiveDate>, Option<NaiveDate>);
    let products: BTreeMap<i64, (String, SupportStatus, Option<NaiveDate>)> = products_table::table
        .filter(products_table::id.eq_any(&product_ids))
        .select((
            products_table::id,
            products_table::name,
            products_table::edition,
            products_table::version,
            products_table::mainstream_support_ends_on,
            products_table::extended_support_ends_on,
        ))
        .load::<ProductRow>(conn)?
        .into_iter()
        .map(|(id, name, edition, version, mainstream, extended)| {
            let label = products::label(&name, &edition, &version);
            (id, (label, support_status(mainstream, extended, scope.on), extended.or(mainstream)))
        })
        .collect();
    // The latest acceptance of each holding: the one that runs longest (then the last recorded).
    let mut latest: BTreeMap<HoldingKey, (NaiveDate, i64)> = BTreeMap::new();
    for (code, product, id, expires_on) in risk_acceptances::table
        .filter(risk_acceptances::organisation_code.eq_any(&codes))
        .filter(risk_acceptances::product_id.eq_any(&product_ids))
        .filter(risk_acceptances::created_at.lt(scope.day_ends))
        .select((
            risk_acceptances::organisation_code,
            risk_acceptances::product_id,
            risk_acceptances::id,
            risk_acceptances::expires_on,
        ))
        .load::<(String, i64, i64, NaiveDate)>(conn)?
    {
        let entry = latest.entry((code, product)).or_insert((expires_on, id));
        *entry = (*entry).max((expires_on, id));
    }
    let items = keys
        .into_iter()
        .map(|key| {
            let (organisation_name, region) =
                names.get(&key.0).cloned().ok_or(DbError::NotFound("organisation"))?;
            let (product, support_status, support_ends_on) =
                products.get(&key.1).cloned().ok_or(DbError::NotFound("product"))?;
            let acceptance = latest.get(&key).map(|&(expires_on, id)| AcceptanceState {
                risk_acceptance_id: id,
                expires_on,
                expired: expires_on < scope.on,
            });
            Ok(RiskyHolding {
                seats: seats.get(&key).copied().unwrap_or(0),
                purchased: purchased.get(&key).copied().unwrap_or(0),
                running: running.get(&key).copied().unwrap_or(0),
                organisation_code: key.0,
                organisation_name,
                region,
                product_id: key.1,
                product,
                support_status,
                support_ends_on,
                acceptance,
            })
        })
        .collect::<DbResult<Vec<_>>>()?;
    Ok(Page { items, next_cursor: more.then(|| cursor_of(&last)) })
}

/// The whole report's counts under the filter's date, organisation and region (not its status):
/// aggregate queries, whatever the number of holdings.
pub fn unsupported_totals(
    conn: &mut DbConnection,
    filter: &UnsupportedFilter,
) -> DbResult<UnsupportedTotals> {
    let scope = Scope { status: None, ..Scope::of(filter) };
    // Holdings are counted by a text key per organisation and product: `COUNT(DISTINCT ...)`
    // takes one expression on SQLite.
    let key = Joined::new(allocations::organisation_code.concat(":"), products_table::id);
    let in_force = || acceptance!(in_force, allocations::organisation_code, scope);
    let recorded = || acceptance!(recorded, allocations::organisation_code, scope);
    let (held_at_risk, held_accepted, held_expired): (i64, i64, i64) = held(&scope)
        .select((
            count(case_when(not(in_force()), key)).aggregate_distinct(),
            count(case_when(in_force(), key)).aggregate_distinct(),
            count(case_when(not(in_force()).and(recorded()), key)).aggregate_distinct(),
        ))
        .get_result(conn)?;
    // Holdings only bought, not held through allocations (those are counted above).
    let key = Joined::new(purchases::organisation_code.concat(":"), products_table::id);
    let in_force = || acceptance!(in_force, purchases::organisation_code, scope);
    let recorded = || acceptance!(recorded, purchases::organisation_code, scope);
    let also_held = exists(
        allocations::table
            .inner_join(entitlements::table)
            .filter(allocations::organisation_code.eq(purchases::organisation_code))
            .filter(entitlements::product_id.nullable().eq(purchases::product_id))
            .filter(allocation_held(scope.day_ends)),
    );
    let (bought_at_risk, bought_accepted, bought_expired): (i64, i64, i64) = bought(&scope)
        .filter(not(also_held))
        .select((
            count(case_when(not(in_force()), key)).aggregate_distinct(),
            count(case_when(in_force(), key)).aggregate_distinct(),
            count(case_when(not(in_force()).and(recorded()), key)).aggregate_distinct(),
        ))
        .get_result(conn)?;
    // Holdings only run by the estates, neither held nor bought (those are counted above).
    let key = Joined::new(estate_snapshots::organisation_code.concat(":"), products_table::id);
    let in_force = || acceptance!(in_force, estate_snapshots::organisation_code, scope);
    let recorded = || acceptance!(recorded, estate_snapshots::organisation_code, scope);
    let also_held = exists(
        allocations::table
            .inner_join(entitlements::table)
            .filter(allocations::organisation_code.eq(estate_snapshots::organisation_code))
            .filter(entitlements::product_id.eq(products_table::id))
            .filter(allocation_held(scope.day_ends)),
    );
    let also_bought = exists(
        purchases::table
            .filter(purchases::organisation_code.eq(estate_snapshots::organisation_code))
            .filter(purchases::product_id.eq(products_table::id.nullable()))
            .filter(purchase_standing(scope.on)),
    );
    let (ran_at_risk, ran_accepted, ran_expired): (i64, i64, i64) = ran(&scope)
        .filter(not(also_held))
        .filter(not(also_bought))
        .select((
            count(case_when(not(in_force()), key)).aggregate_distinct(),
            count(case_when(in_force(), key)).aggregate_distinct(),
            count(case_when(not(in_force()).and(recorded()), key)).aggregate_distinct(),
        ))
        .get_result(conn)?;
    // Organisations with a holding at risk, of any kind.
    let held_at_risk_by = exists(
        allocations::table
            .inner_join(entitlements::table.inner_join(products_table::table))
            .filter(allocations::organisation_code.eq(orgs::code))
            .filter(allocation_held(scope.day_ends))
            .filter(support_ends_within(scope.risk_from, scope.risk_before))
            .filter(not(acceptance!(in_force, allocations::organisation_code, scope))),
    );
    let bought_at_risk_by = exists(
        purchases::table
            .inner_join(products_table::table.on(purchases::product_id.eq(products_table::id.nullable())))
            .filter(purchases::organisation_code.eq(orgs::code))
            .filter(purchase_standing(scope.on))
            .filter(support_ends_within(scope.risk_from, scope.risk_before))
            .filter(not(acceptance!(in_force, purchases::organisation_code, scope))),
    );
    let ran_at_risk_by = exists(
        estate_items::table
            .inner_join(estate_snapshots::table)
            .inner_join(products_table::table)
            .filter(estate_snapshots::organisation_code.eq(orgs::code))
            .filter(estate_snapshots::taken_on.le(scope.on))
            .filter(estate_items::devices.gt(0).or(estate_items::users.gt(0)))
            .filter(support_ends_within(scope.risk_from, scope.risk_before))
            .filter(not(acceptance!(in_force, estate_snapshots::organisation_code, scope))),
    );
    let mut organisations =
        orgs::table.filter(held_at_risk_by.or(bought_at_risk_by).or(ran_at_risk_by)).into_boxed();
    if let Some(code) = &scope.organisation {
        organisations = organisations.filter(orgs::code.eq(code.clone()));
    }
    if let Some(region) = &scope.region {
        organisations = organisations.filter(orgs::region.eq(region.clone()));
    }
    let organisations_at_risk: i64 = organisations.count().get_result(conn)?;
    let sum = |a: i64, b: i64| {
        a.checked_add(b).ok_or_else(|| DbError::Internal("the report's counts overflow".into()))
    };
    Ok(UnsupportedTotals {
        holdings_at_risk: sum(sum(held_at_risk, bought_at_risk)?, ran_at_risk)?,
        holdings_accepted: sum(sum(held_accepted, bought_accepted)?, ran_accepted)?,
        organisations_at_risk,
        expired_acceptances: sum(sum(held_expired, bought_expired)?, ran_expired)?,
    })
}

/// The products an organisation held on `on` that were unsupported or lose support within
/// `within_months`, with or without a risk acceptance: (id, label) by label. One row per product,
/// however many allocations and purchases.
pub fn products_at_risk(
    conn: &mut DbConnection,
    organisation: &str,
    on: NaiveDate,
    within_months: u32,
) -> DbResult<Vec<(i64, String)>> {
    let filter = UnsupportedFilter {
        on,
        within_months,
        status: None,
        organisation: Some(organisation.to_owned()),
        region: None,
        only_ending: false,
    };
    let scope = Scope::of(&filter);
    type Named = (i64, String, String, String);
    let columns =
        (products_table::id, products_table::name, products_table::edition, products_table::version);
    let mut found: Vec<Named> = held(&scope).select(columns).distinct().load(conn)?;
    found.extend(bought(&scope).select(columns).distinct().load::<Named>(conn)?);
    found.extend(ran(&scope).select(columns).distinct().load::<Named>(conn)?);
    let mut products: Vec<(i64, String)> = found
        .into_iter()
        .map(|(id, name, edition, version)| (id, products::label(&name, &edition, &version)))
        .collect();
    products.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
    products.dedup_by_key(|p| p.0);
    Ok(products)
}
