//! Keyset pagination shared by every list: a stable order on a unique key, a bounded `limit`,
//! and an opaque cursor naming the last key of the previous page.

use serde::Serialize;

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 500;

#[derive(Clone, Debug, Default)]
pub struct PageRequest {
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

impl PageRequest {
    /// The limit to use, clamped to 1..=MAX_LIMIT.
    pub fn limit(&self) -> i64 {
        self.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT)
    }

    /// The cursor as the integer key it holds; a cursor that is not one is refused.
    pub fn after_id(&self) -> Result<Option<i64>, crate::DbError> {
        self.cursor
            .as_deref()
            .map(|c| c.parse::<i64>().map_err(|_| crate::DbError::InvalidCursor))
            .transpose()
    }
}

/// The order of a list kept in the order its records were added (by id): the order they came
/// in, or the latest first. Either way a page's cursor is the last id it showed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AddedOrder {
    #[default]
    OldestFirst,
    NewestFirst,
}

impl AddedOrder {
    pub fn as_str(self) -> &'static str {
        match self {
            AddedOrder::OldestFirst => "oldest",
            AddedOrder::NewestFirst => "newest",
        }
    }

    pub fn parse(text: &str) -> Option<AddedOrder> {
        [AddedOrder::OldestFirst, AddedOrder::NewestFirst].into_iter().find(|order| order.as_str() == text)
    }
}

#[derive(Debug, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows: the extra row only says another page exists.
    pub fn from_rows(mut rows: Vec<T>, limit: i64, key: impl Fn(&T) -> String) -> Page<T> {
        let more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let next_cursor = if more { rows.last().map(key) } else { None };
        Page { items: rows, next_cursor }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page { items: self.items.into_iter().map(f).collect(), next_cursor: self.next_cursor }
    }
}

/// What an update expects of the stored revision (from `If-Match`).
#[derive(Clone, Copy, Debug)]
pub enum Precondition {
    /// `If-Match: *`: the resource must exist; any revision will do.
    Exists,
    Revision(i64),
}

impl Precondition {
    pub fn check(self, current: i64) -> Result<(), crate::DbError> {
        match self {
            Precondition::Exists => Ok(()),
            Precondition::Revision(expected) if expected == current => Ok(()),
            Precondition::Revision(_) => Err(crate::DbError::StaleRevision),
        }
    }
}
