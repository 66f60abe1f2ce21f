//! Security advisories (CareCERT style): which products they affect, who is exposed (holds an
//! affected product through live allocations or current local purchases, or runs one by its
//! estate snapshots), and each exposed organisation's response. High and critical advisories must
//! be acknowledged within 48 hours of when the organisation became exposed: publication, or, for
//! an organisation exposed by its estate alone, the first snapshot that showed an affected
//! product if that came later (never from before it could have known).

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use serde::Serialize;

use crate::audit::{Actor, Audited, Change, now};
use crate::connection::{BINDS_PER_QUERY, Database, DbConnection};
use crate::error::{DbError, DbResult};
use crate::organisations;
use crate::page::{AddedOrder, Page, PageRequest, Precondition};
use crate::schema::{
    advisories, advisory_products, advisory_responses, allocations, entitlements, organisations as orgs,
    products, purchases,
};
use crate::stored::JsonText;

// Ordered as written: low < medium < high < critical.
crate::vocabulary::text_enum!(
    Severity [PartialOrd, Ord] { Low = "low", Medium = "medium", High = "high", Critical = "critical" }
);

/// How long organisations have to acknowledge a high or critical advisory, from its publication.
pub const ACKNOWLEDGE_WITHIN_HOURS: i64 = 48;

impl Severity {
    /// High and critical advisories must be acknowledged within [`ACKNOWLEDGE_WITHIN_HOURS`] of
    /// publication.
    pub fn acknowledgement_deadline(self, published_at: NaiveDateTime) -> Option<NaiveDateTime> {
        matches!(self, Severity::High | Severity::Critical)
            .then(|| published_at + Duration::hours(ACKNOWLEDGE_WITHIN_HOURS))
    }
}

#[derive(Clone, Debug, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AffectedProduct {
    pub product_id: i64,
    pub product: String,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Advisory {
    pub id: i64,
    #[cfg_attr(feature = "openapi", schema(example = "CC-2017-0001"))]
    pub reference: String,
    pub title: String,
    pub severity: Severity,
    #[serde(serialize_with = "crate::time::utc")]
    pub published_at: NaiveDateTime,
    /// For high and critical advisories: when acknowledgements fall due.
    #[serde(serialize_with = "crate::time::utc_option")]
    pub acknowledge_by: Option<NaiveDateTime>,
    pub remediation: String,
    pub links: Vec<String>,
    pub affected_products: Vec<AffectedProduct>,
    pub source: Option<String>,
    #[serde(skip)]
    pub revision: i64,
}

/// The products that each of `advisory_ids` affects, in one statement, by advisory id.
fn affected_products(
    conn: &mut DbConnection,
    advisory_ids: &[i64],
) -> DbResult<BTreeMap<i64, Vec<AffectedProduct>>> {
    let mut affected: BTreeMap<i64, Vec<AffectedProduct>> = BTreeMap::new();
    for chunk in advisory_ids.chunks(BINDS_PER_QUERY) {
        let rows = advisory_products::table
            .inner_join(products::table)
            .filter(advisory_products::advisory_id.eq_any(chunk))
            .order((advisory_products::advisory_id, products::id))
            .select((
                advisory_products::advisory_id,
                products::id,
                products::name,
                products::edition,
                products::version,
            ))
            .load::<(i64, i64, String, String, String)>(conn)?;
        for (advisory_id, product_id, name, edition, version) in rows {
            affected.entry(advisory_id).or_default().push(AffectedProduct {
                product_id,
                product: crate::products::label(&name, &edition, &version),
            });
        }
    }
    Ok(affected)
}

/// An advisory's own columns (its links stored as a JSON list); `Advisory` adds what is read
/// or computed beside them (the affected products, the acknowledgement deadline).
#[derive(Queryable, Selectable)]
#[diesel(table_name = advisories)]
struct AdvisoryRow {
    id: i64,
    reference: String,
    title: String,
    severity: Severity,
    published_at: NaiveDateTime,
    remediation: String,
    #[diesel(deserialize_as = JsonText<Vec<String>>)]
    links: Vec<String>,
    source: Option<String>,
    revision: i64,
}

