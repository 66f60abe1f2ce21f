//! Whole product rows of the products searches have found lately, so that a page of search
//! results is answered from memory. The model's compact product table holds only what coverage
//! needs; holding every product whole would add tens of megabytes at national scale (the 10x
//! benchmark's 200,000 products), while people search for a small set over and over. perf put
//! half of a product search's time in reading its page of rows from the database (the query,
//! its SQL and decoding the rows).
//!
//! A held row is forgotten when its product changes (a refresh, on this instance before the
//! write returns; on others at their next poll, as for everything in the model), and all are
//! forgotten by a reload. A row read from the database is held only if nothing was forgotten
//! while it was read: otherwise a row read before a change could be held after it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use chrono::NaiveDate;

use super::{read, write};
use crate::connection::Database;
use crate::error::DbResult;
use crate::products::{self, Product};

/// At most this many rows are held (a few megabytes); when full, all are dropped and the
/// searches that follow fill it again with what people are looking for now.
const HELD_AT_MOST: usize = 4_096;

#[derive(Default)]
pub(super) struct HeldProducts {
    rows: RwLock<HashMap<i64, Arc<Product>>>,
    /// Raised, under the write lock, each time a row is forgotten.
    forgotten: AtomicU64,
}

impl HeldProducts {
    /// The products with these ids that exist, in the order given, with their support status on
    /// `on`: held rows from memory, the rest in one read, then held.
    pub(super) fn with_ids(&self, db: &Database, ids: &[i64], on: NaiveDate) -> DbResult<Vec<Product>> {
        let mut found: HashMap<i64, Arc<Product>> = HashMap::with_capacity(ids.len());
        let mut missing = Vec::new();
        {
            let rows = read(&self.rows);
            for id in ids {
                match rows.get(id) {
                    Some(row) => drop(found.insert(*id, row.clone())),
                    None => missing.push(*id),
                }
            }
        }
        if !missing.is_empty() {
            let forgotten_before = self.forgotten.load(Ordering::SeqCst);
            let read_now = db.read(|conn| products::with_ids(conn, &missing, on))?;
            let mut rows = write(&self.rows);
            // Not held: what was read before a product was forgotten, or more than fits.
            let hold =
                self.forgotten.load(Ordering::SeqCst) == forgotten_before && read_now.len() <= HELD_AT_MOST;
            if hold && rows.len() + read_now.len() > HELD_AT_MOST {
                rows.clear();
            }
            for product in read_now {
                let product = Arc::new(product);
                if hold {
                    rows.insert(product.id, product.clone());
                }
                found.insert(product.id, product);
            }
        }
        Ok(ids.iter().filter_map(|id| found.get(id)).map(|row| with_status(row, on)).collect())
    }

    /// The products with these ids, in the order given, with their support status on `on`, all
    /// from memory; none when one of them is not held (a page of search results is then read
    /// through [`HeldProducts::with_ids`], off the event loop).
    pub(super) fn all_held(&self, ids: &[i64], on: NaiveDate) -> Option<Vec<Product>> {
        let rows = read(&self.rows);
        ids.iter().map(|id| rows.get(id).map(|row| with_status(row, on))).collect()
    }

    /// Forgets product `id` (it changed).
    pub(super) fn forget(&self, id: i64) {
        let mut rows = write(&self.rows);
        rows.remove(&id);
        self.forgotten.fetch_add(1, Ordering::SeqCst);
    }

    /// Forgets every product (the model is reloading, or may have missed a change).
    pub(super) fn forget_all(&self) {
        let mut rows = write(&self.rows);
        rows.clear();
        self.forgotten.fetch_add(1, Ordering::SeqCst);
    }
}

/// A held row as a product, with its support status on `on`.
fn with_status(row: &Product, on: NaiveDate) -> Product {
    let mut product = row.clone();
    product.support_status =
        products::support_status(product.mainstream_support_ends_on, product.extended_support_ends_on, on);
    product
}
