//! Lists and reports as CSV files that people open in spreadsheets.
//!
//! Every list answers in JSON a page at a time, or, when asked with `?format=csv` or
//! `Accept: text/csv`, as one CSV file of every row from the cursor on, streamed in batches read
//! one after another, so that memory follows the batch and not the list. The columns are the
//! fields of the list's item as the OpenAPI document describes them (so a file has the same
//! header whether it holds rows or none), in the order of that description; a nested object or
//! a list of objects is written as its JSON in one cell, a list of words as the words joined by
//! `;`.
//!
//! A cell that begins with `=`, `+`, `-`, `@`, a tab or a carriage return is run as a formula by
//! Excel, LibreOffice and Google Sheets (CSV injection); text from users (names, references, an
//! audit event's before and after states) can begin with any of them. Such a cell gets a leading
//! apostrophe, which spreadsheets show as text and which OWASP recommends. Numbers are written
//! as numbers (`-5` stays a number).

use actix_web::http::header::{self, Header};
use actix_web::{HttpRequest, HttpResponse, web};
use db::connection::DbConnection;
use db::{DbResult, Page, PageRequest};
use serde::{Deserialize, Serialize};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{IntoParams, PartialSchema, ToSchema};

use crate::error::ApiResult;
use crate::state::AppState;
use crate::views::list_query;

const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// Rows read from the database at once while a CSV file streams.
const BATCH: i64 = db::page::MAX_LIMIT;

/// `text` as a spreadsheet will show it, never as a formula.
pub fn neutralised(text: &str) -> std::borrow::Cow<'_, str> {
    if text.starts_with(FORMULA_STARTS) { format!("'{text}").into() } else { text.into() }
}

/// A JSON value as one CSV cell: text neutralised, numbers and booleans as written, null empty,
/// a list of words joined by `;`, anything else as its JSON.
pub fn cell(value: &serde_json::Value) -> String {
    use serde_json::Value;
    match value {
        Value::Null => String::new(),
        Value::String(text) => neutralised(text).into_owned(),
        Value::Array(items) if items.iter().all(Value::is_string) => {
            let words: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
            neutralised(&words.join(";")).into_owned()
        }
        Value::Array(_) | Value::Object(_) => neutralised(&value.to_string()).into_owned(),
        other => other.to_string(),
    }
}

/// How a list or report is answered.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// A page of JSON (the default).
    Json,
    /// Every row from the cursor on, as one CSV file (`text/csv`), streamed; `limit` is not used.
    Csv,
}

/// The query of a list or report that takes no other parameter.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct FormatQuery {
    /// `csv` for the rows as one CSV file (or send `Accept: text/csv`).
    pub format: Option<Format>,
}

list_query! {
    /// The query of a list that takes no other parameter.
    pub struct PageQuery {
        ..page,
        /// `csv` for every row from the cursor on as one CSV file (or send `Accept: text/csv`).
        pub format: Option<Format>,
    }
}

/// The query of a web page that lists something: `?format=csv` is the page's "Download CSV".
#[derive(Deserialize)]
pub struct PageDownload {
    format: Option<String>,
}

impl PageDownload {
    pub fn wanted(&self) -> bool {
        self.format.as_deref() == Some("csv")
    }
}

/// Whether the client asked for CSV: `format=csv`, or, without `format`, an `Accept` header that
/// ranks `text/csv` above JSON.
pub fn wants_csv(request: &HttpRequest, format: Option<Format>) -> bool {
    match format {
        Some(format) => format == Format::Csv,
        None => header::Accept::parse(request).is_ok_and(|accept| {
            accept
                .ranked()
                .iter()
                .find(|mime| {
                    mime.essence_str() == "text/csv"
                        || mime.essence_str() == "application/json"
                        || mime.essence_str() == "*/*"
                })
                .is_some_and(|mime| mime.essence_str() == "text/csv")
        }),
    }
}

