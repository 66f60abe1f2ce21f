//! ODS imports over HTTP, for admins: the import `catalogue ods import` does (`db::ods`), with the
//! file as a `text/csv` body. The body is read here with its own limit (an ODS national file is
//! larger than the 256 KiB every JSON body may be: etr.csv is 57 KB, the GP practices' file
//! several MB), parsed and applied off the event loop.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Authorised;
use crate::auth::extractors::{AdminOnly, AdminOrAuditor};
use crate::body::MAX_ODS_FILE_BYTES;
use crate::error::{ApiError, ApiResult};
use crate::openapi::{CsvWriteErrors, ReadErrors, WriteErrors};
use crate::preconditions::page_request;
use crate::spreadsheet::{self, PageQuery};
use crate::state::AppState;
use crate::views::{OrganisationPage, list_query, pages};

/// The ODS national files the catalogue reads: `etr` (NHS trusts, `etr.csv`), `epraccur` (GP
/// practices and other prescribing cost centres, `epraccur.csv`), `icb` (integrated care boards),
/// `subicb` (sub-ICB locations, `eccg.csv`) and `succ` (successor organisations, `succ.csv`).
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OdsFile {
    #[default]
    Etr,
    Epraccur,
    Icb,
    Subicb,
    Succ,
}

impl From<OdsFile> for db::ods::OdsFileKind {
    fn from(file: OdsFile) -> Self {
        match file {
            OdsFile::Etr => db::ods::OdsFileKind::Etr,
            OdsFile::Epraccur => db::ods::OdsFileKind::Epraccur,
            OdsFile::Icb => db::ods::OdsFileKind::Icb,
            OdsFile::Subicb => db::ods::OdsFileKind::Subicb,
            OdsFile::Succ => db::ods::OdsFileKind::Succ,
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct OdsImportQuery {
    /// Which ODS file the body is (default `etr`).
    pub kind: Option<OdsFile>,
    /// Answer what the import would do, and write nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// An organisation the import adds (a closed one too: its code is then known, never reused).
#[derive(Serialize, ToSchema)]
pub struct OdsAddition {
    #[schema(example = "RR8")]
    pub code: String,
    pub name: String,
    pub closed_on: Option<chrono::NaiveDate>,
}

/// A field that changes on an organisation the catalogue knows.
#[derive(Serialize, ToSchema)]
pub struct OdsFieldChange {
    pub code: String,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// An open organisation that ODS has closed.
#[derive(Serialize, ToSchema)]
pub struct OdsClosure {
    pub code: String,
    pub name: String,
    pub closed_on: chrono::NaiveDate,
}

/// Other ODS fields that change on an organisation the catalogue knows.
#[derive(Serialize, ToSchema)]
pub struct OdsUpdate {
    pub code: String,
    /// The fields that change (`postcode`, `closed_on`, `ods_file`, ...).
    pub fields: Vec<String>,
}

/// What an import did, or on a dry run would do.
#[derive(Serialize, ToSchema)]
pub struct OdsImportReport {
    pub kind: OdsFile,
    /// True when nothing was written.
    pub dry_run: bool,
    /// Records in the file.
    pub records: usize,
    /// Records without a close date.
    pub open_records: usize,
    pub added: Vec<OdsAddition>,
    pub renamed: Vec<OdsFieldChange>,
    pub reparented: Vec<OdsFieldChange>,
    pub closed: Vec<OdsClosure>,
    pub updated: Vec<OdsUpdate>,
    /// Closed here (by a recorded succession) but open in ODS: left closed.
    pub closed_here_open_in_ods: Vec<String>,
    /// Codes the catalogue knows that the file does not list: reported, never removed.
    pub unknown_to_ods: Vec<String>,
    /// Records that change nothing.
    pub unchanged: usize,
    /// Successions (from `succ`) proposed to an admin: confirm or reject them under
    /// `/v1/ods/successions`.
    pub succeeded: Vec<OdsSucceeded>,
    /// Successions whose successor the catalogue does not know (import its file first): not
    /// proposed.
    pub successor_unknown: Vec<OdsSucceeded>,
    /// Successions whose predecessor the catalogue does not know.
    pub predecessor_unknown: usize,
}

/// A succession that ODS publishes.
#[derive(Serialize, ToSchema)]
pub struct OdsSucceeded {
    #[schema(example = "RVJ")]
    pub predecessor: String,
    #[schema(example = "RA7")]
    pub successor: String,
    /// The legal start of the succession.
    pub effective_on: chrono::NaiveDate,
    /// ODS's reason code: `F` a code change, `O` a change of organisation type, `R` a reconfiguration.
    pub reason: Option<String>,
}

impl From<db::ods::Succeeded> for OdsSucceeded {
    fn from(s: db::ods::Succeeded) -> Self {
        OdsSucceeded {
            predecessor: s.predecessor,
            successor: s.successor,
            effective_on: s.effective_on,
            reason: s.reason,
        }
    }
}

impl OdsImportReport {
    fn new(kind: OdsFile, dry_run: bool, plan: db::ods::ImportPlan) -> OdsImportReport {
        let change = |c: db::ods::FieldChange| OdsFieldChange { code: c.code, from: c.from, to: c.to };
        OdsImportReport {
            kind,
            dry_run,
            records: plan.records,
            open_records: plan.open_records,
            added: plan
                .added
                .into_iter()
                .map(|a| OdsAddition { code: a.code, name: a.name, closed_on: a.closed_on })
                .collect(),
            renamed: plan.renamed.into_iter().map(change).collect(),
            reparented: plan.reparented.into_iter().map(change).collect(),
            closed: plan
                .closed
                .into_iter()
                .map(|c| OdsClosure { code: c.code, name: c.name, closed_on: c.closed_on })
                .collect(),
            updated: plan
                .updated
                .into_iter()
                .map(|u| OdsUpdate {
                    code: u.code,
                    fields: u.fields.into_iter().map(str::to_owned).collect(),
                })
                .collect(),
            closed_here_open_in_ods: plan.closed_here_open_in_ods,
            unknown_to_ods: plan.unknown_to_ods,
            unchanged: plan.unchanged,
            succeeded: plan.succeeded.into_iter().map(OdsSucceeded::from).collect(),
            successor_unknown: plan.successor_unknown.into_iter().map(OdsSucceeded::from).collect(),
            predecessor_unknown: plan.predecessor_unknown,
        }
    }
}

/// An ODS file as bytes (`application/octet-stream`): the same file, for generated clients that
/// send files as binary and know no `text/csv`.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)] // Only its schema is used: the handler reads the body as bytes whatever its type.
pub struct OdsFileBytes(Vec<u8>);

/// An uploaded file sent as a form (`multipart/form-data`, as a browser or `curl -F file=@x.csv`
/// sends it): the file is the part named `file`. The server reads past other parts, but the
/// document describes none (a part's name is the form's own business, not the API's).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Only its schema is used: the handler reads the form's parts itself.
pub struct FileUpload {
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// The file of the body, within the limit (an ODS file here; an estate export in
/// `routes::estates`): the body itself when declared `text/csv` (or `application/octet-stream`),
/// or the part named `file` of a `multipart/form-data` form.
pub(crate) async fn csv_body(request: &HttpRequest, payload: web::Payload) -> ApiResult<Vec<u8>> {
    let declared = request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let essence = declared.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("multipart/form-data") {
        return file_part(request, payload).await;
    }
    if !essence.eq_ignore_ascii_case("text/csv") && !essence.eq_ignore_ascii_case("application/octet-stream")
    {
        return Err(ApiError::UnsupportedMediaType(
            "the body must be the file itself, sent as text/csv (or application/octet-stream), or a \
             multipart/form-data form with the file in a part named file"
                .into(),
        ));
    }
    let mut body = Vec::new();
    let mut payload = payload;
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::BadRequest(format!("the body could not be read: {e}")))?;
        append_within_limit(&mut body, &chunk)?;
    }
    Ok(body)
}

fn append_within_limit(body: &mut Vec<u8>, chunk: &[u8]) -> ApiResult<()> {
    if body.len() + chunk.len() > MAX_ODS_FILE_BYTES {
        return Err(ApiError::PayloadTooLarge);
    }
    body.extend_from_slice(chunk);
    Ok(())
}

/// The part named `file` of a `multipart/form-data` body. The parts before it count towards the
/// limit too, so a form cannot carry more than a file could.
async fn file_part(request: &HttpRequest, payload: web::Payload) -> ApiResult<Vec<u8>> {
    let unreadable =
        |e: actix_multipart::MultipartError| ApiError::BadRequest(format!("the form could not be read: {e}"));
    let mut form = actix_multipart::Multipart::new(request.headers(), payload);
    let mut read = 0usize;
    while let Some(part) = form.next().await {
        let mut part = part.map_err(unreadable)?;
        let is_file = part.name() == Some("file");
        let mut body = Vec::new();
        while let Some(chunk) = part.next().await {
            let chunk = chunk.map_err(unreadable)?;
            read = read.saturating_add(chunk.len());
            if read > MAX_ODS_FILE_BYTES {
                return Err(ApiError::PayloadTooLarge);
            }
            if is_file {
                body.extend_from_slice(&chunk);
            }
        }
        if is_file {
            return Ok(body);
        }
    }
    Err(ApiError::BadRequest("the form has no part named file".into()))
}

/// Import an ODS national file (the body, as `text/csv`, in its published layout: no header row,
/// every field quoted). Organisations are added, renamed, re-parented and closed in one audited
/// transaction; codes the catalogue knows but the file does not are reported, never removed. A
/// successor file (`succ`) changes no organisation: it proposes each succession to an admin. A
/// file that cannot be read is refused whole (422, naming the line), and with `dry_run=true`
/// nothing is written.
#[utoipa::path(
    tag = "organisations",
    operation_id = "create_ods_import",
    security(("bearer" = [])),
    params(OdsImportQuery),
    request_body(
        description = "The ODS file, as published: as text/csv, as application/octet-stream for clients that send files as bytes, or as a multipart/form-data form whose part `file` is the file",
        content((String = "text/csv"), (OdsFileBytes = "application/octet-stream"), (FileUpload = "multipart/form-data"))
    ),
    responses((status = 200, body = OdsImportReport), CsvWriteErrors)
)]
#[post("/ods/imports")]
pub async fn create_ods_import(
    state: web::Data<AppState>,
    admin: Authorised<AdminOnly>,
    query: web::Query<OdsImportQuery>,
    request: HttpRequest,
    payload: web::Payload,
) -> ApiResult<web::Json<OdsImportReport>> {
    let query = query.into_inner();
    let file = query.kind.unwrap_or_default();
    let body = csv_body(&request, payload).await?;
    let actor = admin.actor();
    let dry_run = query.dry_run;
    let plan = state
        .run(move |db| {
            let parsed = db::ods::read(file.into(), &body)?;
            if dry_run {
                db.read(|conn| db::ods::plan_file(conn, &parsed))
            } else {
                db::ods::apply_file(db, &actor, &parsed, &mut |_, _| {})
            }
        })
        .await?;
    Ok(web::Json(OdsImportReport::new(file, dry_run, plan)))
}

/// Where a succession that ODS published stands.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, ToSchema, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum OdsSuccessionStatus {
    /// Waiting for an admin.
    Proposed,
    /// Confirmed: the succession ran (allocations and obligations moved).
    Confirmed,
    /// Rejected: the predecessor was left as it was.
    Rejected,
}

impl From<OdsSuccessionStatus> for db::ods_successions::SuccessionStatus {
    fn from(status: OdsSuccessionStatus) -> Self {
        match status {
            OdsSuccessionStatus::Proposed => Self::Proposed,
            OdsSuccessionStatus::Confirmed => Self::Confirmed,
            OdsSuccessionStatus::Rejected => Self::Rejected,
        }
    }
}

/// A succession that ODS published (from an imported `succ` file), and what an admin decided.
#[derive(Serialize, ToSchema)]
pub struct OdsSuccession {
    pub id: i64,
    /// The organisation that closed.
    #[schema(example = "RVJ")]
    pub predecessor_code: String,
    /// The organisation that took it over.
    #[schema(example = "RA7")]
    pub successor_code: String,
    /// ODS's reason code: `F` a code change, `O` a change of organisation type, `R` a reconfiguration.
    pub reason: Option<String>,
    /// The legal start of the succession in ODS.
    pub effective_on: chrono::NaiveDate,
    /// `proposed`, `confirmed` or `rejected`.
    pub status: OdsSuccessionStatus,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub decided_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Who decided.
    pub decided_by: Option<String>,
}

pages! {
    OdsSuccessionPage = OdsSuccession;
}

impl TryFrom<db::ods_successions::OdsSuccession> for OdsSuccession {
    type Error = ApiError;

