//! Central licence agreements and their entitlement lines, with the obligations a claiming
//! organisation takes on. Ended agreements are kept and listed on request; nothing is deleted.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use serde::Serialize;

use crate::audit::{Actor, Audited, Change, now};
use crate::connection::{BINDS_PER_QUERY, Database, DbConnection};
use crate::error::{DbError, DbResult};
use crate::page::{Page, PageRequest, Precondition};
use crate::schema::{agreements, entitlements, obligations, products, suppliers};
use crate::vocabulary::{
    AgreementStatus, FundingModel, Metric, OrganisationKind, OverAllocationPolicy, Tier, join_kinds,
    parse_kinds,
};

/// The most seats one entitlement line may hold in all, capped or not (and the largest cap).
/// A hundred times the NHS workforce; the bound keeps every total the ledger and the reports
/// add up far inside 64 bits (SQLite turns an overflowing integer into a float; PostgreSQL fails).
pub const MAX_SEATS_PER_LINE: i64 = 1_000_000_000;

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
    funding_model: String,
    status: String,
    eligible_kinds: String,
    source: Option<String>,
    revision: i64,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
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
    #[serde(skip)]
    pub revision: i64,
    #[serde(serialize_with = "crate::time::utc")]
    pub created_at: NaiveDateTime,
    #[serde(serialize_with = "crate::time::utc")]
    pub updated_at: NaiveDateTime,
}

const ENDED: [&str; 2] = ["expired", "terminated"];

fn to_agreement(row: AgreementRow, supplier: String) -> Agreement {
    let status = AgreementStatus::parse(&row.status).unwrap_or(AgreementStatus::Draft);
    Agreement {
        id: row.id,
        supplier_id: row.supplier_id,
        supplier,
        reference: row.reference,
        title: row.title,
        framework_reference: row.framework_reference,
        starts_on: row.starts_on,
        ends_on: row.ends_on,
        funding_model: FundingModel::parse(&row.funding_model).unwrap_or(FundingModel::Central),
        ended: matches!(status, AgreementStatus::Expired | AgreementStatus::Terminated),
        status,
        eligible_kinds: parse_kinds(&row.eligible_kinds),
        source: row.source,
        revision: row.revision,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

#[derive(Debug, Default)]
pub struct AgreementFilter {
    pub supplier_id: Option<i64>,
    pub status: Option<AgreementStatus>,
    pub framework_reference: Option<String>,
    pub include_ended: bool,
}

pub fn list(
    conn: &mut DbConnection,
    filter: &AgreementFilter,
    page: &PageRequest,
) -> DbResult<Page<Agreement>> {
    let mut query = agreements::table
        .inner_join(suppliers::table)
        .select((AgreementRow::as_select(), suppliers::name))
        .order(agreements::id)
        .into_boxed();
    if let Some(supplier) = filter.supplier_id {
        query = query.filter(agreements::supplier_id.eq(supplier));
    }
    if let Some(status) = filter.status {
        query = query.filter(agreements::status.eq(status.as_str()));
    }
    if let Some(framework) = &filter.framework_reference {
        query = query.filter(agreements::framework_reference.eq(framework.clone()));
    }
    if !filter.include_ended && !filter.status.is_some_and(|s| ENDED.contains(&s.as_str())) {
        query = query.filter(agreements::status.ne_all(ENDED));
    }
    if let Some(after) = page.after_id()? {
        query = query.filter(agreements::id.gt(after));
    }
    let limit = page.limit();
    let rows: Vec<(AgreementRow, String)> = query.limit(limit + 1).load(conn)?;
    let items = rows.into_iter().map(|(row, supplier)| to_agreement(row, supplier)).collect();
    Ok(Page::from_rows(items, limit, |a: &Agreement| a.id.to_string()))
}

pub fn get(conn: &mut DbConnection, id: i64) -> DbResult<Agreement> {
    let (row, supplier) = agreements::table
        .inner_join(suppliers::table)
        .filter(agreements::id.eq(id))
        .select((AgreementRow::as_select(), suppliers::name))
        .first(conn)
        .optional()?
        .ok_or(DbError::NotFound("agreement"))?;
    Ok(to_agreement(row, supplier))
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
        found.extend(rows.into_iter().map(|(row, supplier)| to_agreement(row, supplier)));
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
}

impl AgreementFields {
    fn validate(&self) -> DbResult<()> {
        if self.reference.trim().is_empty() || self.title.trim().is_empty() {
            return Err(DbError::Invalid("reference and title must not be empty".into()));
        }
        if self.ends_on.is_some_and(|end| end < self.starts_on) {
            return Err(DbError::Invalid("ends_on is before starts_on".into()));
        }
        if self.eligible_kinds.is_empty() {
            return Err(DbError::Invalid("eligible_kinds must name at least one organisation kind".into()));
        }
        Ok(())
    }
}

pub fn create(db: &Database, actor: &Actor, fields: AgreementFields) -> DbResult<Agreement> {
    fields.validate()?;
    db.write(actor, |conn| {
        let supplier: i64 =
            suppliers::table.filter(suppliers::id.eq(fields.supplier_id)).count().get_result(conn)?;
        if supplier == 0 {
            return Err(DbError::Invalid(format!("supplier {} does not exist", fields.supplier_id)));
        }
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
                agreements::supplier_id.eq(fields.supplier_id),
                agreements::reference.eq(fields.reference.trim()),
                agreements::title.eq(fields.title.trim()),
                agreements::framework_reference.eq(&fields.framework_reference),
                agreements::starts_on.eq(fields.starts_on),
                agreements::ends_on.eq(fields.ends_on),
                agreements::funding_model.eq(fields.funding_model.as_str()),
                agreements::status.eq(fields.status.as_str()),
                agreements::eligible_kinds.eq(join_kinds(&fields.eligible_kinds)),
                agreements::source.eq(&fields.source),
                agreements::created_at.eq(stamp),
                agreements::updated_at.eq(stamp),
            ))
            .returning(agreements::id)
            .get_result(conn)?;
        let agreement = get(conn, id)?;
        Ok(Audited::one(
            agreement.clone(),
            Change::new("agreement.create", "agreement", id).after(&agreement),
        ))
    })
}

