//! Local purchases: a trust's own purchase against the standard version published on the
//! purchase date, with a declaration per MUST requirement. A purchase that declares a MUST unmet
//! (or fails a machine-checkable criterion) is recorded as non-compliant, never refused.
//! Purchases never change; a correction is a new purchase that supersedes one.

use std::collections::BTreeMap;

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use serde::Serialize;

use crate::audit::{Actor, Audited, Change, now};
use crate::connection::{BINDS_PER_QUERY, Database, DbConnection};
use crate::error::{DbError, DbResult};
use crate::organisations;
use crate::page::{Page, PageRequest};
use crate::products;
use crate::schema::{
    organisations as orgs, purchase_declarations, purchases, requirements, standard_versions,
};
use crate::standards::{self, Outcome};
use crate::vocabulary::is_slug;

#[derive(Clone, Debug, Serialize, PartialEq, Queryable)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Declaration {
    /// The requirement's code.
    pub requirement: String,
    pub met: bool,
    pub evidence: Option<String>,
}

/// A purchase's own columns. It stays beside [`Purchase`] because a purchase also carries what
/// its table does not (the standard version's number, the declarations and the correcting
/// purchase, read for a whole batch at once), and diesel's derives have no field they leave
/// out; `Purchase` is also the wire schema, so the columns cannot be nested in it without
/// changing the API document.
#[derive(Queryable, Selectable)]
#[diesel(table_name = purchases)]
struct PurchaseRow {
    id: i64,
    organisation_code: String,
    product_id: Option<i64>,
    description: Option<String>,
    category: String,
    purchased_on: NaiveDate,
    quantity: i64,
    unit_cost_pence: i64,
    order_reference: String,
    compliant: bool,
    supersedes_id: Option<i64>,
    created_by: Option<i64>,
    created_at: NaiveDateTime,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Purchase {
    pub id: i64,
    pub organisation_code: String,
    pub product_id: Option<i64>,
    /// For a product not in the catalogue.
    pub description: Option<String>,
    pub category: String,
    pub standard_id: i64,
    /// The standard version bought against.
    pub version: i32,
    pub purchased_on: NaiveDate,
    pub quantity: i64,
    pub unit_cost_pence: i64,
    pub order_reference: String,
    /// Every MUST requirement declared met and every machine-checkable criterion passed.
    pub compliant: bool,
    /// The purchase this one corrects.
    pub supersedes_id: Option<i64>,
    /// A later purchase that corrects this one.
    pub superseded_by_id: Option<i64>,
    pub declarations: Vec<Declaration>,
    pub created_by: Option<i64>,
    #[serde(serialize_with = "crate::time::utc")]
    pub created_at: NaiveDateTime,
}

/// Purchase rows with the standard and number of the version each was bought against.
type PurchaseWithVersion = (PurchaseRow, (i64, i32));

macro_rules! purchase_query {
    () => {
        purchases::table
            .inner_join(standard_versions::table)
            .select((PurchaseRow::as_select(), (standard_versions::standard_id, standard_versions::number)))
    };
}

/// Assembles purchases from their rows in three statements, however many rows: the version came
/// with each row (a join); every row's declarations and corrections are read in one batch each.
fn to_purchases(conn: &mut DbConnection, rows: Vec<PurchaseWithVersion>) -> DbResult<Vec<Purchase>> {
    let ids: Vec<i64> = rows.iter().map(|(row, _)| row.id).collect();
    let mut declarations: BTreeMap<i64, Vec<Declaration>> = BTreeMap::new();
    for chunk in ids.chunks(BINDS_PER_QUERY) {
        let found = purchase_declarations::table
            .inner_join(requirements::table)
            .filter(purchase_declarations::purchase_id.eq_any(chunk))
            .order((purchase_declarations::purchase_id, requirements::position, requirements::id))
            .select((
                purchase_declarations::purchase_id,
                (requirements::code, purchase_declarations::met, purchase_declarations::evidence),
            ))
            .load::<(i64, Declaration)>(conn)?;
        for (purchase_id, declaration) in found {
            declarations.entry(purchase_id).or_default().push(declaration);
        }
    }
    let mut superseded_by: BTreeMap<i64, i64> = BTreeMap::new();
    for chunk in ids.chunks(BINDS_PER_QUERY) {
        let found = purchases::table
            .filter(purchases::supersedes_id.eq_any(chunk))
            .select((purchases::supersedes_id.assume_not_null(), purchases::id))
            .load::<(i64, i64)>(conn)?;
        superseded_by.extend(found);
    }
    Ok(rows
        .into_iter()
        .map(|(row, (standard_id, version))| Purchase {
            superseded_by_id: superseded_by.get(&row.id).copied(),
            declarations: declarations.remove(&row.id).unwrap_or_default(),
            id: row.id,
            organisation_code: row.organisation_code,
            product_id: row.product_id,
            description: row.description,
            category: row.category,
            standard_id,
            version,
            purchased_on: row.purchased_on,
            quantity: row.quantity,
            unit_cost_pence: row.unit_cost_pence,
            order_reference: row.order_reference,
            compliant: row.compliant,
            supersedes_id: row.supersedes_id,
            created_by: row.created_by,
            created_at: row.created_at,
        })
        .collect())
}

pub fn get(conn: &mut DbConnection, id: i64) -> DbResult<Purchase> {
    let row = purchase_query!()
        .filter(purchases::id.eq(id))
        .first(conn)
        .optional()?
        .ok_or(DbError::NotFound("purchase"))?;
    to_purchases(conn, vec![row])?.pop().ok_or(DbError::NotFound("purchase"))
}

pub struct NewPurchase {
    pub organisation_code: String,
    pub product_id: Option<i64>,
    pub description: Option<String>,
    pub category: String,
    pub standard_id: i64,
    pub version: i32,
    pub purchased_on: NaiveDate,
    pub quantity: i64,
    pub unit_cost_pence: i64,
    pub order_reference: String,
    pub declarations: Vec<Outcome>,
    pub evidence: Vec<Option<String>>,
    pub supersedes_id: Option<i64>,
}

/// The dearest unit a purchase may record: GBP 100 million, in pence. With the quantity bound
/// (`ledger::MAX_SEATS_PER_CLAIM`) a purchase's cost stays below 10^17 pence, and the compliance
/// report adds costs with checked arithmetic.
pub const MAX_UNIT_COST_PENCE: i64 = 10_000_000_000;

pub fn record(db: &Database, actor: &Actor, new: NewPurchase) -> DbResult<Purchase> {
    if new.product_id.is_none() && new.description.as_deref().is_none_or(|d| d.trim().is_empty()) {
        return Err(DbError::Invalid(
            "give a product_id, or a description for a product not in the catalogue".into(),
        ));
    }
    if !is_slug(&new.category) {
        return Err(DbError::Invalid("category must be a slug".into()));
    }
    crate::ledger::check_quantity(new.quantity)?;
    if !(0..=MAX_UNIT_COST_PENCE).contains(&new.unit_cost_pence) {
        return Err(DbError::Invalid(format!("unit_cost_pence must be between 0 and {MAX_UNIT_COST_PENCE}")));
    }
    if new.order_reference.trim().is_empty() {
        return Err(DbError::Invalid("order_reference must not be empty".into()));
    }
    db.write(actor, |conn| {
        let organisation = organisations::get(conn, &new.organisation_code)?;
        let standard = standards::get(conn, new.standard_id)
            .map_err(|_| DbError::Invalid(format!("standard {} does not exist", new.standard_id)))?;
        if standard.category != new.category {
            return Err(DbError::Invalid(format!(
                "standard {} is for {}, not {}",
                standard.id, standard.category, new.category
            )));
        }
        let current = standards::published_on(conn, standard.id, new.purchased_on)?;
        let version = match current {
            Some(version) if version.number == new.version => version,
            Some(version) => {
                return Err(DbError::Invalid(format!(
                    "version {} was not the published version on {}: version {} was; buy against it",
                    new.version, new.purchased_on, version.number
                )));
            }
            None => {
                return Err(DbError::Invalid(format!(
                    "no version of standard {} was published on {}",
                    standard.id, new.purchased_on
                )));
            }
        };
        let product = match new.product_id {
            Some(id) => Some(
                products::get(conn, id, new.purchased_on)
                    .map_err(|_| DbError::Invalid(format!("product {id} does not exist")))?,
            ),
            None => None,
        };
        if let Some(product) = &product
            && product.category != new.category
        {
            return Err(DbError::Invalid(format!(
                "product {} is in category {}, not {}",
                product.id, product.category, new.category
            )));
        }
        let (outcomes, compliant) =
            standards::judge(&version, product.as_ref(), new.purchased_on, &new.declarations, false)?;
        if let Some(previous) = new.supersedes_id {
            // Another organisation's purchase is answered as one that does not exist: the answer
            // must not tell which purchase ids are taken.
            let not_found = || DbError::Invalid(format!("purchase {previous} does not exist"));
            let old = get(conn, previous).map_err(|_| not_found())?;
            if old.organisation_code != organisation.code {
                return Err(not_found());
            }
        }
        let inserted = diesel::insert_into(purchases::table)
            .values((
                purchases::organisation_code.eq(&organisation.code),
                purchases::product_id.eq(new.product_id),
                purchases::description.eq(&new.description),
                purchases::category.eq(&new.category),
                purchases::version_id.eq(version.id),
                purchases::purchased_on.eq(new.purchased_on),
                purchases::quantity.eq(new.quantity),
                purchases::unit_cost_pence.eq(new.unit_cost_pence),
                purchases::order_reference.eq(new.order_reference.trim()),
                purchases::compliant.eq(compliant),
                purchases::supersedes_id.eq(new.supersedes_id),
                purchases::created_by.eq(actor.user_id),
                purchases::created_at.eq(now()),
            ))
            .returning(purchases::id)
            .get_result::<i64>(conn);
        let id = match inserted {
            Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
                return Err(DbError::Conflict("that purchase has already been superseded".into()));
            }
            other => other?,
        };
        for outcome in &outcomes {
            let requirement_id = version
                .requirements
                .iter()
                .find(|r| r.code == outcome.requirement)
                .map(|r| r.id)
                .ok_or_else(|| {
                    DbError::Internal(format!(
                        "standard version {}: judged requirement {} is not one of its requirements",
                        version.id, outcome.requirement
                    ))
                })?;
            let position = new.declarations.iter().position(|d| d.requirement == outcome.requirement);
            let evidence = position.and_then(|p| new.evidence.get(p).cloned().flatten());
            diesel::insert_into(purchase_declarations::table)
                .values((
                    purchase_declarations::purchase_id.eq(id),
                    purchase_declarations::requirement_id.eq(requirement_id),
                    purchase_declarations::met.eq(outcome.met),
                    purchase_declarations::evidence.eq(evidence),
                ))
                .execute(conn)?;
        }
        let purchase = get(conn, id)?;
        let change = Change::new("purchase.create", "purchase", id)
            .organisation(Some(&organisation.code))
            .after(&purchase);
        Ok(Audited::one(purchase, change))
    })
}

