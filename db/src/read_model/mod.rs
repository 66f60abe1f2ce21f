//! The in-memory read model of what the hot paths read: coverage (organisations, products,
//! agreements, entitlement lines with their seats, published guidance) and authentication (each
//! user's role, organisation, disabled flag and token generation), and the product search (an
//! index of products' names, editions, versions, SKUs, suppliers and releases: [`search`]).
//! It holds each entitlement line exactly as `GET /v1/entitlements/{id}` answers it
//! ([`ReadModel::cached_entitlement`]); a line's seats must agree with the ledger at once on
//! every instance sharing the database, and another instance's claims reach this model only at
//! its next poll, so [`ReadModel::current_entitlement`] reads what may
//! have changed in one narrow query and takes the rest from memory.
//!
//! Freshness:
//! - On the instance that writes: [`Database::write`] hands every committed change to
//!   [`ReadModel::apply`] before it returns, so a request that begins after a write committed
//!   reads it.
//! - On other instances (scale-out behind a load balancer): [`ReadModel::poll`] runs every 250 ms.
//!   It reads every entitlement's seat total and version (a few thousand rows), and the audit
//!   events of the last [`EVENT_WINDOW`] that change what is cached, and reloads what they name.
//!   The window is re-read on every poll (events already applied are skipped), so an event whose
//!   transaction committed after a later one is not missed. Seat totals carry a version that only
//!   grows, so an older read never replaces a newer one.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use crate::action::LifecycleFacts;
use crate::agreements::{self, Agreement, Entitlement};
use crate::connection::{CommitListener, Committed, Database, DbConnection};
use crate::coverage::{self, AskingOrganisation, Coverage, Line, Question, Subject};
use crate::error::{DbError, DbResult};
use crate::guidance::{self, StandardGuidance};
use crate::icb_acting;
use crate::nhsmail::{self, ServicePeriod};
use crate::products::Product;
use crate::releases::{self, Release};
use crate::schema::{audit_events, entitlements, organisations, products, suppliers};
use crate::users::{self, Principal};

mod compact;
mod held_products;
mod search;

use compact::{Code, OrganisationRow, Organisations, ProductRow, Products};
use held_products::HeldProducts;
pub use search::MAX_WORDS;
use search::{ProductSearch, SearchDoc};

/// How far back each poll re-reads the audit log; longer than any write transaction.
pub const EVENT_WINDOW: Duration = Duration::from_secs(30);
/// How often other instances' changes are picked up.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// Entities whose changes alter what the read model holds (allocations change seat totals,
/// which are polled directly).
const CACHED_ENTITIES: [&str; 12] = [
    "organisation",
    "nhsmail_service",
    "icb_grant",
    "product",
    "release",
    "agreement",
    "entitlement",
    "standard",
    "standard_version",
    "assessment",
    "user",
    "seed",
];

#[derive(Default)]
struct Lines {
    agreements: HashMap<i64, Arc<Agreement>>,
    entitlements: HashMap<i64, Arc<Entitlement>>,
    by_product: HashMap<i64, Vec<i64>>,
}

impl Lines {
    fn insert_entitlement(&mut self, entitlement: Entitlement) {
        self.remove_entitlement(entitlement.id);
        self.by_product.entry(entitlement.product_id).or_default().push(entitlement.id);
        self.entitlements.insert(entitlement.id, Arc::new(entitlement));
    }

    /// Holds these lines' current state. A line already held for the same product keeps its
    /// place in `by_product`, so reading a product's lines again reorders nothing.
    fn replace_entitlements(&mut self, lines: Vec<Entitlement>) {
        for line in lines {
            match self.entitlements.get_mut(&line.id) {
                Some(held) if held.product_id == line.product_id => *held = Arc::new(line),
                _ => self.insert_entitlement(line),
            }
        }
    }

    fn remove_entitlement(&mut self, id: i64) {
        if let Some(old) = self.entitlements.remove(&id)
            && let Some(ids) = self.by_product.get_mut(&old.product_id)
        {
            ids.retain(|other| *other != id);
        }
    }
}