/// Status moves forward only: draft to active or terminated; active to expired or terminated.
fn status_change_allowed(from: AgreementStatus, to: AgreementStatus) -> bool {
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
        let mut fields = AgreementFields {
            supplier_id: before.supplier_id,
            reference: before.reference.clone(),
            title: before.title.clone(),
            framework_reference: before.framework_reference.clone(),
            starts_on: before.starts_on,
            ends_on: before.ends_on,
            funding_model: before.funding_model,
            status: before.status,
            eligible_kinds: before.eligible_kinds.clone(),
            source: before.source.clone(),
        };
        change(&mut fields);
        fields.validate()?;
        if !status_change_allowed(before.status, fields.status) {
            return Err(DbError::Conflict(format!(
                "an agreement cannot go from {} to {}",
                before.status.as_str(),
                fields.status.as_str()
            )));
        }
        diesel::update(agreements::table.find(id))
            .set((
                agreements::title.eq(fields.title.trim()),
                agreements::framework_reference.eq(&fields.framework_reference),
                agreements::starts_on.eq(fields.starts_on),
                agreements::ends_on.eq(fields.ends_on),
                agreements::funding_model.eq(fields.funding_model.as_str()),
                agreements::status.eq(fields.status.as_str()),
                agreements::eligible_kinds.eq(join_kinds(&fields.eligible_kinds)),
                agreements::source.eq(&fields.source),
                agreements::revision.eq(agreements::revision + 1),
                agreements::updated_at.eq(now()),
            ))
            .execute(conn)?;
        let after = get(conn, id)?;
        Ok(Audited::one(
            after.clone(),
            Change::new("agreement.update", "agreement", id).before(&before).after(&after),
        ))
    })
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = entitlements)]
struct EntitlementRow {
    id: i64,
    agreement_id: i64,
    product_id: i64,
    tier: String,
    metric: String,
    seat_cap: Option<i64>,
    seats_allocated: i64,
    over_allocation_policy: String,
    eligible_kinds: String,
    starts_on: NaiveDate,
    ends_on: Option<NaiveDate>,
    how_to_claim: Option<String>,
    source: Option<String>,
    revision: i64,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
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
}