/// The columns of a CSV file of `T`: its fields as its schema names them.
pub fn columns<T: PartialSchema>() -> Vec<String> {
    match T::schema() {
        RefOr::T(Schema::Object(object)) => object.properties.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

/// Writes rows of `T` under `columns`, and the header first when `header` is set.
fn write_rows<T: Serialize>(rows: &[T], columns: &[String], header: bool) -> Vec<u8> {
    let mut writer =
        csv::WriterBuilder::new().has_headers(false).from_writer(Vec::with_capacity(rows.len() * 160 + 256));
    // Writing to a Vec cannot fail; a row that does not serialise as an object is left out.
    if header {
        let _ = writer.write_record(columns);
    }
    for row in rows {
        let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(row) else { continue };
        let _ = writer
            .write_record(columns.iter().map(|column| fields.get(column).map(cell).unwrap_or_default()));
    }
    writer.into_inner().unwrap_or_default()
}

/// Rows of `T` as CSV under `T`'s columns, the header first when `header` is set: for a file
/// written in batches by its own handler (the audit export).
pub fn rows_csv<T: Serialize + PartialSchema>(rows: &[T], header: bool) -> Vec<u8> {
    write_rows(rows, &columns::<T>(), header)
}

/// A CSV response, offered as a file named `name.csv`.
fn attachment(name: &str) -> actix_web::HttpResponseBuilder {
    let mut response = HttpResponse::Ok();
    response
        .content_type("text/csv; charset=utf-8")
        .insert_header(("Content-Disposition", format!("attachment; filename=\"{name}.csv\"")));
    response
}

/// A whole report's rows (a report that is not paged) as a CSV file.
pub fn whole<T: Serialize + PartialSchema>(name: &str, rows: &[T]) -> HttpResponse {
    attachment(name).body(write_rows(rows, &columns::<T>(), true))
}

/// A list read a page at a time by `read`: in JSON, the page asked for; in CSV, every row from
/// the page's cursor on, in batches read one after another while the client takes them. An error
/// on the first batch (a bad cursor, say) is answered as a problem; a later one (the database gone
/// mid-file) ends the stream short, logged, as the status is already sent.
pub async fn list<T, R>(
    state: &AppState,
    csv: bool,
    name: &'static str,
    page: PageRequest,
    read: R,
) -> ApiResult<HttpResponse>
where
    T: Serialize + PartialSchema + Send + 'static,
    R: Fn(&mut DbConnection, &PageRequest) -> DbResult<Page<T>> + Send + Sync + 'static,
{
    let read = std::sync::Arc::new(read);
    if !csv {
        let first = read.clone();
        let found = state.read(move |conn| first(conn, &page)).await?;
        return Ok(HttpResponse::Ok().json(crate::views::Page::from(found)));
    }
    let columns = columns::<T>();
    let batch = PageRequest { limit: Some(BATCH), cursor: page.cursor };
    let first = read.clone();
    let first_batch = state.read(move |conn| first(conn, &batch)).await?;
    // A small bounded channel: the reader waits while the client is slow, so at most a few
    // batches are ever held in memory.
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<web::Bytes, std::io::Error>>(2);
    let db = state.db.clone();
    actix_web::rt::task::spawn_blocking(move || {
        let mut cursor = first_batch.next_cursor.clone();
        let bytes = write_rows(&first_batch.items, &columns, true);
        drop(first_batch);
        if sender.blocking_send(Ok(web::Bytes::from(bytes))).is_err() {
            return;
        }
        while let Some(after) = cursor.take() {
            let batch = PageRequest { limit: Some(BATCH), cursor: Some(after) };
            match db.read(|conn| read(conn, &batch)) {
                Ok(found) => {
                    cursor = found.next_cursor.clone();
                    let bytes = write_rows(&found.items, &columns, false);
                    if sender.blocking_send(Ok(web::Bytes::from(bytes))).is_err() {
                        return;
                    }
                }
                Err(error) => {
                    tracing::error!(%error, list = name, "CSV export failed part way");
                    let _ = sender.blocking_send(Err(std::io::Error::other("CSV export failed")));
                    return;
                }
            }
        }
    });
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    });
    Ok(attachment(name).streaming(stream))
}

/// A report that is not paged: its rows in JSON as `json` makes of them, or as a CSV file.
pub fn report<T, J>(csv: bool, name: &str, rows: Vec<T>, json: impl FnOnce(Vec<T>) -> J) -> HttpResponse
where
    T: Serialize + PartialSchema,
    J: Serialize,
{
    if csv { whole(name, &rows) } else { HttpResponse::Ok().json(json(rows)) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn formula_starts_are_neutralised_and_other_text_is_not() {
        for dangerous in ["=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"] {
            assert_eq!(neutralised(dangerous), format!("'{dangerous}"));
        }
        for plain in ["RR8", "Leeds = good", "", "'quoted"] {
            assert_eq!(neutralised(plain), plain);
        }
    }

    #[test]
    fn numbers_stay_numbers_and_lists_are_joined() {
        assert_eq!(cell(&json!(-5)), "-5");
        assert_eq!(cell(&json!(null)), "");
        assert_eq!(cell(&json!("=1+1")), "'=1+1");
        assert_eq!(cell(&json!(["unused", "under_claimed"])), "unused;under_claimed");
        assert_eq!(cell(&json!(["=cmd", "x"])), "'=cmd;x");
        assert_eq!(cell(&json!({"a": 1})), "{\"a\":1}");
    }

    #[derive(Serialize, ToSchema)]
    struct Row {
        code: String,
        count: i64,
    }

    #[test]
    fn the_header_comes_from_the_schema_even_without_rows() {
        assert_eq!(columns::<Row>(), ["code", "count"]);
        let none: Vec<Row> = Vec::new();
        assert_eq!(String::from_utf8_lossy(&write_rows(&none, &columns::<Row>(), true)), "code,count\n");
        let rows = [Row { code: "@RR8".into(), count: -3 }];
        assert_eq!(
            String::from_utf8_lossy(&write_rows(&rows, &columns::<Row>(), true)),
            "code,count\n'@RR8,-3\n"
        );
    }
}