/// Releases and successor links: what a product question's action is decided from.
#[derive(Default)]
struct Lifecycles {
    releases: HashMap<i64, Arc<[Release]>>,
    successors: HashMap<i64, i64>,
}

#[derive(Default)]
pub struct ReadModel {
    organisations: RwLock<Organisations>,
    products: RwLock<Products>,
    lifecycles: RwLock<Lifecycles>,
    /// The products' search index; replaced whole by a reload, changed in place by a refresh.
    /// `None` only before the first load.
    search: RwLock<Option<Arc<ProductSearch>>>,
    /// Whole rows of the products searches found lately.
    held_products: HeldProducts,
    /// Organisation code -> its recorded NHSmail service periods (most have none).
    nhsmail_services: RwLock<HashMap<String, Arc<[ServicePeriod]>>>,
    lines: RwLock<Lines>,
    /// Entitlement id -> (seats allocated, seats version).
    seats: RwLock<HashMap<i64, (i64, i64)>>,
    guidance: RwLock<Vec<Arc<StandardGuidance>>>,
    /// Categories that have a standard in any state (they are known categories to ask about).
    standard_categories: RwLock<HashSet<String>>,
    principals: RwLock<HashMap<i64, Principal>>,
    /// ICBs that have granted their officers to act for the organisations they commission for.
    granted_icbs: RwLock<HashSet<String>>,
    /// Audit events already applied by polling, with when they were seen.
    applied_events: Mutex<HashMap<i64, Instant>>,
    /// Set when a refresh failed: the next poll reloads everything.
    stale: AtomicBool,
    /// Held by each refresh from its read to its write: the poller and a write on this instance
    /// may refresh the same record at once, and without it the one that read first (an older
    /// state) could write last and undo the newer one (seen: a superseded standard version back
    /// in the guidance after a publish). Seat totals carry versions and need no lock.
    refreshing: Mutex<()>,
}

/// Lines as a coverage question borrows them.
fn borrowed(held: &[(Arc<Agreement>, Arc<Entitlement>, Option<i64>)]) -> Vec<Line<'_>> {
    held.iter()
        .map(|(agreement, entitlement, seats_remaining)| Line {
            agreement,
            entitlement,
            seats_remaining: *seats_remaining,
        })
        .collect()
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Rows are read a page at a time, so loading never holds a whole table of rows beside the cache.
const LOAD_PAGE: i64 = 10_000;

fn load_organisations(
    conn: &mut DbConnection,
    code: Option<&str>,
    after: Option<&str>,
) -> DbResult<Vec<OrganisationRow>> {
    let mut query = organisations::table
        .select((
            organisations::code,
            organisations::name,
            organisations::kind,
            organisations::closed_on,
            organisations::successor_code,
        ))
        .order(organisations::code)
        .limit(LOAD_PAGE)
        .into_boxed();
    if let Some(code) = code {
        query = query.filter(organisations::code.eq(code.to_owned()));
    }
    if let Some(after) = after {
        query = query.filter(organisations::code.gt(after.to_owned()));
    }
    Ok(query.load(conn)?)
}

/// Products as the model holds them, each with its supplier's name (for the search index).
fn load_products(
    conn: &mut DbConnection,
    id: Option<i64>,
    after: Option<i64>,
) -> DbResult<Vec<(ProductRow, String)>> {
    let mut query = products::table
        .inner_join(suppliers::table)
        .select((
            (
                products::id,
                products::supplier_id,
                products::name,
                products::edition,
                products::version,
                products::sku,
                products::category,
                products::mainstream_support_ends_on,
                products::extended_support_ends_on,
            ),
            suppliers::name,
        ))
        .order(products::id)
        .limit(LOAD_PAGE)
        .into_boxed();
    if let Some(id) = id {
        query = query.filter(products::id.eq(id));
    }
    if let Some(after) = after {
        query = query.filter(products::id.gt(after));
    }
    Ok(query.load(conn)?)
}

