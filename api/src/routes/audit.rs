use actix_web::{HttpRequest, HttpResponse, get, web};
use chrono::{DateTime, Utc};
use db::audit::{AuditEvent, AuditFilter};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::auth::Authorised;
use crate::auth::extractors::AdminOrAuditor;
use crate::error::ApiResult;
use crate::openapi::ReadErrors;
use crate::preconditions::page_request;
use crate::spreadsheet;
use crate::state::AppState;
use crate::views::{AuditPage, list_query};

/// Events are read from the database in batches of this many while an export streams.
const EXPORT_BATCH: i64 = 1000;

list_query! {
    pub struct AuditQuery {
        /// e.g. `allocation`, `standard_version`.
        pub entity: Option<String>,
        pub entity_id: Option<String>,
        /// The acting user's id.
        pub actor: Option<i64>,
        /// ODS code of the organisation concerned.
        pub organisation: Option<String>,
        /// e.g. `allocation.claim`.
        pub action: Option<String>,
        /// From this time (inclusive).
        pub from: Option<DateTime<Utc>>,
        /// Up to this time (exclusive).
        pub to: Option<DateTime<Utc>>,
        ..page,
        /// `csv` for every row from the cursor on as one CSV file (or send `Accept: text/csv`).
        pub format: Option<crate::spreadsheet::Format>,
    }
}

fn filter_of(query: &AuditQuery) -> AuditFilter {
    AuditFilter {
        entity: query.entity.clone(),
        entity_id: query.entity_id.clone(),
        actor_user_id: query.actor,
        organisation_code: query.organisation.clone(),
        action: query.action.clone(),
        from: query.from.map(|t| t.naive_utc()),
        to: query.to.map(|t| t.naive_utc()),
    }
}

/// The audit log: every write, oldest first. Read-only: no route changes or deletes an event.
#[utoipa::path(
    tag = "audit",
    operation_id = "list_audit_events",
    security(("bearer" = [])),
    params(AuditQuery),
    responses((status = 200, description = "A page of events, or all of them as CSV", content(
            (AuditPage = "application/json"),
            (String = "text/csv"),
        )), ReadErrors)
)]
#[get("/audit")]
pub async fn list_audit_events(
    state: web::Data<AppState>,
    _user: Authorised<AdminOrAuditor>,
    query: web::Query<AuditQuery>,
    request: HttpRequest,
) -> ApiResult<HttpResponse> {
    let query = query.into_inner();
    let csv = spreadsheet::wants_csv(&request, query.format);
    let filter = filter_of(&query);
    let page = page_request(query.limit, query.cursor)?;
    spreadsheet::list(&state, csv, "audit", page, move |conn, page| db::audit::list(conn, &filter, page))
        .await
}

#[derive(Clone, Copy, Deserialize, ToSchema, Default)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    #[default]
    Csv,
    /// JSON Lines: one event per line.
    Jsonl,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// `csv` (default) or `jsonl`.
    #[param(inline)]
    pub format: Option<ExportFormat>,
    pub entity: Option<String>,
    pub entity_id: Option<String>,
    pub actor: Option<i64>,
    pub organisation: Option<String>,
    pub action: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

fn render(events: &[AuditEvent], format: ExportFormat, header: bool) -> Vec<u8> {
    match format {
        ExportFormat::Jsonl => {
            let mut out = Vec::with_capacity(events.len() * 256);
            for event in events {
                if serde_json::to_writer(&mut out, event).is_ok() {
                    out.push(b'\n');
                }
            }
            out
        }
        // The columns and cells of every CSV list (`crate::spreadsheet`): before and after
        // states hold whatever users typed, so they are neutralised for spreadsheets.
        ExportFormat::Csv => spreadsheet::rows_csv(events, header),
    }
}

/// The audit log as CSV or JSON Lines, streamed in batches: memory stays flat however long it is.
#[utoipa::path(
    tag = "audit",
    operation_id = "export_audit_events",
    security(("bearer" = [])),
    params(ExportQuery),
    responses(
        (status = 200, description = "The events, oldest first", content(
            (String = "text/csv"),
            (String = "application/jsonl"),
        )),
        ReadErrors
    )
)]
#[get("/audit/export")]
pub async fn export_audit_events(
    state: web::Data<AppState>,
    _user: Authorised<AdminOrAuditor>,
    query: web::Query<ExportQuery>,
) -> ApiResult<HttpResponse> {
    let query = query.into_inner();
    let format = query.format.unwrap_or_default();
    let filter = AuditFilter {
        entity: query.entity,
        entity_id: query.entity_id,
        actor_user_id: query.actor,
        organisation_code: query.organisation,
        action: query.action,
        from: query.from.map(|t| t.naive_utc()),
        to: query.to.map(|t| t.naive_utc()),
    };
    // A small bounded channel: the reader waits while the client is slow, so at most a few
    // batches are ever held in memory.
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<web::Bytes, std::io::Error>>(2);
    let db = state.db.clone();
    actix_web::rt::task::spawn_blocking(move || {
        let mut after = None;
        let mut first = true;
        loop {
            let batch = match db.read(|conn| db::audit::events_after(conn, &filter, after, EXPORT_BATCH)) {
                Ok(batch) => batch,
                Err(error) => {
                    tracing::error!(%error, "audit export failed");
                    let _ = sender.blocking_send(Err(std::io::Error::other("audit export failed")));
                    return;
                }
            };
            if batch.is_empty() && !first {
                return;
            }
            after = batch.last().map(|e| e.id);
            let bytes = render(&batch, format, first);
            first = false;
            if sender.blocking_send(Ok(web::Bytes::from(bytes))).is_err()
                || batch.len() < EXPORT_BATCH as usize
            {
                return;
            }
        }
    });
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    });
    let (content_type, extension) = match format {
        ExportFormat::Csv => ("text/csv; charset=utf-8", "csv"),
        ExportFormat::Jsonl => ("application/jsonl", "jsonl"),
    };
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(("content-disposition", format!("attachment; filename=\"audit.{extension}\"")))
        .streaming(stream))
}
