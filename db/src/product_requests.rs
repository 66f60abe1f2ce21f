//! Requests for products the catalogue does not list yet (issue 22). An organisation whose search
//! found nothing asks the national team to add the product: its name, supplier, version or
//! edition, why the organisation needs it, and what it searched for. A request waits until the
//! national team marks it added, naming the product now in the catalogue, or declines it with a
//! reason; the organisation may withdraw it while it waits.
//!
//! The rules of what a request holds are stated once here ([`problems`], [`reason_problem`]) and
//! applied by every write. Each decision first takes the waiting request's row lock with a
//! conditional UPDATE ([`lock_waiting`]): two people deciding at once cannot both act.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;

use crate::audit::{Actor, Audited, Change, now};
use crate::connection::{Database, DbConnection};
use crate::error::{DbError, DbResult};
use crate::page::{Page, PageRequest};
use crate::schema::product_requests as requests;
use crate::vocabulary::ProductRequestStatus;

/// A product's name and its supplier's, each at most this many characters.
pub const MAX_NAME_CHARS: usize = 200;
/// The version or edition asked for, at most this many characters.
pub const MAX_VERSION_CHARS: usize = 100;
/// Why the organisation needs it, and why it was declined, at most this many characters.
pub const MAX_REASON_CHARS: usize = 2000;
/// The search that found nothing, at most this many characters.
pub const MAX_SEARCH_CHARS: usize = 200;

#[derive(Clone, Debug, Serialize, Queryable, Selectable, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[diesel(table_name = requests)]
pub struct ProductRequest {
    pub id: i64,
    /// ODS code of the organisation that asked.
    pub organisation_code: String,
    /// The product's name, as the organisation typed it.
    pub product_name: String,
    pub supplier: String,
    /// The version or edition asked for, when one was given.
    pub version: Option<String>,
    /// Why the organisation needs it.
    pub need: String,
    /// What the organisation searched for that found nothing.
    pub search_text: Option<String>,
    pub status: ProductRequestStatus,
    /// The product now in the catalogue, once added.
    pub product_id: Option<i64>,
    /// Why it was declined.
    pub reason: Option<String>,
    pub requested_by: Option<i64>,
    #[serde(serialize_with = "crate::time::utc")]
    pub requested_at: NaiveDateTime,
    pub decided_by: Option<i64>,
    #[serde(serialize_with = "crate::time::utc_option")]
    pub decided_at: Option<NaiveDateTime>,
}

impl ProductRequest {
    /// What it asks for in words: "Epic Hyperdrive 2025 (Epic Systems)".
    pub fn label(&self) -> String {
        match &self.version {
            Some(version) => format!("{} {version} ({})", self.product_name, self.supplier),
            None => format!("{} ({})", self.product_name, self.supplier),
        }
    }
}

/// A request as asked for, before it is stored.
#[derive(Clone, Debug, Default)]
pub struct NewProductRequest {
    pub organisation_code: String,
    pub product_name: String,
    pub supplier: String,
    pub version: Option<String>,
    pub need: String,
    pub search_text: Option<String>,
}

impl NewProductRequest {
    /// The request with its text trimmed and empty optional text as none.
    fn trimmed(self) -> NewProductRequest {
        let optional = |text: Option<String>| text.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty());
        NewProductRequest {
            organisation_code: self.organisation_code.trim().to_uppercase(),
            product_name: self.product_name.trim().to_owned(),
            supplier: self.supplier.trim().to_owned(),
            version: optional(self.version),
            need: self.need.trim().to_owned(),
            search_text: optional(self.search_text),
        }
    }
}

/// A rule a request breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestProblem {
    NoOrganisation,
    NoProductName,
    /// Longer than [`MAX_NAME_CHARS`].
    ProductNameTooLong,
    NoSupplier,
    /// Longer than [`MAX_NAME_CHARS`].
    SupplierTooLong,
    /// Longer than [`MAX_VERSION_CHARS`].
    VersionTooLong,
    NoNeed,
    /// Longer than [`MAX_REASON_CHARS`].
    NeedTooLong,
    /// Longer than [`MAX_SEARCH_CHARS`].
    SearchTooLong,
}

