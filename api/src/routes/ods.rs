//! ODS imports over HTTP, for admins: the import `catalogue ods import` does (`db::ods`), with the
//! file as a `text/csv` body. The body is read here with its own limit (an ODS national file is
//! larger than the 256 KiB every JSON body may be: etr.csv is 57 KB, the GP practices' file
//! several MB), parsed and applied off the event loop.

use actix_web::http::header;
use actix_web::{HttpRequest, post, web};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Authorised;
use crate::auth::extractors::AdminOnly;
use crate::error::{ApiError, ApiResult};
use crate::openapi::CsvWriteErrors;
use crate::state::AppState;

/// An ODS file larger than this is refused with 413 before it is all read.
pub const MAX_ODS_FILE_BYTES: usize = 32 * 1024 * 1024;

/// The ODS national files the catalogue reads.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OdsFile {
    /// `etr.csv`: NHS trusts in England.
    #[default]
    Etr,
}

impl From<OdsFile> for db::ods::OdsFileKind {
    fn from(file: OdsFile) -> Self {
        match file {
            OdsFile::Etr => db::ods::OdsFileKind::Etr,
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
        }
    }
}

/// An ODS file as bytes (`application/octet-stream`): the same file, for generated clients that
/// send files as binary and know no `text/csv`.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)] // Only its schema is used: the handler reads the body as bytes whatever its type.
pub struct OdsFileBytes(Vec<u8>);

/// The body, if it is declared `text/csv` (or `application/octet-stream`) and within the limit.
async fn csv_body(request: &HttpRequest, mut payload: web::Payload) -> ApiResult<Vec<u8>> {
    let declared = request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let essence = declared.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("text/csv") && !essence.eq_ignore_ascii_case("application/octet-stream")
    {
        return Err(ApiError::UnsupportedMediaType(
            "the body must be the ODS file itself, sent as text/csv (or application/octet-stream)".into(),
        ));
    }
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::BadRequest(format!("the body could not be read: {e}")))?;
        if body.len() + chunk.len() > MAX_ODS_FILE_BYTES {
            return Err(ApiError::PayloadTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Import an ODS national file (the body, as `text/csv`, in its published layout: no header row,
/// every field quoted). Organisations are added, renamed, re-parented and closed in one audited
/// transaction; codes the catalogue knows but the file does not are reported, never removed. A
/// file that cannot be read is refused whole (422, naming the line), and with `dry_run=true`
/// nothing is written.
#[utoipa::path(
    tag = "organisations",
    operation_id = "create_ods_import",
    security(("bearer" = [])),
    params(OdsImportQuery),
    request_body(
        description = "The ODS file, as published: as text/csv, or as application/octet-stream for clients that send files as bytes",
        content((String = "text/csv"), (OdsFileBytes = "application/octet-stream"))
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
            let kind = file.into();
            let records = db::ods::parse(kind, &body)?;
            if dry_run {
                db.read(|conn| db::ods::plan(conn, kind, &records))
            } else {
                db::ods::apply(db, &actor, kind, &records, &mut |_, _| {})
            }
        })
        .await?;
    Ok(web::Json(OdsImportReport::new(file, dry_run, plan)))
}