/// Assembles advisories from their rows in one more statement, however many rows.
fn to_advisories(conn: &mut DbConnection, rows: Vec<AdvisoryRow>) -> DbResult<Vec<Advisory>> {
    let ids: Vec<i64> = rows.iter().map(|row| row.id).collect();
    let mut affected = affected_products(conn, &ids)?;
    Ok(rows
        .into_iter()
        .map(|row| Advisory {
            affected_products: affected.remove(&row.id).unwrap_or_default(),
            acknowledge_by: row.severity.acknowledgement_deadline(row.published_at),
            id: row.id,
            reference: row.reference,
            title: row.title,
            severity: row.severity,
            published_at: row.published_at,
            remediation: row.remediation,
            links: row.links,
            source: row.source,
            revision: row.revision,
        })
        .collect())
}

pub fn get(conn: &mut DbConnection, id: i64) -> DbResult<Advisory> {
    let row: AdvisoryRow = advisories::table
        .find(id)
        .select(AdvisoryRow::as_select())
        .first(conn)
        .optional()?
        .ok_or(DbError::NotFound("advisory"))?;
    to_advisories(conn, vec![row])?.pop().ok_or(DbError::NotFound("advisory"))
}

/// Advisories in the order they were added (the API's list), or the latest first (the
/// advisories page); with one severity when given.
pub fn list(
    conn: &mut DbConnection,
    severity: Option<Severity>,
    order: AddedOrder,
    page: &PageRequest,
) -> DbResult<Page<Advisory>> {
    let mut query = advisories::table.select(AdvisoryRow::as_select()).into_boxed();
    if let Some(severity) = severity {
        query = query.filter(advisories::severity.eq(severity));
    }
    let after = page.after_id()?;
    query = match order {
        AddedOrder::OldestFirst => match after {
            Some(after) => query.filter(advisories::id.gt(after)),
            None => query,
        }
        .order(advisories::id),
        AddedOrder::NewestFirst => match after {
            Some(after) => query.filter(advisories::id.lt(after)),
            None => query,
        }
        .order(advisories::id.desc()),
    };
    let limit = page.limit();
    let rows: Vec<AdvisoryRow> = query.limit(limit + 1).load(conn)?;
    Ok(Page::from_rows(to_advisories(conn, rows)?, limit, |a| a.id.to_string()))
}

#[derive(Clone, Debug)]
pub struct AdvisoryFields {
    pub reference: String,
    pub title: String,
    pub severity: Severity,
    pub published_at: NaiveDateTime,
    pub remediation: String,
    pub links: Vec<String>,
    pub affected_product_ids: Vec<i64>,
    pub source: Option<String>,
}

impl AdvisoryFields {
    /// The fields of an advisory as it stands: what an update changes.
    pub fn of(advisory: &Advisory) -> AdvisoryFields {
        AdvisoryFields {
            reference: advisory.reference.clone(),
            title: advisory.title.clone(),
            severity: advisory.severity,
            published_at: advisory.published_at,
            remediation: advisory.remediation.clone(),
            links: advisory.links.clone(),
            affected_product_ids: advisory.affected_products.iter().map(|p| p.product_id).collect(),
            source: advisory.source.clone(),
        }
    }
}