impl RequestProblem {
    /// The rule in the data layer's words (the form shows its own).
    fn words(self) -> String {
        match self {
            RequestProblem::NoOrganisation => {
                "a request names the organisation that needs the product".into()
            }
            RequestProblem::NoProductName => "a request names the product".into(),
            RequestProblem::ProductNameTooLong => {
                format!("the product's name must be at most {MAX_NAME_CHARS} characters")
            }
            RequestProblem::NoSupplier => "a request names the supplier".into(),
            RequestProblem::SupplierTooLong => {
                format!("the supplier must be at most {MAX_NAME_CHARS} characters")
            }
            RequestProblem::VersionTooLong => {
                format!("the version or edition must be at most {MAX_VERSION_CHARS} characters")
            }
            RequestProblem::NoNeed => "a request says why the organisation needs the product".into(),
            RequestProblem::NeedTooLong => {
                format!("why the product is needed must be at most {MAX_REASON_CHARS} characters")
            }
            RequestProblem::SearchTooLong => {
                format!("the search must be at most {MAX_SEARCH_CHARS} characters")
            }
        }
    }
}

fn chars(text: &str) -> usize {
    text.trim().chars().count()
}

/// Every rule `new` breaks, in the form's order: what [`create`] refuses with, and what a form
/// shows against its fields.
pub fn problems(new: &NewProductRequest) -> Vec<RequestProblem> {
    let mut found = Vec::new();
    if new.organisation_code.trim().is_empty() {
        found.push(RequestProblem::NoOrganisation);
    }
    match chars(&new.product_name) {
        0 => found.push(RequestProblem::NoProductName),
        n if n > MAX_NAME_CHARS => found.push(RequestProblem::ProductNameTooLong),
        _ => {}
    }
    match chars(&new.supplier) {
        0 => found.push(RequestProblem::NoSupplier),
        n if n > MAX_NAME_CHARS => found.push(RequestProblem::SupplierTooLong),
        _ => {}
    }
    if new.version.as_deref().is_some_and(|version| chars(version) > MAX_VERSION_CHARS) {
        found.push(RequestProblem::VersionTooLong);
    }
    match chars(&new.need) {
        0 => found.push(RequestProblem::NoNeed),
        n if n > MAX_REASON_CHARS => found.push(RequestProblem::NeedTooLong),
        _ => {}
    }
    if new.search_text.as_deref().is_some_and(|search| chars(search) > MAX_SEARCH_CHARS) {
        found.push(RequestProblem::SearchTooLong);
    }
    found
}

pub fn get(conn: &mut DbConnection, id: i64) -> DbResult<ProductRequest> {
    requests::table
        .find(id)
        .select(ProductRequest::as_select())
        .first(conn)
        .optional()?
        .ok_or(DbError::NotFound("product request"))
}

/// Stores a request of `new.organisation_code`, waiting for the national team.
pub fn create(db: &Database, actor: &Actor, new: NewProductRequest) -> DbResult<ProductRequest> {
    let new = new.trimmed();
    if let Some(problem) = problems(&new).first() {
        return Err(DbError::Invalid(problem.words()));
    }
    db.write(actor, |conn| {
        crate::organisations::get(conn, &new.organisation_code)?;
        let id: i64 = diesel::insert_into(requests::table)
            .values((
                requests::organisation_code.eq(&new.organisation_code),
                requests::product_name.eq(&new.product_name),
                requests::supplier.eq(&new.supplier),
                requests::version.eq(&new.version),
                requests::need.eq(&new.need),
                requests::search_text.eq(&new.search_text),
                requests::status.eq(ProductRequestStatus::Waiting),
                requests::requested_by.eq(actor.user_id),
                requests::requested_at.eq(now()),
            ))
            .returning(requests::id)
            .get_result(conn)?;
        let request = get(conn, id)?;
        let change = Change::new("product_request.create", "product_request", id)
            .organisation(Some(&request.organisation_code))
            .after(&request);
        Ok(Audited::one(request, change))
    })
}

#[derive(Clone, Debug, Default)]
pub struct ProductRequestFilter {
    pub status: Option<ProductRequestStatus>,
    pub organisation_code: Option<String>,
}

/// The cursor naming `request` as the last of a page: whether it was decided (`1`) or waits
/// (`0`), and its id.
fn cursor(request: &ProductRequest) -> String {
    let decided = u8::from(request.status != ProductRequestStatus::Waiting);
    format!("{decided}:{}", request.id)
}

/// Requests, those waiting first, each part oldest first (the order the national team works
/// through them), a page at a time.
pub fn list(
    conn: &mut DbConnection,
    filter: &ProductRequestFilter,
    page: &PageRequest,
) -> DbResult<Page<ProductRequest>> {
    let waiting = ProductRequestStatus::Waiting;
    let mut query = requests::table
        .select(ProductRequest::as_select())
        .order((requests::status.ne(waiting), requests::id))
        .into_boxed();
    if let Some(status) = filter.status {
        query = query.filter(requests::status.eq(status));
    }
    if let Some(code) = &filter.organisation_code {
        query = query.filter(requests::organisation_code.eq(code.trim().to_uppercase()));
    }
    if let Some(after) = &page.cursor {
        let (decided, id) = after.split_once(':').ok_or(DbError::InvalidCursor)?;
        let id: i64 = id.parse().map_err(|_| DbError::InvalidCursor)?;
        query = match decided {
            "0" => query.filter(
                requests::status.eq(waiting).and(requests::id.gt(id)).or(requests::status.ne(waiting)),
            ),
            "1" => query.filter(requests::status.ne(waiting).and(requests::id.gt(id))),
            _ => return Err(DbError::InvalidCursor),
        };
    }
    let limit = page.limit();
    Ok(Page::from_rows(query.limit(limit + 1).load(conn)?, limit, cursor))
}

