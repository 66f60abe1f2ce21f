//! Suppliers and products, with lifecycle dates from which the support status at any date is
//! derived.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::dsl::exists;
use diesel::prelude::*;
use serde::Serialize;

use crate::audit::{Actor, Audited, Change, now};
use crate::connection::{BINDS_PER_QUERY, Database, DbConnection};
use crate::error::{DbError, DbResult};
use crate::page::{Page, PageRequest, Precondition};
use crate::schema::{agreements, entitlements, products, suppliers};
use crate::text_filter::{like_pattern, lower};
use crate::vocabulary::{AgreementStatus, SupportStatus, is_slug};

#[derive(Clone, Debug, Serialize, Queryable, Selectable, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[diesel(table_name = suppliers)]
pub struct Supplier {
    pub id: i64,
    pub name: String,
    pub source: Option<String>,
}

pub fn list_suppliers(conn: &mut DbConnection, page: &PageRequest) -> DbResult<Page<Supplier>> {
    let mut query = suppliers::table.select(Supplier::as_select()).order(suppliers::id).into_boxed();
    if let Some(after) = page.after_id()? {
        query = query.filter(suppliers::id.gt(after));
    }
    let limit = page.limit();
    Ok(Page::from_rows(query.limit(limit + 1).load(conn)?, limit, |s| s.id.to_string()))
}

pub fn create_supplier(
    db: &Database,
    actor: &Actor,
    name: &str,
    source: Option<String>,
) -> DbResult<Supplier> {
    let name = name.trim().to_owned();
    if name.is_empty() {
        return Err(DbError::Invalid("name must not be empty".into()));
    }
    db.write(actor, |conn| {
        let id: i64 = diesel::insert_into(suppliers::table)
            .values((suppliers::name.eq(&name), suppliers::source.eq(&source)))
            .returning(suppliers::id)
            .get_result(conn)?;
        let supplier = Supplier { id, name: name.clone(), source: source.clone() };
        Ok(Audited::one(supplier.clone(), Change::new("supplier.create", "supplier", id).after(&supplier)))
    })
}

/// A product's own columns. It stays beside [`Product`] because a product also carries what its
/// table does not (its supplier's name, and its support status on the date asked about, which
/// no stored column holds), and diesel's derives have no field they leave out; `Product` is also
/// the wire schema, so the columns cannot be nested in it without changing the API document.
#[derive(Queryable, Selectable)]
#[diesel(table_name = products)]
struct ProductRow {
    id: i64,
    supplier_id: i64,
    name: String,
    edition: String,
    version: String,
    sku: Option<String>,
    category: String,
    released_on: Option<NaiveDate>,
    mainstream_support_ends_on: Option<NaiveDate>,
    extended_support_ends_on: Option<NaiveDate>,
    dtac_passed: bool,
    mds2_supplied: bool,
    source: Option<String>,
    revision: i64,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    successor_id: Option<i64>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Product {
    pub id: i64,
    pub supplier_id: i64,
    pub supplier: String,
    #[cfg_attr(feature = "openapi", schema(example = "Windows 10"))]
    pub name: String,
    #[cfg_attr(feature = "openapi", schema(example = "Enterprise"))]
    pub edition: String,
    pub version: String,
    pub sku: Option<String>,
    /// A slug such as `operating-system` or `medical-device-software`.
    pub category: String,
    pub released_on: Option<NaiveDate>,
    pub mainstream_support_ends_on: Option<NaiveDate>,
    pub extended_support_ends_on: Option<NaiveDate>,
    /// The supplier has passed DTAC for this product.
    pub dtac_passed: bool,
    /// The supplier has supplied an MDS2 form for this product.
    pub mds2_supplied: bool,
    /// Support status at the date asked about (today unless `on` was given), from the product's
    /// own dates. Releases carry their own dates and status (`/v1/products/{id}/releases`).
    pub support_status: SupportStatus,
    /// The product that replaces this one (Windows 10 Enterprise -> Windows 11 Enterprise).
    pub successor_id: Option<i64>,
    pub source: Option<String>,
    #[serde(skip)]
    pub revision: i64,
    #[serde(serialize_with = "crate::time::utc")]
    pub created_at: NaiveDateTime,
    #[serde(serialize_with = "crate::time::utc")]
    pub updated_at: NaiveDateTime,
}

impl Product {
    /// The last day of any support: the end of extended support, else of mainstream support.
    pub fn support_ends_on(&self) -> Option<NaiveDate> {
        self.extended_support_ends_on.or(self.mainstream_support_ends_on)
    }