/// What the search index holds of a product.
fn search_doc(row: &ProductRow, supplier: &str, releases: Option<&[Release]>) -> SearchDoc {
    let (id, _, name, edition, version, sku, ..) = row;
    SearchDoc {
        id: *id,
        name: name.clone(),
        edition: edition.clone(),
        version: version.clone(),
        sku: sku.clone(),
        supplier: supplier.to_owned(),
        releases: releases.unwrap_or_default().iter().map(|release| release.name.clone()).collect(),
    }
}

/// Guidance is cached as published "as of the far future"; questions about an earlier date
/// filter it by publication date.
fn far_future() -> NaiveDate {
    NaiveDate::from_ymd_opt(9999, 12, 31).unwrap_or(NaiveDate::MAX)
}

impl ReadModel {
    /// Loads everything the hot paths read.
    pub fn load(db: &Database) -> DbResult<ReadModel> {
        let model = ReadModel::default();
        model.reload(db)?;
        Ok(model)
    }

    /// Replaces every cached value with the database's. Organisations and products are read a
    /// page at a time into the new maps, which replace the old ones when complete.
    pub fn reload(&self, db: &Database) -> DbResult<()> {
        // Events committed before the load begins are reflected by it: marking them applied
        // keeps the next poll from repeating their work (after a `catalogue seed` shortly
        // before start-up, that work would be a second whole load, doubling peak memory).
        let reflected = db.read(recent_events)?;
        self.held_products.forget_all();
        let mut organisations = Organisations::default();
        let mut after: Option<String> = None;
        loop {
            let page = db.read(|conn| load_organisations(conn, None, after.as_deref()))?;
            after = page.last().map(|row| row.0.clone());
            let last_page = (page.len() as i64) < LOAD_PAGE;
            organisations.load(page)?;
            if last_page {
                break;
            }
        }
        organisations.finish_loading();
        // Releases first: the search index holds each product's release names.
        let lifecycles = db.read(|conn| {
            Ok(Lifecycles {
                releases: releases::all(conn)?.into_iter().map(|(id, list)| (id, Arc::from(list))).collect(),
                successors: releases::successors(conn)?,
            })
        })?;
        let mut products = Products::default();
        let search = ProductSearch::new()?;
        let mut after: Option<i64> = None;
        loop {
            let page = db.read(|conn| load_products(conn, None, after))?;
            after = page.last().map(|(row, _)| row.0);
            let last_page = (page.len() as i64) < LOAD_PAGE;
            let docs: Vec<SearchDoc> = page
                .iter()
                .map(|(row, supplier)| {
                    search_doc(row, supplier, lifecycles.releases.get(&row.0).map(|r| &r[..]))
                })
                .collect();
            search.add(&docs)?;
            products.load(page.into_iter().map(|(row, _)| row).collect())?;
            if last_page {
                break;
            }
        }
        products.finish_loading();
        search.commit()?;
        let services = db.read(nhsmail::all_periods)?;
        let (agreement_list, entitlement_list, seat_rows, published, categories, principal_list) =
            db.read(|conn| {
                Ok((
                    agreements::all(conn)?,
                    agreements::all_entitlements(conn)?,
                    seat_rows(conn)?,
                    guidance::published(conn, None, far_future())?,
                    standard_categories(conn)?,
                    users::all_principals(conn)?,
                ))
            })?;
        *write(&self.organisations) = organisations;
        *write(&self.products) = products;
        *write(&self.search) = Some(Arc::new(search));
        *write(&self.lifecycles) = lifecycles;
        *write(&self.nhsmail_services) =
            services.into_iter().map(|(code, periods)| (code, Arc::from(periods))).collect();
        let mut lines = Lines::default();
        for agreement in agreement_list {
            lines.agreements.insert(agreement.id, Arc::new(agreement));
        }
        for entitlement in entitlement_list {
            lines.insert_entitlement(entitlement);
        }
        *write(&self.lines) = lines;
        *write(&self.seats) =
            seat_rows.into_iter().map(|(id, allocated, version)| (id, (allocated, version))).collect();
        *write(&self.guidance) = published.into_iter().map(Arc::new).collect();
        *write(&self.standard_categories) = categories;
        *write(&self.principals) = principal_list.into_iter().map(|p| (p.user_id, p)).collect();
        *write(&self.granted_icbs) = db.read(icb_acting::granted_icbs)?.into_iter().collect();
        let now = Instant::now();
        self.applied().extend(reflected.into_iter().map(|(id, ..)| (id, now)));
        self.stale.store(false, Ordering::Relaxed);
        Ok(())
    }