fn set_affected(conn: &mut DbConnection, advisory_id: i64, product_ids: &[i64]) -> DbResult<()> {
    let mut ids = product_ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let mut known: Vec<i64> =
        products::table.filter(products::id.eq_any(&ids)).select(products::id).load(conn)?;
    known.sort_unstable();
    // Named, so that the client knows which of its ids is wrong.
    if let Some(missing) = ids.iter().find(|id| known.binary_search(id).is_err()) {
        return Err(DbError::Invalid(format!("affected product {missing} does not exist")));
    }
    diesel::delete(advisory_products::table.filter(advisory_products::advisory_id.eq(advisory_id)))
        .execute(conn)?;
    for product_id in ids {
        diesel::insert_into(advisory_products::table)
            .values((
                advisory_products::advisory_id.eq(advisory_id),
                advisory_products::product_id.eq(product_id),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// A rule an advisory's fields break, naming the field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldProblem {
    NoReference,
    NoTitle,
    NoRemediation,
    NoAffectedProduct,
}

/// Every rule `fields` break, in the fields' order: the one statement of the rules that `create`
/// and `update` refuse with (the API's one message) and that the advisory pages list field by
/// field. Whether each affected product exists is checked when it is written.
pub fn problems(fields: &AdvisoryFields) -> Vec<FieldProblem> {
    [
        (fields.reference.trim().is_empty(), FieldProblem::NoReference),
        (fields.title.trim().is_empty(), FieldProblem::NoTitle),
        (fields.remediation.trim().is_empty(), FieldProblem::NoRemediation),
        (fields.affected_product_ids.is_empty(), FieldProblem::NoAffectedProduct),
    ]
    .into_iter()
    .filter_map(|(broken, problem)| broken.then_some(problem))
    .collect()
}

fn validate(fields: &AdvisoryFields) -> DbResult<()> {
    let problems = problems(fields);
    if problems.iter().any(|problem| *problem != FieldProblem::NoAffectedProduct) {
        return Err(DbError::Invalid("reference, title and remediation must not be empty".into()));
    }
    if !problems.is_empty() {
        return Err(DbError::Invalid("an advisory must name at least one affected product".into()));
    }
    Ok(())
}

fn links_json(links: &[String]) -> DbResult<String> {
    serde_json::to_string(links).map_err(|error| DbError::unwritable_json("an advisory's links", &error))
}

/// The columns an advisory's create and update both write, from validated fields (the
/// reference only on create: it names the advisory for good).
#[derive(Insertable, AsChangeset)]
#[diesel(table_name = advisories, treat_none_as_null = true)]
struct AdvisoryColumns<'a> {
    title: &'a str,
    severity: Severity,
    published_at: NaiveDateTime,
    remediation: &'a str,
    links: String,
    source: Option<&'a str>,
}

impl AdvisoryFields {
    fn columns(&self) -> DbResult<AdvisoryColumns<'_>> {
        Ok(AdvisoryColumns {
            title: self.title.trim(),
            severity: self.severity,
            published_at: self.published_at,
            remediation: self.remediation.trim(),
            links: links_json(&self.links)?,
            source: self.source.as_deref(),
        })
    }
}

pub fn create(db: &Database, actor: &Actor, fields: AdvisoryFields) -> DbResult<Advisory> {
    db.write(actor, |conn| {
        let advisory = create_in(conn, &fields)?;
        Ok(Audited::one(
            advisory.clone(),
            Change::new("advisory.create", "advisory", advisory.id).after(&advisory),
        ))
    })
}

/// [`create`] inside the caller's transaction, with the same checks: what seeding calls too, so
/// a shipped advisory passes the rules an admin's does.
pub(crate) fn create_in(conn: &mut DbConnection, fields: &AdvisoryFields) -> DbResult<Advisory> {
    validate(fields)?;
    let taken: i64 = advisories::table
        .filter(advisories::reference.eq(fields.reference.trim()))
        .count()
        .get_result(conn)?;
    if taken > 0 {
        return Err(DbError::Conflict(format!("advisory {} exists", fields.reference.trim())));
    }
    let stamp = now();
    let id: i64 = diesel::insert_into(advisories::table)
        .values((
            fields.columns()?,
            advisories::reference.eq(fields.reference.trim()),
            advisories::created_at.eq(stamp),
            advisories::updated_at.eq(stamp),
        ))
        .returning(advisories::id)
        .get_result(conn)?;
    set_affected(conn, id, &fields.affected_product_ids)?;
    get(conn, id)
}

pub fn update(
    db: &Database,
    actor: &Actor,
    id: i64,
    change: impl FnOnce(&mut AdvisoryFields),
    precondition: Precondition,
) -> DbResult<Advisory> {
    db.write(actor, |conn| {
        let before = get(conn, id)?;
        precondition.check(before.revision)?;
        let mut fields = AdvisoryFields::of(&before);
        change(&mut fields);
        validate(&fields)?;
        diesel::update(advisories::table.find(id))
            .set((
                fields.columns()?,
                advisories::revision.eq(advisories::revision + 1),
                advisories::updated_at.eq(now()),
            ))
            .execute(conn)?;
        set_affected(conn, id, &fields.affected_product_ids)?;
        let after = get(conn, id)?;
        Ok(Audited::one(
            after.clone(),
            Change::new("advisory.update", "advisory", id).before(&before).after(&after),
        ))
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ResponseStatus {
    /// Not acknowledged, and the 48-hour deadline (high and critical) has passed.
    Overdue,
    NotAcknowledged,
    Acknowledged,
    Closed,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AdvisoryResponse {
    #[serde(serialize_with = "crate::time::utc_option")]
    pub acknowledged_at: Option<NaiveDateTime>,
    /// Whether the advisory applies to the organisation, once it has said.
    pub applicable: Option<bool>,
    pub applicability_reason: Option<String>,
    #[serde(serialize_with = "crate::time::utc_option")]
    pub closed_at: Option<NaiveDateTime>,
    pub remediation_note: Option<String>,
    /// Acknowledged after the 48-hour deadline.
    pub acknowledged_late: bool,
}

// Only the schema of this type is used, so that the document lists the values; `Holding::via`
// stays the text that `exposure` writes (`allocation` or `purchase`, nothing else).
/// How an organisation holds a product: through live allocations of a national entitlement
/// (`allocation`), local purchases (`purchase`), or running it by its estate snapshots
/// (`estate`: the quantity is devices, or users where that is larger).
#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum HoldingVia {
    Allocation,
    Purchase,
    Estate,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Holding {
    pub product_id: i64,
    /// `allocation`, `purchase` or `estate`.
    #[cfg_attr(feature = "openapi", schema(value_type = HoldingVia))]
    pub via: String,
    pub quantity: i64,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExposedOrganisation {
    pub organisation_code: String,
    pub name: String,
    pub region: Option<String>,
    pub holdings: Vec<Holding>,
    /// This organisation's acknowledgement deadline (high and critical): from publication, or,
    /// exposed by its estate alone, from the first snapshot that showed an affected product.
    #[serde(serialize_with = "crate::time::utc_option")]
    pub acknowledge_by: Option<NaiveDateTime>,
    pub status: ResponseStatus,
    pub response: AdvisoryResponse,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Exposure {
    pub advisory_id: i64,
    pub reference: String,
    pub severity: Severity,
    #[serde(serialize_with = "crate::time::utc_option")]
    pub acknowledge_by: Option<NaiveDateTime>,
    /// Overdue first, then not acknowledged, acknowledged, closed; then by code.
    pub organisations: Vec<ExposedOrganisation>,
}

/// An organisation's response, judged against the advisory's acknowledgement deadline: every
/// answer that shows a response (acknowledge, close, exposure, report) says the same about lateness.
/// A response as stored: whether it came late depends on the organisation's deadline.
#[derive(Queryable, Selectable)]
#[diesel(table_name = advisory_responses)]
struct StoredResponse {
    organisation_code: String,
    acknowledged_at: Option<NaiveDateTime>,
    applicable: Option<bool>,
    applicability_reason: Option<String>,
    closed_at: Option<NaiveDateTime>,
    remediation_note: Option<String>,
}

impl StoredResponse {
    fn with_deadline(self, deadline: Option<NaiveDateTime>) -> AdvisoryResponse {
        AdvisoryResponse {
            acknowledged_late: self.acknowledged_at.zip(deadline).is_some_and(|(at, by)| at > by),
            acknowledged_at: self.acknowledged_at,
            applicable: self.applicable,
            applicability_reason: self.applicability_reason,
            closed_at: self.closed_at,
            remediation_note: self.remediation_note,
        }
    }
}

fn response_of(
    conn: &mut DbConnection,
    advisory_id: i64,
    code: &str,
    deadline: Option<NaiveDateTime>,
) -> DbResult<Option<AdvisoryResponse>> {
    let stored: Option<StoredResponse> = advisory_responses::table
        .find((advisory_id, code))
        .select(StoredResponse::as_select())
        .first(conn)
        .optional()?;
    Ok(stored.map(|stored| stored.with_deadline(deadline)))
}

/// The responses of each of `codes` to the advisory, by code, in a statement per
/// [`BINDS_PER_QUERY`].
fn responses_to(
    conn: &mut DbConnection,
    advisory_id: i64,
    codes: &[String],
) -> DbResult<BTreeMap<String, StoredResponse>> {
    let mut responses = BTreeMap::new();
    for chunk in codes.chunks(BINDS_PER_QUERY) {
        let rows: Vec<StoredResponse> = advisory_responses::table
            .filter(advisory_responses::advisory_id.eq(advisory_id))
            .filter(advisory_responses::organisation_code.eq_any(chunk))
            .select(StoredResponse::as_select())
            .load(conn)?;
        responses.extend(rows.into_iter().map(|row| (row.organisation_code.clone(), row)));
    }
    Ok(responses)
}

fn status_of(
    response: &AdvisoryResponse,
    deadline: Option<NaiveDateTime>,
    at: NaiveDateTime,
) -> ResponseStatus {
    match (response.acknowledged_at, response.closed_at) {
        (_, Some(_)) => ResponseStatus::Closed,
        (Some(_), None) => ResponseStatus::Acknowledged,
        (None, None) if deadline.is_some_and(|d| at > d) => ResponseStatus::Overdue,
        (None, None) => ResponseStatus::NotAcknowledged,
    }
}

/// Every organisation holding an affected product, with what it holds and how it responded.
pub fn exposure(conn: &mut DbConnection, advisory_id: i64, at: NaiveDateTime) -> DbResult<Exposure> {
    exposure_of(conn, advisory_id, None, at)
}

/// [`exposure`], of one organisation only when `organisation` names one: each read then asks
/// for its holdings alone, rather than for the whole country's to keep one line of it (the
/// start page reads this for the signed-in organisation). A constant number of statements
/// however many organisations are exposed.
fn exposure_of(
    conn: &mut DbConnection,
    advisory_id: i64,
    organisation: Option<&str>,
    at: NaiveDateTime,
) -> DbResult<Exposure> {
    let advisory = get(conn, advisory_id)?;
    let affected: Vec<i64> = advisory.affected_products.iter().map(|p| p.product_id).collect();
    let only: Option<[String; 1]> = organisation.map(|code| [code.to_uppercase()]);
    let mut allocated = allocations::table
        .inner_join(entitlements::table)
        .filter(entitlements::product_id.eq_any(&affected))
        .filter(allocations::status.eq("live"))
        .select((allocations::organisation_code, entitlements::product_id, allocations::quantity))
        .into_boxed();
    let superseded = crate::purchases::superseded_ids(conn)?;
    let mut bought = purchases::table
        .filter(purchases::product_id.eq_any(&affected))
        .filter(purchases::id.ne_all(superseded))
        .select((purchases::organisation_code, purchases::product_id, purchases::quantity))
        .into_boxed();
    if let Some([code]) = &only {
        allocated = allocated.filter(allocations::organisation_code.eq(code.clone()));
        bought = bought.filter(purchases::organisation_code.eq(code.clone()));
    }
    let through_allocations: Vec<(String, i64, i64)> = allocated.load(conn)?;
    let through_purchases: Vec<(String, Option<i64>, i64)> = bought.load(conn)?;
    let held_already: std::collections::HashSet<String> = through_allocations
        .iter()
        .map(|(code, _, _)| code.clone())
        .chain(
            through_purchases
                .iter()
                .filter(|(_, product, _)| product.is_some())
                .map(|(code, _, _)| code.clone()),
        )
        .collect();
    let mut holdings: BTreeMap<String, BTreeMap<(i64, &'static str), i64>> = BTreeMap::new();
    let mut add = |code: String, product_id: i64, via: &'static str, quantity: i64| -> DbResult<()> {
        let held = holdings.entry(code).or_default().entry((product_id, via)).or_default();
        *held = held.checked_add(quantity).ok_or_else(|| DbError::Internal("held seats overflow".into()))?;
        Ok(())
    };
    for (code, product_id, quantity) in through_allocations {
        add(code, product_id, "allocation", quantity)?;
    }
    for (code, product_id, quantity) in through_purchases.into_iter().filter_map(|(c, p, q)| Some((c, p?, q)))
    {
        add(code, product_id, "purchase", quantity)?;
    }
    // Exposed by the ledger or purchases: from publication. By the estate alone: from when a
    // snapshot first showed an affected product, if later.
    let mut exposed_since: BTreeMap<String, NaiveDateTime> = BTreeMap::new();
    for ((code, product_id), running) in
        crate::estates::running_by_product(conn, Some(&affected), only.as_ref().map(|o| &o[..]), |_| false)?
    {
        if !held_already.contains(&code) {
            let since = exposed_since.entry(code.clone()).or_insert(running.first_seen);
            *since = (*since).min(running.first_seen);
        }
        add(code, product_id, "estate", running.count())?;
    }
    let codes: Vec<String> = holdings.keys().cloned().collect();
    let mut names = named_in_regions(conn, &codes)?;
    let mut responses = responses_to(conn, advisory_id, &codes)?;
    let mut organisations = Vec::new();
    for (code, held) in holdings {
        let (name, region) = names.remove(&code).ok_or(DbError::NotFound("organisation"))?;
        let deadline = organisation_deadline(&advisory, exposed_since.get(&code).copied());
        let response =
            responses.remove(&code).map(|stored| stored.with_deadline(deadline)).unwrap_or_default();
        organisations.push(ExposedOrganisation {
            acknowledge_by: deadline,
            status: status_of(&response, deadline, at),
            organisation_code: code,
            name,
            region,
            holdings: held
                .into_iter()
                .map(|((product_id, via), quantity)| Holding { product_id, via: via.into(), quantity })
                .collect(),
            response,
        });
    }
    organisations.sort_by(|a, b| (a.status, &a.organisation_code).cmp(&(b.status, &b.organisation_code)));
    Ok(Exposure {
        advisory_id,
        reference: advisory.reference,
        severity: advisory.severity,
        acknowledge_by: advisory.acknowledge_by,
        organisations,
    })
}

/// The name and region of each of `codes`, by code, in a statement per [`BINDS_PER_QUERY`].
fn named_in_regions(
    conn: &mut DbConnection,
    codes: &[String],
) -> DbResult<BTreeMap<String, (String, Option<String>)>> {
    let mut named = BTreeMap::new();
    for chunk in codes.chunks(BINDS_PER_QUERY) {
        let rows: Vec<(String, String, Option<String>)> = orgs::table
            .filter(orgs::code.eq_any(chunk))
            .select((orgs::code, orgs::name, orgs::region))
            .load(conn)?;
        named.extend(rows.into_iter().map(|(code, name, region)| (code, (name, region))));
    }
    Ok(named)
}

/// An organisation's acknowledgement deadline: from publication, or from `exposed_since` when
/// it was exposed later.
fn organisation_deadline(advisory: &Advisory, exposed_since: Option<NaiveDateTime>) -> Option<NaiveDateTime> {
    let from = exposed_since.map_or(advisory.published_at, |since| since.max(advisory.published_at));
    advisory.severity.acknowledgement_deadline(from)
}

/// When `code` became exposed to the advisory, if by its estate alone (else `None`: from
/// publication, as for holdings through the ledger or purchases, or for no exposure at all).
fn estate_exposure_since(
    conn: &mut DbConnection,
    advisory: &Advisory,
    code: &str,
) -> DbResult<Option<NaiveDateTime>> {
    let affected: Vec<i64> = advisory.affected_products.iter().map(|p| p.product_id).collect();
    let held: i64 = allocations::table
        .inner_join(entitlements::table)
        .filter(entitlements::product_id.eq_any(&affected))
        .filter(allocations::status.eq("live"))
        .filter(allocations::organisation_code.eq(code))
        .count()
        .get_result(conn)?;
    let superseded = crate::purchases::superseded_ids(conn)?;
    let bought: i64 = purchases::table
        .filter(purchases::product_id.eq_any(&affected))
        .filter(purchases::id.ne_all(superseded))
        .filter(purchases::organisation_code.eq(code))
        .count()
        .get_result(conn)?;
    if held > 0 || bought > 0 {
        return Ok(None);
    }
    let codes = [code.to_uppercase()];
    let running = crate::estates::running_by_product(conn, Some(&affected), Some(&codes), |_| false)?;
    Ok(running.into_values().map(|totals| totals.first_seen).min())
}

pub enum Response {
    Acknowledge { applicable: Option<bool>, reason: Option<String> },
    Applicability { applicable: bool, reason: Option<String> },
    Close { remediation_note: String },
}

/// Records an organisation's response to an advisory.
pub fn respond(
    db: &Database,
    actor: &Actor,
    advisory_id: i64,
    code: &str,
    response: Response,
) -> DbResult<AdvisoryResponse> {
    db.write(actor, |conn| {
        let advisory = get(conn, advisory_id)?;
        let organisation = organisations::get(conn, code)?;
        let deadline =
            organisation_deadline(&advisory, estate_exposure_since(conn, &advisory, &organisation.code)?);
        let before = response_of(conn, advisory_id, &organisation.code, deadline)?;
        if before.is_none() {
            diesel::insert_into(advisory_responses::table)
                .values((
                    advisory_responses::advisory_id.eq(advisory_id),
                    advisory_responses::organisation_code.eq(&organisation.code),
                ))
                .execute(conn)?;
        }
        let current = before.clone().unwrap_or_default();
        if current.closed_at.is_some() {
            return Err(DbError::Conflict("the advisory is already closed for this organisation".into()));
        }
        let target = advisory_responses::table.find((advisory_id, organisation.code.as_str()));
        let action = match response {
            Response::Acknowledge { applicable, reason } => {
                if current.acknowledged_at.is_some() {
                    return Err(DbError::Conflict("the advisory is already acknowledged".into()));
                }
                diesel::update(target)
                    .set((
                        advisory_responses::acknowledged_at.eq(now()),
                        advisory_responses::applicable.eq(applicable),
                        advisory_responses::applicability_reason.eq(reason),
                    ))
                    .execute(conn)?;
                "advisory.acknowledge"
            }
            Response::Applicability { applicable, reason } => {
                if current.acknowledged_at.is_none() {
                    return Err(DbError::Conflict("acknowledge the advisory first".into()));
                }
                diesel::update(target)
                    .set((
                        advisory_responses::applicable.eq(Some(applicable)),
                        advisory_responses::applicability_reason.eq(reason),
                    ))
                    .execute(conn)?;
                "advisory.applicability"
            }
            Response::Close { remediation_note } => {
                if current.acknowledged_at.is_none() {
                    return Err(DbError::Conflict("acknowledge the advisory before closing it".into()));
                }
                if remediation_note.trim().is_empty() {
                    return Err(DbError::Invalid("closing needs a remediation note".into()));
                }
                diesel::update(target)
                    .set((
                        advisory_responses::closed_at.eq(now()),
                        advisory_responses::remediation_note.eq(remediation_note.trim()),
                    ))
                    .execute(conn)?;
                "advisory.close"
            }
        };
        let after = response_of(conn, advisory_id, &organisation.code, deadline)?.unwrap_or_default();
        let change = Change::new(action, "advisory_response", format!("{advisory_id}/{}", organisation.code))
            .organisation(Some(&organisation.code))
            .before(&before)
            .after(&after);
        Ok(Audited::one(after, change))
    })
}

#[derive(Clone, Debug, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AdvisoryStanding {
    pub advisory_id: i64,
    pub reference: String,
    pub severity: Severity,
    pub organisation_code: String,
    pub status: ResponseStatus,
    #[serde(serialize_with = "crate::time::utc_option")]
    pub acknowledge_by: Option<NaiveDateTime>,
    pub acknowledged_late: bool,
}

/// Every exposed organisation of every advisory (or of one organisation), overdue first.
pub fn report(
    conn: &mut DbConnection,
    organisation: Option<&str>,
    at: NaiveDateTime,
) -> DbResult<Vec<AdvisoryStanding>> {
    report_since(conn, organisation, None, at)
}

/// [`report`] of the advisories published at or after `since` (all of them when `None`).
pub fn report_since(
    conn: &mut DbConnection,
    organisation: Option<&str>,
    since: Option<NaiveDateTime>,
    at: NaiveDateTime,
) -> DbResult<Vec<AdvisoryStanding>> {
    let mut query = advisories::table.select(advisories::id).order(advisories::id).into_boxed();
    if let Some(since) = since {
        query = query.filter(advisories::published_at.ge(since));
    }
    let ids: Vec<i64> = query.load(conn)?;
    let mut lines = Vec::new();
    for id in ids {
        let exposure = exposure_of(conn, id, organisation, at)?;
        for exposed in exposure.organisations {
            lines.push(AdvisoryStanding {
                advisory_id: id,
                reference: exposure.reference.clone(),
                severity: exposure.severity,
                organisation_code: exposed.organisation_code,
                status: exposed.status,
                acknowledge_by: exposed.acknowledge_by,
                acknowledged_late: exposed.response.acknowledged_late,
            });
        }
    }
    lines.sort_by(|a, b| {
        (a.status, std::cmp::Reverse(a.severity), a.advisory_id, &a.organisation_code).cmp(&(
            b.status,
            std::cmp::Reverse(b.severity),
            b.advisory_id,
            &b.organisation_code,
        ))
    });
    Ok(lines)
}