/// How many requests wait for the national team.
pub fn waiting_count(conn: &mut DbConnection) -> DbResult<i64> {
    Ok(requests::table.filter(requests::status.eq(ProductRequestStatus::Waiting)).count().get_result(conn)?)
}

/// Takes a waiting request's row lock (a no-op update) and reads it, or says where it stands: a
/// concurrent decision waits for the lock, then finds it decided.
fn lock_waiting(conn: &mut DbConnection, id: i64) -> DbResult<ProductRequest> {
    let current = get(conn, id)?;
    let waiting = diesel::update(
        requests::table
            .filter(requests::id.eq(id))
            .filter(requests::status.eq(ProductRequestStatus::Waiting)),
    )
    .set(requests::status.eq(requests::status))
    .execute(conn)?;
    if waiting == 0 {
        return Err(DbError::Conflict(format!("product request {id} is {}, not waiting", current.status)));
    }
    get(conn, id)
}

/// Decides a waiting request, recording who decided and when (an added request names its
/// product, a declined one its reason: the table's CHECKs).
fn decide(
    db: &Database,
    actor: &Actor,
    id: i64,
    (status, action): (ProductRequestStatus, &'static str),
    reason: Option<&str>,
    product_id: Option<i64>,
) -> DbResult<ProductRequest> {
    db.write(actor, |conn| {
        let before = lock_waiting(conn, id)?;
        if let Some(product) = product_id {
            let known: i64 = crate::schema::products::table
                .filter(crate::schema::products::id.eq(product))
                .count()
                .get_result(conn)?;
            if known == 0 {
                return Err(DbError::Invalid(format!("there is no product {product}")));
            }
        }
        diesel::update(requests::table.find(id))
            .set((
                requests::status.eq(status),
                requests::reason.eq(reason),
                requests::product_id.eq(product_id),
                requests::decided_by.eq(actor.user_id),
                requests::decided_at.eq(now()),
            ))
            .execute(conn)?;
        let request = get(conn, id)?;
        let change = Change::new(action, "product_request", id)
            .organisation(Some(&request.organisation_code))
            .before(&before)
            .after(&request);
        Ok(Audited::one(request, change))
    })
}

/// Marks a waiting request added: `product_id` is the product now in the catalogue.
pub fn mark_added(db: &Database, actor: &Actor, id: i64, product_id: i64) -> DbResult<ProductRequest> {
    decide(db, actor, id, (ProductRequestStatus::Added, "product_request.add"), None, Some(product_id))
}

/// What is wrong with a decline's reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReasonProblem {
    Empty,
    /// Longer than [`MAX_REASON_CHARS`].
    TooLong,
}

/// The rule a decline's reason breaks, if any: the one statement of it that [`decline`] refuses
/// with and the request page shows against its field.
pub fn reason_problem(reason: &str) -> Option<ReasonProblem> {
    match chars(reason) {
        0 => Some(ReasonProblem::Empty),
        n if n > MAX_REASON_CHARS => Some(ReasonProblem::TooLong),
        _ => None,
    }
}

/// Declines a waiting request, with the reason the organisation will read.
pub fn decline(db: &Database, actor: &Actor, id: i64, reason: &str) -> DbResult<ProductRequest> {
    let reason = reason.trim();
    match reason_problem(reason) {
        Some(ReasonProblem::Empty) => {
            return Err(DbError::Invalid("declining a request needs a reason".into()));
        }
        Some(ReasonProblem::TooLong) => {
            return Err(DbError::Invalid(format!("reason must be at most {MAX_REASON_CHARS} characters")));
        }
        None => {}
    }
    decide(db, actor, id, (ProductRequestStatus::Declined, "product_request.decline"), Some(reason), None)
}

/// Withdraws a waiting request (the organisation no longer needs the product).
pub fn withdraw(db: &Database, actor: &Actor, id: i64) -> DbResult<ProductRequest> {
    decide(db, actor, id, (ProductRequestStatus::Withdrawn, "product_request.withdraw"), None, None)
}
