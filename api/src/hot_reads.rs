//! The hot reads (coverage, the signed-in user, an entitlement line, the product search on the
//! API and the start page) and the one place that decides where each is answered from: the in-memory read model
//! when the service keeps one, the database otherwise.

use std::sync::Arc;

use chrono::NaiveDate;
use db::agreements::Entitlement;
use db::coverage::{Coverage, Subject};
use db::page::{Page, PageRequest};
use db::products::{Product, ProductFilter, ProductTextIndex};
use db::read_model::ReadModel;
use db::users::Principal;
use db::{DbConnection, DbResult};

use crate::error::ApiResult;
use crate::state::AppState;

/// The coverage answer where a connection is already held (the web pages gather more around
/// it): from the read model when there is one, else from the database.
pub fn coverage_on(
    model: Option<&ReadModel>,
    conn: &mut DbConnection,
    organisation: &str,
    subject: Subject,
    on: NaiveDate,
) -> DbResult<Coverage> {
    match model {
        Some(model) => model.coverage(organisation, subject, on),
        None => db::coverage::answer(conn, organisation, subject, on),
    }
}

/// The products a person's question names, at most `limit`, in id order (the start page's
/// "Which product do you mean?"): from the read model's search index when there is one, which
/// forgives typos and word order and also searches release names; else the database's `LIKE`
/// per word. A question with no words names nothing.
pub fn product_search_on(
    model: Option<&ReadModel>,
    conn: &mut DbConnection,
    question: &str,
    on: NaiveDate,
    limit: i64,
) -> DbResult<Vec<Product>> {
    match model {
        _ if question.split_whitespace().next().is_none() => Ok(Vec::new()),
        Some(model) => {
            let ids = model.products_matching(question, None, usize::try_from(limit).unwrap_or_default())?;
            db::products::with_ids(conn, &ids, on)
        }
        None => db::products::search(conn, question, on, limit),
    }
}

impl AppState {
    /// The read model, for work that takes it into a blocking closure.
    pub fn read_model(&self) -> Option<Arc<ReadModel>> {
        self.read_model.clone()
    }

    /// The coverage answer: from memory without blocking, or from the database off the event loop.
    pub async fn coverage(
        &self,
        organisation: String,
        subject: Subject,
        on: NaiveDate,
    ) -> ApiResult<Coverage> {
        match &self.read_model {
            Some(model) => Ok(model.coverage(&organisation, subject, on)?),
            None => {
                self.run(move |db| db.read(|conn| coverage_on(None, conn, &organisation, subject, on))).await
            }
        }
    }

    /// The user a token names, as authentication needs them: from memory when cached (no query
    /// on the hot path), else from the database (and then cached).
    pub async fn principal(&self, user_id: i64) -> ApiResult<Option<Principal>> {
        if let Some(principal) = self.read_model.as_ref().and_then(|model| model.cached_principal(user_id)) {
            return Ok(Some(principal));
        }
        let model = self.read_model.clone();
        self.run(move |db| match model {
            Some(model) => model.principal(db, user_id),
            None => db.read(|conn| db::users::principal(conn, user_id)),
        })
        .await
    }

    /// An entitlement line with its seats, as the database holds it when the request began. A
    /// claim through another instance must show at once (several instances share PostgreSQL, and
    /// a second `catalogue serve` may share a SQLite file: `ledger::two_instances_on_one_sqlite_
    /// file_keep_the_ledger`), so one narrow read by id gives the line's revision, seats and
    /// product name, and memory gives the rest.
    pub async fn entitlement(&self, id: i64) -> ApiResult<Entitlement> {
        let Some(model) = self.read_model.clone() else {
            return self.read(move |conn| db::agreements::get_entitlement(conn, id)).await;
        };
        self.run(move |db| model.current_entitlement(db, id)).await
    }

    /// A page of the product list, its text filter answered from memory when it can be.
    pub async fn products(
        &self,
        filter: ProductFilter,
        on: NaiveDate,
        page: PageRequest,
    ) -> ApiResult<Page<Product>> {
        if let Some(model) = &self.read_model
            && let Some(page) = db::products::page_from_memory(model.as_ref(), &filter, on, &page)?
        {
            return Ok(page);
        }
        let model = self.read_model.clone();
        self.run(move |db| {
            let index = model.as_deref().map(|model| model as &dyn ProductTextIndex);
            db::products::list_using_index(db, index, &filter, on, &page)
        })
        .await
    }
}