    fn try_from(row: db::ods_successions::OdsSuccession) -> ApiResult<OdsSuccession> {
        let status = match db::ods_successions::SuccessionStatus::parse(&row.status) {
            Some(db::ods_successions::SuccessionStatus::Proposed) => OdsSuccessionStatus::Proposed,
            Some(db::ods_successions::SuccessionStatus::Confirmed) => OdsSuccessionStatus::Confirmed,
            Some(db::ods_successions::SuccessionStatus::Rejected) => OdsSuccessionStatus::Rejected,
            // A corrupt stored value is an error, not a default.
            None => {
                return Err(ApiError::Internal(format!(
                    "ODS succession {} has status {:?}",
                    row.id, row.status
                )));
            }
        };
        Ok(OdsSuccession {
            id: row.id,
            predecessor_code: row.predecessor_code,
            successor_code: row.successor_code,
            reason: row.reason,
            effective_on: row.effective_on,
            status,
            created_at: row.created_at.and_utc(),
            decided_at: row.decided_at.map(|at| at.and_utc()),
            decided_by: row.decided_by,
        })
    }
}

list_query! {
    pub struct OdsSuccessionQuery {
        /// Only successions of this status (default: all).
        pub status: Option<OdsSuccessionStatus>,
        ..page,
        /// `csv` for every row from the cursor on as one CSV file (or send `Accept: text/csv`).
        pub format: Option<crate::spreadsheet::Format>,
    }
}

/// Successions that ODS published, by id: `?status=proposed` for those waiting for an admin.
#[utoipa::path(
    tag = "organisations",
    operation_id = "list_ods_successions",
    security(("bearer" = [])),
    params(OdsSuccessionQuery),
    responses((status = 200, description = "A page of successions, or all of them as CSV", content(
            (OdsSuccessionPage = "application/json"),
            (String = "text/csv"),
        )), ReadErrors)
)]
#[get("/ods/successions")]
pub async fn list_ods_successions(
    state: web::Data<AppState>,
    _reader: Authorised<AdminOrAuditor>,
    query: web::Query<OdsSuccessionQuery>,
    request: HttpRequest,
) -> ApiResult<HttpResponse> {
    let query = query.into_inner();
    let csv = spreadsheet::wants_csv(&request, query.format);
    let page = page_request(query.limit, query.cursor)?;
    let status = query.status.map(Into::into);
    spreadsheet::list(&state, csv, "ods-successions", page, move |conn, page| {
        let found = db::ods_successions::list(conn, status, page)?;
        let items = found
            .items
            .into_iter()
            .map(OdsSuccession::try_from)
            .collect::<ApiResult<_>>()
            .map_err(|error| db::DbError::Internal(error.to_string()))?;
        Ok(db::Page { items, next_cursor: found.next_cursor })
    })
    .await
}