    /// A short label: "Windows 10 Enterprise 22H2".
    pub fn label(&self) -> String {
        label(&self.name, &self.edition, &self.version)
    }
}

/// A product's name, edition and version as one label, leaving out the empty parts.
pub fn label(name: &str, edition: &str, version: &str) -> String {
    [name, edition, version].iter().filter(|part| !part.is_empty()).copied().collect::<Vec<_>>().join(" ")
}

/// Support at `on`: unsupported after the last day of support; extended after the last day of
/// mainstream support; otherwise supported (also when no end is announced).
pub fn support_status(
    mainstream_ends: Option<NaiveDate>,
    extended_ends: Option<NaiveDate>,
    on: NaiveDate,
) -> SupportStatus {
    match (mainstream_ends, extended_ends.or(mainstream_ends)) {
        (_, Some(end)) if on > end => SupportStatus::Unsupported,
        (Some(mainstream), _) if on > mainstream => SupportStatus::Extended,
        _ => SupportStatus::Supported,
    }
}

/// Products whose support (extended, else mainstream) ends before `day`, as SQL: with `day` the
/// date asked about, the products [`support_status`] calls unsupported on it.
#[diesel::dsl::auto_type]
pub(crate) fn support_ends_before(day: NaiveDate) -> _ {
    let extended: products::extended_support_ends_on = products::extended_support_ends_on;
    let mainstream: products::mainstream_support_ends_on = products::mainstream_support_ends_on;
    extended.lt(day).or(extended.is_null().and(mainstream.lt(day)))
}

/// Products whose support (extended, else mainstream) ends on or after `from` and before
/// `before`, as SQL: [`support_ends_before`] with a first day.
#[diesel::dsl::auto_type]
pub(crate) fn support_ends_within(from: NaiveDate, before: NaiveDate) -> _ {
    let extended: products::extended_support_ends_on = products::extended_support_ends_on;
    let mainstream: products::mainstream_support_ends_on = products::mainstream_support_ends_on;
    extended
        .ge(from)
        .and(extended.lt(before))
        .or(extended.is_null().and(mainstream.ge(from)).and(mainstream.lt(before)))
}

fn to_product(row: ProductRow, supplier: String, on: NaiveDate) -> Product {
    Product {
        support_status: support_status(row.mainstream_support_ends_on, row.extended_support_ends_on, on),
        id: row.id,
        supplier_id: row.supplier_id,
        supplier,
        name: row.name,
        edition: row.edition,
        version: row.version,
        sku: row.sku,
        category: row.category,
        released_on: row.released_on,
        mainstream_support_ends_on: row.mainstream_support_ends_on,
        extended_support_ends_on: row.extended_support_ends_on,
        dtac_passed: row.dtac_passed,
        mds2_supplied: row.mds2_supplied,
        successor_id: row.successor_id,
        source: row.source,
        revision: row.revision,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

#[derive(Debug, Default, Clone)]
pub struct ProductFilter {
    pub supplier_id: Option<i64>,
    pub category: Option<String>,
    pub support_status: Option<SupportStatus>,
    /// Only products with (or without) an entitlement in force on `on` under an agreement in force.
    pub nationally_licensed: Option<bool>,
    /// Text to search for: with the read model's index, every word (in any order, forgiving a
    /// typo) in the name, edition, version, SKU, supplier or a release name (see
    /// `read_model::search`); without one, a case-insensitive substring of name, edition or SKU.
    pub q: Option<String>,
}

pub fn list(
    conn: &mut DbConnection,
    filter: &ProductFilter,
    on: NaiveDate,
    page: &PageRequest,
) -> DbResult<Page<Product>> {
    let limit = page.limit();
    let items = matching(conn, filter, None, on, page.after_id()?, limit + 1)?;
    Ok(Page::from_rows(items, limit, |p: &Product| p.id.to_string()))
}

/// Finds products by text in memory (the read model keeps a search index).
pub trait ProductTextIndex {
    /// The ids, in order, of the products after `after` that match `text` (every word, in any
    /// order, forgiving typos: see `read_model::search`); at most `at_most` of them.
    fn products_matching(&self, text: &str, after: Option<i64>, at_most: usize) -> DbResult<Vec<i64>>;

    /// The products with these ids that exist, in the order given, with their support status
    /// on `on` (the read model answers from the rows it holds of the products found lately).
    fn products_with_ids(&self, db: &Database, ids: &[i64], on: NaiveDate) -> DbResult<Vec<Product>> {
        db.read(|conn| with_ids(conn, ids, on))
    }

    /// The products with these ids, in the order given, with their support status on `on`, when
    /// memory holds every one of them; none otherwise (or when nothing is held).
    fn held_products(&self, _ids: &[i64], _on: NaiveDate) -> Option<Vec<Product>> {
        None
    }
}

/// A page of a search by text alone answered wholly from memory, without a connection: the
/// index's matches and the rows its owner holds of them. None when the filter needs the database
/// or a row is not held; the page is then read through [`list_using_index`], off the event loop.
/// A search answered where it arrives skips the hand-over to a blocking thread and back, and the
/// queue there (the benchmark's search waited in it behind its own requests).
pub fn page_from_memory(
    index: &dyn ProductTextIndex,
    filter: &ProductFilter,
    on: NaiveDate,
    page: &PageRequest,
) -> DbResult<Option<Page<Product>>> {
    let Some(text) = filter.q.as_deref().filter(|_| filter.is_text_only()) else {
        return Ok(None);
    };
    let limit = page.limit();
    let candidates = index.products_matching(text, page.after_id()?, limit as usize + 1)?;
    Ok(index.held_products(&candidates, on).map(|items| Page::from_rows(items, limit, |p| p.id.to_string())))
}

impl ProductFilter {
    /// Only text to search for: every product the index finds is an answer.
    fn is_text_only(&self) -> bool {
        let ProductFilter { supplier_id, category, support_status, nationally_licensed, q: _ } = self;
        supplier_id.is_none()
            && category.is_none()
            && support_status.is_none()
            && nationally_licensed.is_none()
    }
}

/// [`list`], with the text filter `q` answered from an in-memory index when there is one,
/// instead of a `LIKE` over every row (the benchmark measured the `LIKE` at under a hundredth
/// of `/healthz`), and forgiving typos and word order as the `LIKE` cannot. The products it
/// names are then read, and the other filters applied, by their ids.
pub fn list_using_index(
    db: &Database,
    index: Option<&dyn ProductTextIndex>,
    filter: &ProductFilter,
    on: NaiveDate,
    page: &PageRequest,
) -> DbResult<Page<Product>> {
    let (Some(index), Some(text)) = (index, filter.q.as_deref()) else {
        return db.read(|conn| list(conn, filter, on, page));
    };
    let limit = page.limit();
    let wanted = limit as usize + 1;
    let mut items = Vec::with_capacity(wanted);
    let mut after = page.after_id()?;
    // Without other filters every candidate is an answer, so the first batch is exactly a
    // page; with them, batches grow until the page is full or the candidates run out.
    let mut batch = wanted;
    loop {
        let candidates = index.products_matching(text, after, batch)?;
        let Some(&last) = candidates.last() else { break };
        let room = wanted - items.len();
        // Text alone: the candidates are the page, and the index's owner may hold their rows.
        // With other filters, SQL applies them, so that only the rows that pass are read.
        let found = if filter.is_text_only() {
            index.products_with_ids(db, &candidates, on)?
        } else {
            db.read(|conn| matching(conn, filter, Some(&candidates), on, None, room as i64))?
        };
        items.extend(found);
        if items.len() >= wanted || candidates.len() < batch {
            break;
        }
        after = Some(last);
        batch = (batch * 4).min(BINDS_PER_QUERY);
    }
    Ok(Page::from_rows(items, limit, |p: &Product| p.id.to_string()))
}

/// The lengths a list of ids is padded to on SQLite. diesel prepares an `IN` list of binds
/// afresh for every query (its length varies), and SQLite prepared it twice: perf put a third of
/// a product search's CPU in `sqlite3Prepare` and `sqlite3Reprepare`. A chain of `id = ?` of a
/// fixed length is one statement, prepared once per connection and kept. PostgreSQL takes the
/// list as one array (`= ANY($1)`), already one statement.
const ID_CHAIN_SIZES: [usize; 4] = [8, 16, 32, 64];

/// The products matching `filter`, in id order after `after`, at most `limit`; only among
/// `candidates` when given, which then stand in for the text filter.
fn matching(
    conn: &mut DbConnection,
    filter: &ProductFilter,
    candidates: Option<&[i64]>,
    on: NaiveDate,
    after: Option<i64>,
    limit: i64,
) -> DbResult<Vec<Product>> {
    let mut query = products::table
        .inner_join(suppliers::table)
        .select((ProductRow::as_select(), suppliers::name))
        .order(products::id)
        .into_boxed();
    // First: the chain of ids is joined with OR, and the filters below with AND around it.
    match candidates {
        Some(ids)
            if let (DbConnection::Sqlite(_), Some(size)) =
                (&*conn, ID_CHAIN_SIZES.iter().copied().find(|&size| size >= ids.len())) =>
        {
            // Padded with the last id (a repeat matches nothing more), so that each size is one
            // statement. An empty list matches nothing (0 is no product's id).
            let last = ids.last().copied().unwrap_or(0);
            let padded = ids.iter().copied().chain(std::iter::repeat(last)).take(size);
            for (n, id) in padded.enumerate() {
                query = if n == 0 {
                    query.filter(products::id.eq(id))
                } else {
                    query.or_filter(products::id.eq(id))
                };
            }
        }
        Some(ids) => query = query.filter(products::id.eq_any(ids.to_vec())),
        None => {}
    }
    if let Some(supplier) = filter.supplier_id {
        query = query.filter(products::supplier_id.eq(supplier));
    }
    if let Some(category) = &filter.category {
        query = query.filter(products::category.eq(category.clone()));
    }
    if let (None, Some(q)) = (candidates, &filter.q) {
        let pattern = like_pattern(q);
        query = query.filter(
            lower(products::name)
                .like(pattern.clone())
                .escape('\\')
                .or(lower(products::edition).like(pattern.clone()).escape('\\'))
                .or(lower(products::sku.assume_not_null()).like(pattern).escape('\\')),
        );
    }
    // The same rule as `support_status`, as SQL.
    let support_end = products::extended_support_ends_on;
    let mainstream_end = products::mainstream_support_ends_on;
    match filter.support_status {
        Some(SupportStatus::Unsupported) => query = query.filter(support_ends_before(on)),
        Some(SupportStatus::Extended) => {
            query = query.filter(mainstream_end.lt(on).and(support_end.ge(on)));
        }
        Some(SupportStatus::Supported) => {
            query = query.filter(
                mainstream_end
                    .is_null()
                    .or(mainstream_end.ge(on))
                    .and(support_end.is_null().or(support_end.ge(on))),
            );
        }
        None => {}
    }
    if let Some(licensed) = filter.nationally_licensed {
        let in_force = exists(
            entitlements::table
                .inner_join(agreements::table)
                .filter(entitlements::product_id.eq(products::id))
                // The same rule as `coverage::agreement_in_force`.
                .filter(agreements::status.ne(AgreementStatus::Draft))
                .filter(agreements::status.eq(AgreementStatus::Active).or(agreements::ends_on.is_not_null()))
                .filter(agreements::starts_on.le(on))
                .filter(agreements::ends_on.is_null().or(agreements::ends_on.ge(on)))
                .filter(entitlements::starts_on.le(on))
                .filter(entitlements::ends_on.is_null().or(entitlements::ends_on.ge(on))),
        );
        query = if licensed { query.filter(in_force) } else { query.filter(diesel::dsl::not(in_force)) };
    }
    if let Some(after) = after {
        query = query.filter(products::id.gt(after));
    }
    let rows: Vec<(ProductRow, String)> = query.limit(limit).load(conn)?;
    Ok(rows.into_iter().map(|(row, supplier)| to_product(row, supplier, on)).collect())
}

/// The products with these ids (those that exist), in id order, with their support status on `on`.
pub fn with_ids(conn: &mut DbConnection, ids: &[i64], on: NaiveDate) -> DbResult<Vec<Product>> {
    matching(conn, &ProductFilter::default(), Some(ids), on, None, ids.len() as i64)
}

/// Products whose name, edition, version, SKU or supplier contains every word of `text`
/// (case-insensitive), ordered by id, at most `limit`: how a person's "Windows 10 Enterprise"
/// finds the product whose name is "Windows 10" and edition "Enterprise".
pub fn search(conn: &mut DbConnection, text: &str, on: NaiveDate, limit: i64) -> DbResult<Vec<Product>> {
    let words: Vec<&str> = text.split_whitespace().take(8).collect();
    if words.is_empty() {
        return Ok(Vec::new());
    }
    let mut query = products::table
        .inner_join(suppliers::table)
        .select((ProductRow::as_select(), suppliers::name))
        .order(products::id)
        .into_boxed();
    for word in words {
        let pattern = like_pattern(word);
        query = query.filter(
            lower(products::name)
                .like(pattern.clone())
                .escape('\\')
                .or(lower(products::edition).like(pattern.clone()).escape('\\'))
                .or(lower(products::version).like(pattern.clone()).escape('\\'))
                .or(lower(products::sku.assume_not_null()).like(pattern.clone()).escape('\\'))
                .or(lower(suppliers::name).like(pattern).escape('\\')),
        );
    }
    let rows: Vec<(ProductRow, String)> = query.limit(limit).load(conn)?;
    Ok(rows.into_iter().map(|(row, supplier)| to_product(row, supplier, on)).collect())
}

pub fn get(conn: &mut DbConnection, id: i64, on: NaiveDate) -> DbResult<Product> {
    let (row, supplier): (ProductRow, String) = products::table
        .inner_join(suppliers::table)
        .filter(products::id.eq(id))
        .select((ProductRow::as_select(), suppliers::name))
        .first(conn)
        .optional()?
        .ok_or(DbError::NotFound("product"))?;
    Ok(to_product(row, supplier, on))
}

/// The fields of a product that an admin sets: the columns create and update write. A `None` is
/// written as NULL, so an update clears it.
#[derive(Debug, Clone, Serialize, Insertable, AsChangeset)]
#[diesel(table_name = products, treat_none_as_null = true)]
pub struct ProductFields {
    pub supplier_id: i64,
    pub name: String,
    pub edition: String,
    pub version: String,
    pub sku: Option<String>,
    pub category: String,
    pub released_on: Option<NaiveDate>,
    pub mainstream_support_ends_on: Option<NaiveDate>,
    pub extended_support_ends_on: Option<NaiveDate>,
    pub dtac_passed: bool,
    pub mds2_supplied: bool,
    pub successor_id: Option<i64>,
    pub source: Option<String>,
}

/// A rule of a product's fields that they break: what [`create`] and [`update`] refuse with, and
/// what the product pages list against the field to correct.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProductProblem {
    NoName,
    CategoryNotASlug,
    MainstreamAfterExtended,
    /// The successor named is no product.
    NoSuchSuccessor(i64),
    /// The successor is the product itself, or leads back to it.
    OwnSuccessor,
    /// The successors run on past the most followed.
    TooManySuccessors,
}

impl ProductProblem {
    /// The refusal, in the API's words (which name its fields).
    pub fn detail(self) -> String {
        match self {
            ProductProblem::NoName => "name must not be empty".into(),
            ProductProblem::CategoryNotASlug => {
                "category must be a slug: lower-case letters, digits and hyphens".into()
            }
            ProductProblem::MainstreamAfterExtended => {
                "mainstream support cannot end after extended support".into()
            }
            ProductProblem::NoSuchSuccessor(id) => format!("successor product {id} does not exist"),
            ProductProblem::OwnSuccessor => "successor_id would make a product its own successor".into(),
            ProductProblem::TooManySuccessors => "successor_id leads through too many successors".into(),
        }
    }
}

/// Every rule `fields` break that the fields alone can tell, in the fields' order: the one
/// statement of the rules that [`create`] and [`update`] refuse with (the first of them) and that
/// the product pages list field by field. The supplier and successor are checked against the
/// database when written ([`successor_problem`]).
pub fn problems(fields: &ProductFields) -> Vec<ProductProblem> {
    let dates_reversed = matches!(
        (fields.mainstream_support_ends_on, fields.extended_support_ends_on),
        (Some(mainstream), Some(extended)) if mainstream > extended
    );
    [
        (fields.name.trim().is_empty(), ProductProblem::NoName),
        (!is_slug(&fields.category), ProductProblem::CategoryNotASlug),
        (dates_reversed, ProductProblem::MainstreamAfterExtended),
    ]
    .into_iter()
    .filter_map(|(broken, problem)| broken.then_some(problem))
    .collect()
}

impl ProductFields {
    fn validate(&self) -> DbResult<()> {
        match problems(self).first() {
            Some(problem) => Err(DbError::Invalid(problem.detail())),
            None => Ok(()),
        }
    }

    /// The fields as stored: the name without surrounding spaces.
    fn normalised(self) -> ProductFields {
        ProductFields { name: self.name.trim().to_owned(), ..self }
    }

    pub fn from_product(product: &Product) -> ProductFields {
        ProductFields {
            supplier_id: product.supplier_id,
            name: product.name.clone(),
            edition: product.edition.clone(),
            version: product.version.clone(),
            sku: product.sku.clone(),
            category: product.category.clone(),
            released_on: product.released_on,
            mainstream_support_ends_on: product.mainstream_support_ends_on,
            extended_support_ends_on: product.extended_support_ends_on,
            dtac_passed: product.dtac_passed,
            mds2_supplied: product.mds2_supplied,
            successor_id: product.successor_id,
            source: product.source.clone(),
        }
    }
}

/// What is wrong with `successor` as the successor of the product `id` (`None`: a new one), if
/// anything: a successor must be another product that exists, and must not lead back to this one.
pub fn successor_problem(
    conn: &mut DbConnection,
    id: Option<i64>,
    successor: Option<i64>,
) -> DbResult<Option<ProductProblem>> {
    let Some(successor) = successor else { return Ok(None) };
    let mut current = successor;
    for _ in 0..64 {
        if Some(current) == id {
            return Ok(Some(ProductProblem::OwnSuccessor));
        }
        let next: Option<Option<i64>> =
            products::table.find(current).select(products::successor_id).first(conn).optional()?;
        match next {
            None if current == successor => return Ok(Some(ProductProblem::NoSuchSuccessor(successor))),
            Some(Some(next)) => current = next,
            _ => return Ok(None),
        }
    }
    Ok(Some(ProductProblem::TooManySuccessors))
}

fn successor_must_fit(conn: &mut DbConnection, id: Option<i64>, successor: Option<i64>) -> DbResult<()> {
    match successor_problem(conn, id, successor)? {
        Some(problem) => Err(DbError::Invalid(problem.detail())),
        None => Ok(()),
    }
}

/// The product exists (for routes about its parts).
pub fn ensure_exists(conn: &mut DbConnection, id: i64) -> DbResult<()> {
    let found: i64 = products::table.filter(products::id.eq(id)).count().get_result(conn)?;
    if found == 0 { Err(DbError::NotFound("product")) } else { Ok(()) }
}

fn supplier_must_exist(conn: &mut DbConnection, id: i64) -> DbResult<()> {
    let found: i64 = suppliers::table.filter(suppliers::id.eq(id)).count().get_result(conn)?;
    if found == 0 { Err(DbError::Invalid(format!("supplier {id} does not exist"))) } else { Ok(()) }
}

pub fn create(db: &Database, actor: &Actor, fields: ProductFields, today: NaiveDate) -> DbResult<Product> {
    db.write(actor, |conn| {
        let product = create_in(conn, fields.clone(), today)?;
        let change = Change::new("product.create", "product", product.id).after(&product);
        Ok(Audited::one(product, change))
    })
}

/// [`create`] inside the caller's transaction, with the same checks: what seeding calls too, so
/// a shipped product passes the rules an admin's does.
pub(crate) fn create_in(
    conn: &mut DbConnection,
    fields: ProductFields,
    today: NaiveDate,
) -> DbResult<Product> {
    fields.validate()?;
    let fields = fields.normalised();
    supplier_must_exist(conn, fields.supplier_id)?;
    successor_must_fit(conn, None, fields.successor_id)?;
    let stamp = now();
    let id: i64 = diesel::insert_into(products::table)
        .values((&fields, products::created_at.eq(stamp), products::updated_at.eq(stamp)))
        .returning(products::id)
        .get_result(conn)?;
    get(conn, id, today)
}

pub fn update(
    db: &Database,
    actor: &Actor,
    id: i64,
    change: impl FnOnce(&mut ProductFields),
    precondition: Precondition,
    today: NaiveDate,
) -> DbResult<Product> {
    db.write(actor, |conn| {
        let before = get(conn, id, today)?;
        precondition.check(before.revision)?;
        let mut fields = ProductFields::from_product(&before);
        change(&mut fields);
        fields.validate()?;
        let fields = fields.normalised();
        supplier_must_exist(conn, fields.supplier_id)?;
        successor_must_fit(conn, Some(id), fields.successor_id)?;
        diesel::update(products::table.find(id))
            .set((&fields, products::revision.eq(products::revision + 1), products::updated_at.eq(now())))
            .execute(conn)?;
        let after = get(conn, id, today)?;
        let change = Change::new("product.update", "product", id).before(&before).after(&after);
        Ok(Audited::one(after, change))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap_or_default()
    }

    #[test]
    fn problems_lists_every_broken_rule_in_the_fields_order_and_validate_refuses_with_the_first() {
        let mut fields = ProductFields {
            supplier_id: 1,
            name: "  ".into(),
            edition: String::new(),
            version: String::new(),
            sku: None,
            category: "Operating System".into(),
            released_on: None,
            mainstream_support_ends_on: Some(date("2030-01-02")),
            extended_support_ends_on: Some(date("2030-01-01")),
            dtac_passed: false,
            mds2_supplied: false,
            successor_id: None,
            source: None,
        };
        assert_eq!(
            problems(&fields),
            [
                ProductProblem::NoName,
                ProductProblem::CategoryNotASlug,
                ProductProblem::MainstreamAfterExtended
            ]
        );
        let refused = fields.validate().err().map(|error| error.to_string()).unwrap_or_default();
        assert!(refused.contains("name must not be empty"), "{refused}");
        fields.name = "Windows 11".into();
        fields.category = "operating-system".into();
        fields.extended_support_ends_on = Some(date("2030-01-02"));
        assert_eq!(problems(&fields), [], "a day may end both");
        assert!(fields.validate().is_ok());
    }

    #[test]
    fn support_status_follows_the_lifecycle_dates() {
        // Windows 7: mainstream to 2015-01-13, extended to 2020-01-14.
        let (mainstream, extended) = (Some(date("2015-01-13")), Some(date("2020-01-14")));
        assert_eq!(support_status(mainstream, extended, date("2015-01-13")), SupportStatus::Supported);
        assert_eq!(support_status(mainstream, extended, date("2015-01-14")), SupportStatus::Extended);
        assert_eq!(support_status(mainstream, extended, date("2020-01-14")), SupportStatus::Extended);
        assert_eq!(support_status(mainstream, extended, date("2020-01-15")), SupportStatus::Unsupported);
        assert_eq!(support_status(None, None, date("2099-01-01")), SupportStatus::Supported);
        assert_eq!(
            support_status(Some(date("2020-01-01")), None, date("2020-01-02")),
            SupportStatus::Unsupported
        );
        assert_eq!(
            support_status(None, Some(date("2020-01-01")), date("2019-12-31")),
            SupportStatus::Supported
        );
    }
}