/// Seats left under a cap (never negative), or `None` when the line is uncapped.
pub(crate) fn seats_remaining(seat_cap: Option<i64>, seats_allocated: i64) -> Option<i64> {
    seat_cap.map(|cap| (cap - seats_allocated).max(0))
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
            let seats_over_cap = row.seat_cap.map_or(0, |cap| (row.seats_allocated - cap).max(0));
            Entitlement {
                obligations: all_obligations.iter().filter(|o| o.entitlement_id == row.id).cloned().collect(),
                id: row.id,
                agreement_id: row.agreement_id,
                product_id: row.product_id,
                product: crate::products::label(&name, &edition, &version),
                tier: Tier::parse(&row.tier).unwrap_or(Tier::NationalProvision),
                metric: Metric::parse(&row.metric).unwrap_or(Metric::PerDevice),
                seat_cap: row.seat_cap,
                seats_allocated: row.seats_allocated,
                seats_remaining,
                seats_over_cap,
                over_allocation_policy: OverAllocationPolicy::parse(&row.over_allocation_policy)
                    .unwrap_or(OverAllocationPolicy::Block),
                eligible_kinds: parse_kinds(&row.eligible_kinds),
                starts_on: row.starts_on,
                ends_on: row.ends_on,
                how_to_claim: row.how_to_claim,
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

/// Every agreement, ended ones included (for the read model).
pub fn all(conn: &mut DbConnection) -> DbResult<Vec<Agreement>> {
    let rows: Vec<(AgreementRow, String)> = agreements::table
        .inner_join(suppliers::table)
        .select((AgreementRow::as_select(), suppliers::name))
        .order(agreements::id)
        .load(conn)?;
    Ok(rows.into_iter().map(|(row, supplier)| to_agreement(row, supplier)).collect())
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
    pub source: Option<String>,
}

impl EntitlementFields {
    fn validate(&self, agreement: &Agreement) -> DbResult<()> {
        if self.seat_cap.is_some_and(|cap| !(0..=MAX_SEATS_PER_LINE).contains(&cap)) {
            return Err(DbError::Invalid(format!("seat_cap must be between 0 and {}", MAX_SEATS_PER_LINE)));
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
        let agreement = get(conn, agreement_id)?;
        fields.validate(&agreement)?;
        if agreement.ended {
            return Err(DbError::Conflict("the agreement has ended: it takes no new lines".into()));
        }
        let product: i64 =
            products::table.filter(products::id.eq(fields.product_id)).count().get_result(conn)?;
        if product == 0 {
            return Err(DbError::Invalid(format!("product {} does not exist", fields.product_id)));
        }
        if new_obligations.iter().any(|o| o.description.trim().is_empty()) {
            return Err(DbError::Invalid("an obligation needs a description".into()));
        }
        let stamp = now();
        let id: i64 = diesel::insert_into(entitlements::table)
            .values((
                entitlements::agreement_id.eq(agreement_id),
                entitlements::product_id.eq(fields.product_id),
                entitlements::tier.eq(fields.tier.as_str()),
                entitlements::metric.eq(fields.metric.as_str()),
                entitlements::seat_cap.eq(fields.seat_cap),
                entitlements::over_allocation_policy.eq(fields.over_allocation_policy.as_str()),
                entitlements::eligible_kinds.eq(join_kinds(&fields.eligible_kinds)),
                entitlements::starts_on.eq(fields.starts_on),
                entitlements::ends_on.eq(fields.ends_on),
                entitlements::how_to_claim.eq(&fields.how_to_claim),
                entitlements::source.eq(&fields.source),
                entitlements::created_at.eq(stamp),
                entitlements::updated_at.eq(stamp),
            ))
            .returning(entitlements::id)
            .get_result(conn)?;
        for obligation in &new_obligations {
            diesel::insert_into(obligations::table)
                .values((
                    obligations::entitlement_id.eq(id),
                    obligations::description.eq(obligation.description.trim()),
                    obligations::due_on.eq(obligation.due_on),
                ))
                .execute(conn)?;
        }
        let entitlement = get_entitlement(conn, id)?;
        let change = Change::new("entitlement.create", "entitlement", id).after(&entitlement);
        Ok(Audited::one(entitlement, change))
    })
}

#[derive(Debug, Default)]
pub struct EntitlementChanges {
    pub seat_cap: Option<Option<i64>>,
    pub over_allocation_policy: Option<OverAllocationPolicy>,
    pub eligible_kinds: Option<Vec<OrganisationKind>>,
    pub ends_on: Option<Option<NaiveDate>>,
    pub how_to_claim: Option<Option<String>>,
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
                entitlements::seat_cap.eq(fields.seat_cap),
                entitlements::over_allocation_policy.eq(fields.over_allocation_policy.as_str()),
                entitlements::eligible_kinds.eq(join_kinds(&fields.eligible_kinds)),
                entitlements::ends_on.eq(fields.ends_on),
                entitlements::how_to_claim.eq(&fields.how_to_claim),
                entitlements::source.eq(&fields.source),
                entitlements::revision.eq(entitlements::revision + 1),
                entitlements::updated_at.eq(now()),
            ))
            .execute(conn)?;
        let after = get_entitlement(conn, id)?;
        let change = Change::new("entitlement.update", "entitlement", id).before(&before).after(&after);
        Ok(Audited::one(after, change))
    })
}