/// Confirm a proposed succession: the catalogue's succession runs (the predecessor closes,
/// keeping the close date ODS gave it; its live allocations and open obligations move to the
/// successor), in one audited transaction with the decision. Refused (409) if already decided or
/// if the predecessor has a successor already; 422 if the successor has closed.
#[utoipa::path(
    tag = "organisations",
    operation_id = "confirm_ods_succession",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Succession id")),
    responses((status = 200, body = OdsSuccession), WriteErrors)
)]
#[post("/ods/successions/{id}/confirm")]
pub async fn confirm_ods_succession(
    state: web::Data<AppState>,
    admin: Authorised<AdminOnly>,
    id: web::Path<i64>,
) -> ApiResult<web::Json<OdsSuccession>> {
    let (id, actor) = (id.into_inner(), admin.actor());
    let decided = state.run(move |db| db::ods_successions::decide(db, &actor, id, true)).await?;
    Ok(web::Json(decided.try_into()?))
}

/// Reject a proposed succession: the predecessor is left as it is (a closed one is then listed
/// under `/v1/ods/closed-without-successor`). Refused (409) if already decided.
#[utoipa::path(
    tag = "organisations",
    operation_id = "reject_ods_succession",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Succession id")),
    responses((status = 200, body = OdsSuccession), WriteErrors)
)]
#[post("/ods/successions/{id}/reject")]
pub async fn reject_ods_succession(
    state: web::Data<AppState>,
    admin: Authorised<AdminOnly>,
    id: web::Path<i64>,
) -> ApiResult<web::Json<OdsSuccession>> {
    let (id, actor) = (id.into_inner(), admin.actor());
    let decided = state.run(move |db| db::ods_successions::decide(db, &actor, id, false)).await?;
    Ok(web::Json(decided.try_into()?))
}

/// Organisations that ODS has closed with no successor recorded and none proposed or confirmed,
/// by code: flagged for a person to look at, never deleted (their codes are never reused). A
/// successor found later is recorded with `POST /v1/organisations/{code}/succession`.
#[utoipa::path(
    tag = "organisations",
    operation_id = "list_closed_without_successor",
    security(("bearer" = [])),
    params(PageQuery),
    responses(
        (status = 200, description = "A page of organisations, or all of them as CSV", content(
            (OrganisationPage = "application/json"),
            (String = "text/csv"),
        )),
        ReadErrors
    )
)]
#[get("/ods/closed-without-successor")]
pub async fn list_closed_without_successor(
    state: web::Data<AppState>,
    _reader: Authorised<AdminOrAuditor>,
    query: web::Query<PageQuery>,
    request: HttpRequest,
) -> ApiResult<HttpResponse> {
    let query = query.into_inner();
    let csv = spreadsheet::wants_csv(&request, query.format);
    let page = page_request(query.limit, query.cursor)?;
    spreadsheet::list(&state, csv, "closed-without-successor", page, move |conn, page| {
        db::ods_successions::closed_without_successor(conn, page)
    })
    .await
}