    fn applied(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Instant>> {
        self.applied_events.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The coverage answer, from memory.
    pub fn coverage(&self, organisation_code: &str, subject: Subject, on: NaiveDate) -> DbResult<Coverage> {
        let code = Code::new(organisation_code).ok_or(DbError::NotFound("organisation"))?;
        let organisation = {
            let organisations = read(&self.organisations);
            let found = organisations.get(&code).ok_or(DbError::NotFound("organisation"))?;
            let recorded = read(&self.nhsmail_services).get(code.as_str()).cloned();
            AskingOrganisation {
                code: code.as_str().to_owned(),
                name: organisations.name(found).to_owned(),
                kind: found.kind,
                closed: found.closed,
                successor_code: found.successor_code.map(|c| c.as_str().to_owned()),
                nhsmail_service: nhsmail::service_on(recorded.as_deref().unwrap_or_default(), found.kind, on)
                    .map(|(service, _)| service),
            }
        };
        let (product, category, product_ids) = {
            let products = read(&self.products);
            match &subject {
                Subject::Product(id, _) => {
                    let product = products.covered(*id, on).ok_or(DbError::NotFound("product"))?;
                    let category = product.category.clone();
                    (Some(product), category, vec![*id])
                }
                Subject::Category(category) => {
                    let ids = products.in_category(category).map(<[i64]>::to_vec).unwrap_or_default();
                    if ids.is_empty() && !read(&self.standard_categories).contains(category) {
                        return Err(DbError::NotFound("category"));
                    }
                    (None, category.clone(), ids)
                }
            }
        };
        let held = self.lines_of(&product_ids);
        // The category's other lines matter only when the product itself is not licensed for
        // the organisation (a national provision comes before buying): the hot path, a licensed
        // product, does not read them.
        let licensed =
            held.iter().any(|(agreement, line, _)| coverage::usable(&organisation, agreement, line, on));
        let held_in_category = match &subject {
            Subject::Product(id, _) if !licensed => {
                let others: Vec<i64> = read(&self.products)
                    .in_category(&category)
                    .map(|ids| ids.iter().copied().filter(|other| other != id).collect())
                    .unwrap_or_default();
                self.lines_of(&others)
            }
            _ => Vec::new(),
        };
        let lifecycle = match (&subject, &product) {
            (Subject::Product(id, release), Some(_)) => {
                Some(self.lifecycle(&organisation, *id, release.clone(), on)?)
            }
            _ => None,
        };
        let question = Question {
            organisation,
            product,
            category,
            lines: borrowed(&held),
            category_lines: borrowed(&held_in_category),
            lifecycle,
            on,
        };
        coverage::decide(question, |category| {
            let end_of_day: NaiveDateTime = crate::time::end_of(on);
            Ok(read(&self.guidance)
                .iter()
                .filter(|g| g.category == category && g.published_at < end_of_day)
                .map(|g| StandardGuidance::clone(g))
                .collect())
        })
    }

    /// The lines of these products with their agreements and seats left. The lines and their
    /// agreements are shared (`Arc`), so the locks are held only while they are looked up; seats
    /// left come from the seat totals, kept apart from the lines.
    #[allow(clippy::type_complexity)]
    fn lines_of(&self, product_ids: &[i64]) -> Vec<(Arc<Agreement>, Arc<Entitlement>, Option<i64>)> {
        let lines = read(&self.lines);
        let seats = read(&self.seats);
        let mut held = Vec::new();
        for product_id in product_ids {
            for id in lines.by_product.get(product_id).into_iter().flatten() {
                let Some(line) = lines.entitlements.get(id) else { continue };
                let Some(agreement) = lines.agreements.get(&line.agreement_id) else { continue };
                let seats_remaining = match seats.get(id) {
                    Some((allocated, _)) => agreements::seats_remaining(line.seat_cap, *allocated),
                    None => line.seats_remaining,
                };
                held.push((agreement.clone(), line.clone(), seats_remaining));
            }
        }
        held
    }

    /// The product's releases and successor, as [`coverage::answer`] reads them from the database.
    fn lifecycle(
        &self,
        organisation: &AskingOrganisation,
        product_id: i64,
        release: Option<String>,
        on: NaiveDate,
    ) -> DbResult<LifecycleFacts> {
        let (releases, chain) = {
            let lifecycles = read(&self.lifecycles);
            let releases: Arc<[Release]> =
                lifecycles.releases.get(&product_id).cloned().unwrap_or_else(|| Arc::from([]));
            let chain =
                coverage::successor_chain(product_id, |id| Ok(lifecycles.successors.get(&id).copied()))?;
            (releases, chain)
        };
        coverage::check_release(&releases, release.as_deref())?;
        let successor = coverage::successor_answer(chain, on, |id| {
            let Some(product) = read(&self.products).covered(id, on) else { return Ok(None) };
            let releases: Arc<[Release]> =
                read(&self.lifecycles).releases.get(&id).cloned().unwrap_or_else(|| Arc::from([]));
            let licensed = self
                .lines_of(&[id])
                .iter()
                .any(|(agreement, line, _)| coverage::usable(organisation, agreement, line, on));
            Ok(Some((product, releases, licensed)))
        })?;
        Ok(LifecycleFacts { releases, release, successor })
    }

    /// Whether `icb` has granted its officers to act for the organisations it commissions for (no
    /// database access: an officer of any other organisation is answered from memory).
    pub fn has_granted(&self, icb: &str) -> bool {
        read(&self.granted_icbs).contains(icb)
    }

    /// A user's authorisation facts, if held (no database access: safe on an event loop).
    pub fn cached_principal(&self, user_id: i64) -> Option<Principal> {
        read(&self.principals).get(&user_id).cloned()
    }

    /// A user's authorisation facts; read from the database (and cached) when not yet held.
    pub fn principal(&self, db: &Database, user_id: i64) -> DbResult<Option<Principal>> {
        if let Some(principal) = self.cached_principal(user_id) {
            return Ok(Some(principal));
        }
        let principal = db.read(|conn| users::principal(conn, user_id))?;
        if let Some(principal) = &principal {
            write(&self.principals).insert(user_id, principal.clone());
        }
        Ok(principal)
    }

    /// An entitlement line as [`agreements::get_entitlement`] answers it, if held (no database
    /// access: safe on an event loop). Its seats come from the seat totals, which claims and
    /// releases keep current, not from the line as it was last read. Nothing while the model is
    /// stale: a refresh failed, so a write this instance made may be missing from it.
    pub fn cached_entitlement(&self, id: i64) -> Option<Entitlement> {
        if self.stale.load(Ordering::Relaxed) {
            return None;
        }
        let line = read(&self.lines).entitlements.get(&id).cloned()?;
        let allocated = read(&self.seats).get(&id).map(|(allocated, _)| *allocated);
        let mut entitlement = Entitlement::clone(&line);
        if let Some(allocated) = allocated {
            entitlement.set_seats_allocated(allocated);
        }
        Some(entitlement)
    }

    /// An entitlement line exactly as the database answers it now, in one narrow read by id
    /// instead of the line, its product and its obligations: the read gives what another
    /// instance may have changed since this model last heard (the line's revision, which every
    /// update raises; its seats; its product's name), and the rest comes from memory when the
    /// line held is of that revision (a line's obligations, agreement and product never change
    /// once it is made). Otherwise the whole line is read and held.
    pub fn current_entitlement(&self, db: &Database, id: i64) -> DbResult<Entitlement> {
        let now = db.read(|conn| line_now(conn, id))?.ok_or(DbError::NotFound("entitlement"))?;
        self.apply_seats([(id, now.seats_allocated, now.seats_version)]);
        let held = read(&self.lines).entitlements.get(&id).cloned();
        match held {
            Some(line) if line.revision == now.revision => {
                let mut entitlement = Entitlement::clone(&line);
                entitlement.set_seats_allocated(now.seats_allocated);
                entitlement.product = crate::products::label(&now.name, &now.edition, &now.version);
                Ok(entitlement)
            }
            _ => {
                let _refreshing = self.refreshing();
                self.load_entitlement(db, id)
            }
        }
    }

    /// Reads an entitlement line and its seat total and holds them; returns the line as the
    /// database answered it. The caller holds `refreshing`.
    fn load_entitlement(&self, db: &Database, id: i64) -> DbResult<Entitlement> {
        let (entitlement, seats) =
            db.read(|conn| Ok((agreements::get_entitlement(conn, id)?, seat_row(conn, id)?)))?;
        write(&self.lines).insert_entitlement(entitlement.clone());
        self.apply_seats([seats]);
        Ok(entitlement)
    }

    fn refreshing(&self) -> std::sync::MutexGuard<'_, ()> {
        self.refreshing.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Applies changes this instance committed. A failure leaves the model marked stale, to be
    /// reloaded whole by the next poll.
    pub fn apply(&self, db: &Database, touched: &[Committed]) {
        for change in touched {
            if let Err(error) = self.refresh(db, change.entity, &change.entity_id, change.after.as_ref()) {
                tracing::warn!(%error, entity = change.entity, "read model refresh failed; it will reload");
                self.stale.store(true, Ordering::Relaxed);
            }
        }
    }

    fn refresh(
        &self,
        db: &Database,
        entity: &str,
        entity_id: &str,
        after: Option<&serde_json::Value>,
    ) -> DbResult<()> {
        let _refreshing = self.refreshing();
        let id = || entity_id.parse::<i64>().ok();
        match entity {
            "organisation" => {
                let rows = db.read(|conn| load_organisations(conn, Some(entity_id), None))?;
                write(&self.organisations).replace(entity_id, rows)?;
            }
            "nhsmail_service" => {
                let periods = db.read(|conn| nhsmail::periods_of(conn, entity_id))?;
                let mut services = write(&self.nhsmail_services);
                if periods.is_empty() {
                    services.remove(entity_id);
                } else {
                    services.insert(entity_id.to_owned(), Arc::from(periods));
                }
            }
            "product" => {
                let Some(id) = id() else { return Ok(()) };
                // Before the read, so that a refresh that fails still forgets the old row.
                self.held_products.forget(id);
                let (rows, successor, lines) = db.read(|conn| {
                    let successor: Option<i64> = products::table
                        .find(id)
                        .select(products::successor_id)
                        .first(conn)
                        .optional()?
                        .flatten();
                    let lines = agreements::entitlements_for_products(conn, &[id])?;
                    Ok((load_products(conn, Some(id), None)?, successor, lines))
                })?;
                let releases = read(&self.lifecycles).releases.get(&id).cloned();
                let doc = rows.first().map(|(row, supplier)| search_doc(row, supplier, releases.as_deref()));
                self.reindex(id, doc.as_ref())?;
                write(&self.products).replace(id, rows.into_iter().map(|(row, _)| row).collect())?;
                // An entitlement line is answered with its product's name, edition and version:
                // a renamed product's lines are read again, or they would answer the old name.
                write(&self.lines).replace_entitlements(lines);
                let mut lifecycles = write(&self.lifecycles);
                match successor {
                    Some(successor) => lifecycles.successors.insert(id, successor),
                    None => lifecycles.successors.remove(&id),
                };
            }
            "release" => {
                let product_id = after.and_then(|a| a.get("product_id")).and_then(serde_json::Value::as_i64);
                let Some(product_id) = product_id else { return Ok(()) };
                let (releases, rows) = db.read(|conn| {
                    Ok((
                        releases::for_product(conn, product_id)?,
                        load_products(conn, Some(product_id), None)?,
                    ))
                })?;
                // A product is also found by its releases' names.
                let doc = rows.first().map(|(row, supplier)| search_doc(row, supplier, Some(&releases)));
                self.reindex(product_id, doc.as_ref())?;
                write(&self.lifecycles).releases.insert(product_id, Arc::from(releases));
            }
            "agreement" => {
                let Some(id) = id() else { return Ok(()) };
                let agreement = db.read(|conn| agreements::get(conn, id))?;
                write(&self.lines).agreements.insert(id, Arc::new(agreement));
            }
            "entitlement" => {
                let Some(id) = id() else { return Ok(()) };
                self.load_entitlement(db, id)?;
            }
            "allocation" => {
                let entitlement_id =
                    after.and_then(|a| a.get("entitlement_id")).and_then(serde_json::Value::as_i64);
                if let Some(entitlement_id) = entitlement_id {
                    let seats = db.read(|conn| seat_row(conn, entitlement_id))?;
                    self.apply_seats([seats]);
                }
            }
            "standard" | "standard_version" | "assessment" => {
                let (published, categories) = db.read(|conn| {
                    Ok((guidance::published(conn, None, far_future())?, standard_categories(conn)?))
                })?;
                *write(&self.guidance) = published.into_iter().map(Arc::new).collect();
                *write(&self.standard_categories) = categories;
            }
            "icb_grant" => {
                let granted = db.read(|conn| icb_acting::grant_of(conn, entity_id))?;
                let mut icbs = write(&self.granted_icbs);
                match granted {
                    Some(grant) => icbs.insert(grant.icb_code),
                    None => icbs.remove(entity_id),
                };
            }
            "user" => {
                let Some(id) = id() else { return Ok(()) };
                match db.read(|conn| users::principal(conn, id))? {
                    Some(principal) => write(&self.principals).insert(id, principal),
                    None => write(&self.principals).remove(&id),
                };
            }
            "seed" => self.reload(db)?,
            _ => {}
        }
        Ok(())
    }

    /// Replaces what the search index holds for product `id`; findable on return.
    fn reindex(&self, id: i64, doc: Option<&SearchDoc>) -> DbResult<()> {
        match read(&self.search).clone() {
            Some(search) => search.replace(id, doc),
            None => Ok(()),
        }
    }

    /// Applies seat totals that are at least as new as the cached ones.
    fn apply_seats(&self, rows: impl IntoIterator<Item = (i64, i64, i64)>) {
        let mut seats = write(&self.seats);
        for (id, allocated, version) in rows {
            let entry = seats.entry(id).or_insert((allocated, version));
            if version >= entry.1 {
                *entry = (allocated, version);
            }
        }
    }

    /// Picks up changes committed by other instances (see the module documentation).
    pub fn poll(&self, db: &Database) -> DbResult<()> {
        if self.stale.load(Ordering::Relaxed) {
            return self.reload(db);
        }
        let (seat_list, events) = db.read(|conn| Ok((seat_rows(conn)?, recent_events(conn)?)))?;
        self.apply_seats(seat_list);
        let fresh: Vec<_> = {
            let mut applied = self.applied();
            let now = Instant::now();
            applied.retain(|_, seen| now.duration_since(*seen) < EVENT_WINDOW * 2);
            events.into_iter().filter(|(id, ..)| applied.insert(*id, now).is_none()).collect()
        };
        for (_, entity, entity_id, after) in fresh {
            let after = after.and_then(|text| serde_json::from_str(&text).ok());
            let entity = CACHED_ENTITIES.iter().find(|e| **e == entity).copied().unwrap_or("");
            if let Err(error) = self.refresh(db, entity, &entity_id, after.as_ref()) {
                tracing::warn!(%error, "read model poll failed; it will reload");
                self.stale.store(true, Ordering::Relaxed);
            }
        }
        Ok(())
    }
}

type AuditEventRow = (i64, String, String, Option<String>);

/// The audit events of the last [`EVENT_WINDOW`] that change what the model holds.
fn recent_events(conn: &mut DbConnection) -> DbResult<Vec<AuditEventRow>> {
    let since = chrono::Utc::now().naive_utc() - chrono::Duration::from_std(EVENT_WINDOW).unwrap_or_default();
    Ok(audit_events::table
        .filter(audit_events::occurred_at.ge(since))
        .filter(audit_events::entity.eq_any(CACHED_ENTITIES))
        .order(audit_events::id)
        .select((audit_events::id, audit_events::entity, audit_events::entity_id, audit_events::after_state))
        .load(conn)?)
}

fn standard_categories(conn: &mut DbConnection) -> DbResult<HashSet<String>> {
    use crate::schema::standards;
    Ok(standards::table.select(standards::category).distinct().load::<String>(conn)?.into_iter().collect())
}

fn seat_rows(conn: &mut DbConnection) -> DbResult<Vec<(i64, i64, i64)>> {
    Ok(entitlements::table
        .select((entitlements::id, entitlements::seats_allocated, entitlements::seats_version))
        .load(conn)?)
}

/// What [`ReadModel::current_entitlement`] reads of a line: what can change after it is made.
#[derive(Queryable)]
struct LineNow {
    revision: i64,
    seats_allocated: i64,
    seats_version: i64,
    name: String,
    edition: String,
    version: String,
}

fn line_now(conn: &mut DbConnection, id: i64) -> DbResult<Option<LineNow>> {
    Ok(entitlements::table
        .inner_join(products::table)
        .filter(entitlements::id.eq(id))
        .select((
            entitlements::revision,
            entitlements::seats_allocated,
            entitlements::seats_version,
            products::name,
            products::edition,
            products::version,
        ))
        .first(conn)
        .optional()?)
}

fn seat_row(conn: &mut DbConnection, id: i64) -> DbResult<(i64, i64, i64)> {
    Ok(entitlements::table
        .find(id)
        .select((entitlements::id, entitlements::seats_allocated, entitlements::seats_version))
        .first(conn)?)
}

/// Polls for other instances' changes every [`POLL_INTERVAL`] until dropped.
pub struct Poller {
    stop: Arc<AtomicBool>,
}

impl Poller {
    pub fn start(db: Database, model: Arc<ReadModel>) -> Poller {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(POLL_INTERVAL);
                if let Err(error) = model.poll(&db) {
                    tracing::debug!(%error, "read model poll failed");
                }
            }
        });
        Poller { stop }
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl CommitListener for ReadModel {
    fn committed(&self, db: &Database, changes: &[Committed]) {
        self.apply(db, changes);
    }
}

impl crate::products::ProductTextIndex for ReadModel {
    fn products_matching(&self, text: &str, after: Option<i64>, at_most: usize) -> DbResult<Vec<i64>> {
        // The index is shared (`Arc`): the lock is not held while it is searched.
        match read(&self.search).clone() {
            Some(search) => search.matching(text, after, at_most),
            None => Err(DbError::Unavailable("the read model has not loaded yet".into())),
        }
    }

    fn products_with_ids(&self, db: &Database, ids: &[i64], on: NaiveDate) -> DbResult<Vec<Product>> {
        self.held_products.with_ids(db, ids, on)
    }

    fn held_products(&self, ids: &[i64], on: NaiveDate) -> Option<Vec<Product>> {
        self.held_products.all_held(ids, on)
    }
}