/// The purchases that a correction has replaced (few: loaded, rather than a self-join).
pub(crate) fn superseded_ids(conn: &mut DbConnection) -> DbResult<Vec<i64>> {
    Ok(purchases::table
        .filter(purchases::supersedes_id.is_not_null())
        .select(purchases::supersedes_id.assume_not_null())
        .load(conn)?)
}

pub fn list(
    conn: &mut DbConnection,
    organisation_code: &str,
    include_superseded: bool,
    page: &PageRequest,
) -> DbResult<Page<Purchase>> {
    let mut query = purchase_query!()
        .filter(purchases::organisation_code.eq(organisation_code.to_uppercase()))
        .order(purchases::id)
        .into_boxed();
    if !include_superseded {
        query = query.filter(purchases::id.ne_all(superseded_ids(conn)?));
    }
    if let Some(after) = page.after_id()? {
        query = query.filter(purchases::id.gt(after));
    }
    let limit = page.limit();
    let rows = query.limit(limit + 1).load(conn)?;
    Ok(Page::from_rows(to_purchases(conn, rows)?, limit, |p| p.id.to_string()))
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ComplianceLine {
    pub organisation_code: String,
    pub region: Option<String>,
    pub category: String,
    pub purchases: i64,
    pub compliant: i64,
    pub non_compliant: i64,
    /// Quantity times unit cost, in pence.
    pub spend_pence: i64,
    /// Purchases made against a version that has since been superseded.
    pub against_superseded_versions: i64,
}

/// Compliance of current purchases (corrections replace what they supersede), per organisation,
/// region and category; optionally for one organisation or one region.
pub fn compliance(
    conn: &mut DbConnection,
    organisation: Option<&str>,
    region: Option<&str>,
) -> DbResult<Vec<ComplianceLine>> {
    let superseded = superseded_ids(conn)?;
    let mut query = purchases::table
        .inner_join(orgs::table)
        .inner_join(standard_versions::table)
        .filter(purchases::id.ne_all(superseded))
        .select((
            purchases::organisation_code,
            orgs::region,
            purchases::category,
            purchases::compliant,
            purchases::quantity,
            purchases::unit_cost_pence,
            standard_versions::status,
        ))
        .into_boxed();
    if let Some(code) = organisation {
        query = query.filter(purchases::organisation_code.eq(code.to_uppercase()));
    }
    if let Some(region) = region {
        query = query.filter(orgs::region.eq(region.to_owned()));
    }
    type Row = (String, Option<String>, String, bool, i64, i64, String);
    let rows: Vec<Row> = query.load(conn)?;
    let mut lines: BTreeMap<(String, String), ComplianceLine> = BTreeMap::new();
    for (code, region, category, compliant, quantity, unit_cost, version_status) in rows {
        let line = lines.entry((code.clone(), category.clone())).or_insert_with(|| ComplianceLine {
            organisation_code: code,
            region,
            category,
            ..Default::default()
        });
        line.purchases += 1;
        if compliant {
            line.compliant += 1;
        } else {
            line.non_compliant += 1;
        }
        line.spend_pence = quantity
            .checked_mul(unit_cost)
            .and_then(|cost| line.spend_pence.checked_add(cost))
            .ok_or_else(|| DbError::Internal("the compliance report's spend overflows".into()))?;
        if version_status == "superseded" {
            line.against_superseded_versions += 1;
        }
    }
    Ok(lines.into_values().collect())
}
