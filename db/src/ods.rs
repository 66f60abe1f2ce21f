//! Organisations from the Organisation Data Service (ODS), the source that owns them. An ODS
//! national file is parsed into [`OdsRecord`]s, compared with the catalogue into an
//! [`ImportPlan`] (added, renamed, re-parented, closed, other changes, and codes ODS does not
//! know), and applied as one audited upsert in one transaction: the plan is made again inside
//! that transaction, so what is written is exactly what the plan says.
//!
//! Rules: codes are never deleted or reused (a code missing from the file is reported, never
//! removed; a closed one stays, closed); the exemplar flag, successor and source of a record stay
//! the catalogue's own; a name that differs from ODS only in letter case is kept (ODS publishes
//! upper case, the hand-checked records are in mixed case).
//!
//! The files read, each in the layout ODS publishes (no header row, every field quoted): NHS
//! trusts (`etr.csv`), GP practices and other prescribing cost centres (`epraccur.csv`),
//! integrated care boards, and sub-ICB locations (`eccg.csv`, which kept the name of the clinical
//! commissioning groups they replaced in July 2022) in the 27-field standard layout; and
//! successors (`succ.csv`, 5 fields). A successor file changes no organisation: each succession
//! it lists is proposed to an admin ([`crate::ods_successions`]), because confirming one moves
//! the predecessor's allocations and obligations.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use diesel::prelude::*;
use serde::Serialize;

use crate::audit::{Actor, Audited, Change, now};
use crate::connection::{Database, DbConnection};
use crate::error::{DbError, DbResult};
use crate::ods_successions;
use crate::organisations::{self, Organisation};
use crate::schema::organisations as table;
use crate::vocabulary::{OrganisationKind, is_ods_code};

/// An ODS national file layout this module reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OdsFileKind {
    /// `etr.csv`: NHS trusts in England.
    Etr,
    /// `epraccur.csv`: GP practices and the other prescribing cost centres.
    Epraccur,
    /// Integrated care boards, in the standard layout.
    Icb,
    /// `eccg.csv`: sub-ICB locations (the codes of the former clinical commissioning groups).
    Subicb,
    /// `succ.csv`: successor organisations.
    Succ,
}

impl OdsFileKind {
    pub const ALL: &'static [OdsFileKind] =
        &[OdsFileKind::Etr, OdsFileKind::Epraccur, OdsFileKind::Icb, OdsFileKind::Subicb, OdsFileKind::Succ];

    pub fn as_str(self) -> &'static str {
        match self {
            OdsFileKind::Etr => "etr",
            OdsFileKind::Epraccur => "epraccur",
            OdsFileKind::Icb => "icb",
            OdsFileKind::Subicb => "subicb",
            OdsFileKind::Succ => "succ",
        }
    }

    pub fn parse(text: &str) -> Option<OdsFileKind> {
        OdsFileKind::ALL.iter().copied().find(|kind| kind.as_str().eq_ignore_ascii_case(text.trim()))
    }

    /// The kind of organisation the file lists (a prescribing cost centre that is not a GP
    /// practice is `other`, decided per record). Sub-ICB locations are `other`: ODS calls them
    /// reference data artefacts standing for their ICB, not organisations in their own right, and
    /// they must not become eligible for what an ICB is.
    fn organisation_kind(self) -> Option<OrganisationKind> {
        match self {
            OdsFileKind::Etr => Some(OrganisationKind::Trust),
            OdsFileKind::Epraccur => Some(OrganisationKind::GpPractice),
            OdsFileKind::Icb => Some(OrganisationKind::Icb),
            OdsFileKind::Subicb => Some(OrganisationKind::Other),
            OdsFileKind::Succ => None,
        }
    }

    /// The `source` of an organisation this file adds.
    fn source(self) -> &'static str {
        match self {
            OdsFileKind::Etr => {
                "ODS etr.csv (NHS trusts), Organisation Data Service, NHS England; Open Government Licence v3.0"
            }
            OdsFileKind::Epraccur => {
                "ODS epraccur.csv (GP practices), Organisation Data Service, NHS England; Open Government \
                 Licence v3.0"
            }
            OdsFileKind::Icb => {
                "ODS integrated care boards, Organisation Data Service, NHS England; Open Government Licence v3.0"
            }
            OdsFileKind::Subicb => {
                "ODS eccg.csv (sub-ICB locations), Organisation Data Service, NHS England; Open Government \
                 Licence v3.0"
            }
            OdsFileKind::Succ => {
                "ODS succ.csv (successor organisations), Organisation Data Service, NHS England; Open \
                 Government Licence v3.0"
            }
        }
    }

    /// Fields in every row of the file.
    fn fields(self) -> usize {
        match self {
            OdsFileKind::Succ => SUCC_FIELDS,
            _ => STANDARD_FIELDS,
        }
    }
}

/// The fields of one ODS record that the catalogue keeps.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OdsRecord {
    pub code: String,
    pub name: String,
    /// National grouping: the NHS England region's code (`Y56`).
    pub region_code: Option<String>,
    /// High level health geography: the commissioning ICB or sub-ICB location.
    pub parent_code: Option<String>,
    pub postcode: Option<String>,
    pub opened_on: Option<NaiveDate>,
    pub closed_on: Option<NaiveDate>,
    /// What the catalogue calls it (from the file, and for `epraccur` its prescribing setting).
    pub kind: OrganisationKind,
}

/// One succession of the `succ` file: `predecessor` closed and `successor` took it over.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SuccessionRecord {
    pub predecessor: String,
    pub successor: String,
    /// ODS's reason code: `F` (a code change), `O` (a change of organisation type) or `R` (a
    /// reconfiguration), kept as published.
    pub reason: Option<String>,
    /// The legal start of the succession: the successor holds from this day.
    pub effective_on: NaiveDate,
}

/// Fields in every row of the ODS standard extract layout (etr, epraccur, eccg, ...).
const STANDARD_FIELDS: usize = 27;
/// Fields in every row of `succ.csv`: predecessor, successor, reason, effective date, and an
/// indicator of further succession (which the catalogue does not need: it follows the chain).
const SUCC_FIELDS: usize = 5;
/// `epraccur` field 26, the prescribing setting: 4 is a GP practice (the others are walk-in
/// centres, out-of-hours services, prisons, ...).
const GP_PRACTICE_SETTING: &str = "4";

/// The NHS England regions by their ODS national grouping code (the seven regions of 2020).
pub fn region_name(code: &str) -> Option<&'static str> {
    Some(match code {
        "Y56" => "London",
        "Y58" => "South West",
        "Y59" => "South East",
        "Y60" => "Midlands",
        "Y61" => "East of England",
        "Y62" => "North West",
        "Y63" => "North East and Yorkshire",
        _ => return None,
    })
}

/// An ODS file, read whole.
#[derive(Clone, Debug, PartialEq)]
pub enum OdsFile {
    Organisations(OdsFileKind, Vec<OdsRecord>),
    Successions(Vec<SuccessionRecord>),
}

impl OdsFile {
    pub fn kind(&self) -> OdsFileKind {
        match self {
            OdsFile::Organisations(kind, _) => *kind,
            OdsFile::Successions(_) => OdsFileKind::Succ,
        }
    }
}

/// Reads an ODS file of any kind (see [`parse`] and [`parse_successions`]).
pub fn read(kind: OdsFileKind, bytes: &[u8]) -> DbResult<OdsFile> {
    match kind {
        OdsFileKind::Succ => Ok(OdsFile::Successions(parse_successions(bytes)?)),
        _ => Ok(OdsFile::Organisations(kind, parse(kind, bytes)?)),
    }
}

/// What importing the file would do, writing nothing.
pub fn plan_file(conn: &mut DbConnection, file: &OdsFile) -> DbResult<ImportPlan> {
    match file {
        OdsFile::Organisations(kind, records) => plan(conn, *kind, records),
        OdsFile::Successions(records) => Ok(plan_successions(conn, records)?.0),
    }
}

/// Imports the file in one transaction (see [`apply`] and [`apply_successions`]).
pub fn apply_file(
    db: &Database,
    actor: &Actor,
    file: &OdsFile,
    progress: &mut dyn FnMut(usize, usize),
) -> DbResult<ImportPlan> {
    match file {
        OdsFile::Organisations(kind, records) => apply(db, actor, *kind, records, progress),
        OdsFile::Successions(records) => apply_successions(db, actor, records, progress),
    }
}

/// Reads the rows of an ODS file (no header row, every field quoted, a fixed number of fields to
/// a row), handing each with its line number to `read_row`. The first bad row fails the whole
/// file, naming its line: a partial file is never imported.
fn rows<T>(
    kind: OdsFileKind,
    bytes: &[u8],
    mut read_row: impl FnMut(u64, &Row) -> DbResult<T>,
) -> DbResult<Vec<T>> {
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(bytes);
    let mut lines = Lines::new(bytes);
    let mut out = Vec::new();
    for row in reader.records() {
        let row = row.map_err(|error| {
            invalid(kind, lines.at(error.position()), format!("not readable as CSV ({error})"))
        })?;
        let line = lines.at(row.position());
        if row.len() != kind.fields() {
            return Err(invalid(
                kind,
                line,
                format!("{} fields where the ODS {} layout has {}", row.len(), kind.as_str(), kind.fields()),
            ));
        }
        out.push(read_row(line, &Row(row))?);
    }
    if out.is_empty() {
        return Err(DbError::Invalid(format!("the ODS {} file holds no records", kind.as_str())));
    }
    Ok(out)
}

/// One row of a file.
struct Row(csv::StringRecord);

impl Row {
    /// Field `index` (from 0), trimmed; an empty field is none.
    fn field(&self, index: usize) -> Option<&str> {
        self.0.get(index).map(str::trim).filter(|value| !value.is_empty())
    }
}

/// An error naming the file and line.
fn invalid(kind: OdsFileKind, line: u64, detail: String) -> DbError {
    DbError::Invalid(format!("ODS {} file, line {line}: {detail}", kind.as_str()))
}

/// A field that must hold an ODS code.
fn code_at(kind: OdsFileKind, line: u64, value: Option<&str>) -> DbResult<String> {
    let code = value.unwrap_or_default().to_owned();
    if !is_ods_code(&code) {
        return Err(invalid(
            kind,
            line,
            format!("{code:?} is not an ODS code (3 to 10 upper-case letters and digits)"),
        ));
    }
    Ok(code)
}

/// A date field in ODS's YYYYMMDD form.
fn date_at(
    kind: OdsFileKind,
    line: u64,
    code: &str,
    what: &str,
    value: Option<&str>,
) -> DbResult<Option<NaiveDate>> {
    value
        .map(|text| {
            NaiveDate::parse_from_str(text, "%Y%m%d").map_err(|_| {
                invalid(kind, line, format!("{code}: {what} {text:?} is not a date in YYYYMMDD form"))
            })
        })
        .transpose()
}

/// Parses an ODS file of organisations in the 27-field standard layout: 1 code, 2 name, 3
/// national grouping (the NHS England region), 4 high level health geography (the commissioning
/// ICB), 10 postcode, 11 open date, 12 close date; for `epraccur` also 26, the prescribing
/// setting. An ICB's own parent is not taken: ICBs head the commissioning hierarchy, and their
/// region is their national grouping.
pub fn parse(kind: OdsFileKind, bytes: &[u8]) -> DbResult<Vec<OdsRecord>> {
    let Some(file_kind) = kind.organisation_kind() else {
        return Err(DbError::Invalid(format!("the ODS {} file lists no organisations", kind.as_str())));
    };
    let mut seen = BTreeSet::new();
    rows(kind, bytes, |line, row| {
        let code = code_at(kind, line, row.field(0))?;
        if !seen.insert(code.clone()) {
            return Err(invalid(kind, line, format!("{code} is listed twice")));
        }
        let name = row.field(1).ok_or_else(|| invalid(kind, line, format!("{code} has no name")))?.to_owned();
        let opened_on = date_at(kind, line, &code, "open date", row.field(10))?;
        let closed_on = date_at(kind, line, &code, "close date", row.field(11))?;
        if let (Some(opened), Some(closed)) = (opened_on, closed_on)
            && closed < opened
        {
            return Err(invalid(kind, line, format!("{code} closes ({closed}) before it opens ({opened})")));
        }
        let organisation_kind = match kind {
            OdsFileKind::Epraccur if row.field(25) != Some(GP_PRACTICE_SETTING) => OrganisationKind::Other,
            _ => file_kind,
        };
        Ok(OdsRecord {
            code,
            name,
            region_code: row.field(2).map(str::to_owned),
            parent_code: if kind == OdsFileKind::Icb { None } else { row.field(3).map(str::to_owned) },
            postcode: row.field(9).map(str::to_owned),
            opened_on,
            closed_on,
            kind: organisation_kind,
        })
    })
}

/// Parses `succ.csv`: 1 predecessor, 2 successor, 3 reason, 4 effective date, 5 indicator. A
/// predecessor may be listed more than once (split between successors), a pair only once.
pub fn parse_successions(bytes: &[u8]) -> DbResult<Vec<SuccessionRecord>> {
    let kind = OdsFileKind::Succ;
    let mut seen = BTreeSet::new();
    rows(kind, bytes, |line, row| {
        let predecessor = code_at(kind, line, row.field(0))?;
        let successor = code_at(kind, line, row.field(1))?;
        if predecessor == successor {
            return Err(invalid(kind, line, format!("{predecessor} succeeds itself")));
        }
        if !seen.insert((predecessor.clone(), successor.clone())) {
            return Err(invalid(kind, line, format!("{predecessor} -> {successor} is listed twice")));
        }
        let reason = row.field(2).map(str::to_owned);
        if reason.as_ref().is_some_and(|r| r.len() > 3) {
            return Err(invalid(kind, line, format!("{predecessor}: {reason:?} is not an ODS reason code")));
        }
        let effective_on =
            date_at(kind, line, &predecessor, "effective date", row.field(3))?.ok_or_else(|| {
                invalid(kind, line, format!("{predecessor} -> {successor} has no effective date"))
            })?;
        Ok(SuccessionRecord { predecessor, successor, reason, effective_on })
    })
}

/// The line a record starts on, counted from its byte offset (the csv crate's own line count
/// runs behind on files with CRLF line ends, as ODS publishes them: measured, record 3 of
/// `a CRLF b CRLF c` is on its line 2). Records come in order, so each count goes on from the
/// last one: counting from the start of the file for every record made reading the national GP
/// file (7,600 records, 2 MB) take 2.7 s of its 2.9 s.
struct Lines<'a> {
    bytes: &'a [u8],
    /// Where the last count stopped, and the line there.
    offset: usize,
    line: u64,
}

impl<'a> Lines<'a> {
    fn new(bytes: &'a [u8]) -> Lines<'a> {
        Lines { bytes, offset: 0, line: 1 }
    }

    fn at(&mut self, position: Option<&csv::Position>) -> u64 {
        let bytes = self.bytes;
        let mut offset = position.map_or(0, |p| p.byte() as usize).min(bytes.len());
        // After a CR the csv crate starts the next record at the LF that ends the line.
        while offset < bytes.len() && matches!(bytes[offset], b'\r' | b'\n') {
            offset += 1;
        }
        if offset < self.offset {
            // Not expected (records come in order), but then counted afresh rather than wrong.
            (self.offset, self.line) = (0, 1);
        }
        self.line += bytes[self.offset..offset].iter().filter(|&&b| b == b'\n').count() as u64;
        self.offset = offset;
        self.line
    }
}

/// A field that changes on an organisation the catalogue already knows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    pub code: String,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// An organisation the import adds (a closed one too: its code is then known, never reused).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Addition {
    pub code: String,
    pub name: String,
    pub closed_on: Option<NaiveDate>,
}

/// An open organisation that ODS has closed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Closure {
    pub code: String,
    pub name: String,
    pub closed_on: NaiveDate,
}

/// Other ODS fields that change on an organisation the catalogue already knows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Update {
    pub code: String,
    /// The names of the fields that change (`postcode`, `ods_file`, ...).
    pub fields: Vec<&'static str>,
}

/// What an import does, or would do on a dry run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ImportPlan {
    pub file: Option<OdsFileKind>,
    /// Records in the file.
    pub records: usize,
    /// Records in the file without a close date.
    pub open_records: usize,
    pub added: Vec<Addition>,
    pub renamed: Vec<FieldChange>,
    pub reparented: Vec<FieldChange>,
    pub closed: Vec<Closure>,
    /// Codes whose other ODS fields change (region, postcode, open date, close date of a closed
    /// one), or that ODS takes over from the hand-kept record.
    pub updated: Vec<Update>,
    /// Closed in the catalogue (by a recorded succession) but open in ODS: left closed, for a
    /// person to look at.
    pub closed_here_open_in_ods: Vec<String>,
    /// Codes the catalogue knows, of the file's kind or from an earlier import of it, that the
    /// file does not list: reported, never removed.
    pub unknown_to_ods: Vec<String>,
    /// Records that change nothing.
    pub unchanged: usize,
    /// Successions (from `succ`) proposed to an admin by this import.
    pub succeeded: Vec<Succeeded>,
    /// Successions whose successor the catalogue does not know (import its file first): not
    /// proposed.
    pub successor_unknown: Vec<Succeeded>,
    /// Successions whose predecessor the catalogue does not know: nothing to succeed.
    pub predecessor_unknown: usize,
}

/// A succession of the `succ` file, as the plan reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Succeeded {
    pub predecessor: String,
    pub successor: String,
    pub effective_on: NaiveDate,
    pub reason: Option<String>,
}

impl Succeeded {
    fn of(record: &SuccessionRecord) -> Succeeded {
        Succeeded {
            predecessor: record.predecessor.clone(),
            successor: record.successor.clone(),
            effective_on: record.effective_on,
            reason: record.reason.clone(),
        }
    }
}

impl ImportPlan {
    /// Whether applying the plan writes anything.
    pub fn changes_anything(&self) -> bool {
        !self.added.is_empty()
            || !self.renamed.is_empty()
            || !self.reparented.is_empty()
            || !self.closed.is_empty()
            || !self.updated.is_empty()
            || !self.succeeded.is_empty()
    }
}

/// What the catalogue will hold for one ODS-owned organisation after the import.
#[derive(Clone, Debug, PartialEq)]
struct Target {
    name: String,
    region: Option<String>,
    region_code: Option<String>,
    parent_code: Option<String>,
    postcode: Option<String>,
    opened_on: Option<NaiveDate>,
    closed_on: Option<NaiveDate>,
    ods_file: String,
}

impl Target {
    /// The fields that differ from `other`, by name.
    fn differences(&self, other: &Target) -> Vec<&'static str> {
        [
            ("name", self.name != other.name),
            ("region", self.region != other.region),
            ("region_code", self.region_code != other.region_code),
            ("parent_code", self.parent_code != other.parent_code),
            ("postcode", self.postcode != other.postcode),
            ("opened_on", self.opened_on != other.opened_on),
            ("closed_on", self.closed_on != other.closed_on),
            ("ods_file", self.ods_file != other.ods_file),
        ]
        .into_iter()
        .filter_map(|(field, differs)| differs.then_some(field))
        .collect()
    }

    fn of(existing: &Organisation) -> Target {
        Target {
            name: existing.name.clone(),
            region: existing.region.clone(),
            region_code: existing.region_code.clone(),
            parent_code: existing.parent_code.clone(),
            postcode: existing.postcode.clone(),
            opened_on: existing.opened_on,
            closed_on: existing.closed_on,
            ods_file: existing.ods_file.clone().unwrap_or_default(),
        }
    }

    fn from_record(kind: OdsFileKind, record: &OdsRecord, existing: Option<&Organisation>) -> Target {
        let name = match existing {
            Some(known) if known.name.eq_ignore_ascii_case(&record.name) => known.name.clone(),
            _ => record.name.clone(),
        };
        // A succession recorded here closes an organisation; ODS not (yet) closing it does not
        // reopen it (the successor's allocations moved already).
        let closed_on = match (record.closed_on, existing.and_then(|known| known.closed_on)) {
            (Some(closed), _) => Some(closed),
            (None, kept) => kept,
        };
        Target {
            name,
            region: record.region_code.as_deref().and_then(region_name).map(str::to_owned),
            region_code: record.region_code.clone(),
            parent_code: record.parent_code.clone(),
            postcode: record.postcode.clone(),
            opened_on: record.opened_on,
            closed_on,
            ods_file: kind.as_str().to_owned(),
        }
    }
}

/// One write the plan calls for.
enum Step {
    Insert(Target, OrganisationKind),
    Update { before: Box<Organisation>, target: Target },
}

fn make_plan(
    conn: &mut DbConnection,
    kind: OdsFileKind,
    records: &[OdsRecord],
) -> DbResult<(ImportPlan, Vec<(String, Step)>)> {
    let known: BTreeMap<String, Organisation> =
        organisations::all(conn)?.into_iter().map(|o| (o.code.clone(), o)).collect();
    let mut plan = ImportPlan {
        file: Some(kind),
        records: records.len(),
        open_records: records.iter().filter(|r| r.closed_on.is_none()).count(),
        ..ImportPlan::default()
    };
    let mut steps = Vec::new();
    for record in records {
        let existing = known.get(&record.code);
        let target = Target::from_record(kind, record, existing);
        let Some(existing) = existing else {
            plan.added.push(Addition {
                code: record.code.clone(),
                name: target.name.clone(),
                closed_on: target.closed_on,
            });
            steps.push((record.code.clone(), Step::Insert(target, record.kind)));
            continue;
        };
        let before = Target::of(existing);
        if before == target {
            plan.unchanged += 1;
            continue;
        }
        let code = &record.code;
        // What is left once the renaming, re-parenting and closing are accounted for.
        let mut rest = before.clone();
        if before.name != target.name {
            plan.renamed.push(FieldChange {
                code: code.clone(),
                from: Some(before.name.clone()),
                to: Some(target.name.clone()),
            });
            rest.name = target.name.clone();
        }
        if before.parent_code != target.parent_code {
            plan.reparented.push(FieldChange {
                code: code.clone(),
                from: before.parent_code.clone(),
                to: target.parent_code.clone(),
            });
            rest.parent_code = target.parent_code.clone();
        }
        if let (None, Some(closed_on)) = (before.closed_on, target.closed_on) {
            plan.closed.push(Closure { code: code.clone(), name: target.name.clone(), closed_on });
            rest.closed_on = target.closed_on;
        }
        if before.closed_on.is_some() && record.closed_on.is_none() {
            plan.closed_here_open_in_ods.push(code.clone());
        }
        if rest != target {
            plan.updated.push(Update { code: code.clone(), fields: rest.differences(&target) });
        }
        steps.push((code.clone(), Step::Update { before: Box::new(existing.clone()), target }));
    }
    let listed: BTreeSet<&str> = records.iter().map(|r| r.code.as_str()).collect();
    // Those the file owns, and those kept by hand of the file's kind (sub-ICB locations are
    // `other`, a kind many hand-kept records have: only those the file owns count for it).
    let hand_kept_kind = kind.organisation_kind().filter(|k| *k != OrganisationKind::Other);
    plan.unknown_to_ods = known
        .values()
        .filter(|o| {
            o.ods_file.as_deref() == Some(kind.as_str())
                || (o.ods_file.is_none() && Some(o.kind) == hand_kept_kind)
        })
        .filter(|o| !listed.contains(o.code.as_str()))
        .map(|o| o.code.clone())
        .collect();
    Ok((plan, steps))
}

/// What importing `records` would do, writing nothing.
pub fn plan(conn: &mut DbConnection, kind: OdsFileKind, records: &[OdsRecord]) -> DbResult<ImportPlan> {
    Ok(make_plan(conn, kind, records)?.0)
}

/// Imports `records` in one transaction: every change is audited (`organisation.ods_import`,
/// before and after), with one `ods.import` event that sums the plan. Reports progress as
/// (writes done, writes due).
pub fn apply(
    db: &Database,
    actor: &Actor,
    kind: OdsFileKind,
    records: &[OdsRecord],
    progress: &mut dyn FnMut(usize, usize),
) -> DbResult<ImportPlan> {
    db.write(actor, |conn| {
        let (plan, steps) = make_plan(conn, kind, records)?;
        if steps.is_empty() {
            return Ok(Audited::unchanged(plan));
        }
        let mut changes = Vec::with_capacity(steps.len() + 1);
        let total = steps.len();
        for (done, (code, step)) in steps.into_iter().enumerate() {
            let before = match step {
                Step::Insert(target, organisation_kind) => {
                    insert(conn, kind, organisation_kind, &code, &target)?;
                    None
                }
                Step::Update { before, target } => {
                    update(conn, &code, &target)?;
                    Some(before)
                }
            };
            let after = organisations::get(conn, &code)?;
            let mut change = Change::new("organisation.ods_import", "organisation", &code)
                .organisation(Some(&code))
                .after(&after);
            if let Some(before) = before {
                change = change.before(&before);
            }
            changes.push(change);
            progress(done + 1, total);
        }
        changes.push(Change::new("ods.import", "ods_import", kind.as_str()).after(&summary(&plan)));
        Ok(Audited::many(plan, changes))
    })
}

/// What importing a successor file would do: each succession whose predecessor and successor
/// the catalogue knows, and that is neither proposed already (whatever was decided) nor recorded
/// (the predecessor has a successor), is proposed.
fn plan_successions(
    conn: &mut DbConnection,
    records: &[SuccessionRecord],
) -> DbResult<(ImportPlan, Vec<SuccessionRecord>)> {
    let known: BTreeMap<String, Organisation> =
        organisations::all(conn)?.into_iter().map(|o| (o.code.clone(), o)).collect();
    let proposed: BTreeSet<(String, String)> = ods_successions::proposed_pairs(conn)?.into_iter().collect();
    let mut plan =
        ImportPlan { file: Some(OdsFileKind::Succ), records: records.len(), ..ImportPlan::default() };
    let mut due = Vec::new();
    for record in records {
        let Some(predecessor) = known.get(&record.predecessor) else {
            plan.predecessor_unknown += 1;
            continue;
        };
        let pair = (record.predecessor.clone(), record.successor.clone());
        if predecessor.successor_code.is_some() || proposed.contains(&pair) {
            plan.unchanged += 1;
        } else if !known.contains_key(&record.successor) {
            plan.successor_unknown.push(Succeeded::of(record));
        } else {
            plan.succeeded.push(Succeeded::of(record));
            due.push(record.clone());
        }
    }
    Ok((plan, due))
}

/// Imports a successor file in one transaction: each succession planned is proposed
/// (`ods_succession.propose`, for an admin to confirm or reject), with one `ods.import` event
/// that sums the plan. No organisation changes.
pub fn apply_successions(
    db: &Database,
    actor: &Actor,
    records: &[SuccessionRecord],
    progress: &mut dyn FnMut(usize, usize),
) -> DbResult<ImportPlan> {
    db.write(actor, |conn| {
        let (plan, due) = plan_successions(conn, records)?;
        if due.is_empty() {
            return Ok(Audited::unchanged(plan));
        }
        let mut changes = Vec::with_capacity(due.len() + 1);
        for (done, record) in due.iter().enumerate() {
            let proposal = ods_successions::propose(
                conn,
                &record.predecessor,
                &record.successor,
                record.reason.as_deref(),
                record.effective_on,
            )?;
            changes.push(
                Change::new("ods_succession.propose", "ods_succession", proposal.id)
                    .organisation(Some(&record.predecessor))
                    .after(&proposal),
            );
            progress(done + 1, due.len());
        }
        changes
            .push(Change::new("ods.import", "ods_import", OdsFileKind::Succ.as_str()).after(&summary(&plan)));
        Ok(Audited::many(plan, changes))
    })
}

/// The counts of a plan, for the audit log (the per-organisation events hold the detail).
fn summary(plan: &ImportPlan) -> serde_json::Value {
    serde_json::json!({
        "file": plan.file,
        "records": plan.records,
        "open_records": plan.open_records,
        "added": plan.added.len(),
        "renamed": plan.renamed.len(),
        "reparented": plan.reparented.len(),
        "closed": plan.closed.len(),
        "updated": plan.updated.len(),
        "closed_here_open_in_ods": plan.closed_here_open_in_ods,
        "unknown_to_ods": plan.unknown_to_ods,
        "unchanged": plan.unchanged,
        "succeeded": plan.succeeded.len(),
        "successor_unknown": plan.successor_unknown.len(),
        "predecessor_unknown": plan.predecessor_unknown,
    })
}

fn insert(
    conn: &mut DbConnection,
    kind: OdsFileKind,
    organisation_kind: OrganisationKind,
    code: &str,
    target: &Target,
) -> DbResult<()> {
    let stamp = now();
    diesel::insert_into(table::table)
        .values((
            table::code.eq(code),
            table::name.eq(&target.name),
            table::kind.eq(organisation_kind),
            table::region.eq(&target.region),
            table::region_code.eq(&target.region_code),
            table::parent_code.eq(&target.parent_code),
            table::postcode.eq(&target.postcode),
            table::opened_on.eq(target.opened_on),
            table::closed_on.eq(target.closed_on),
            table::ods_file.eq(&target.ods_file),
            table::exemplar.eq(false),
            table::source.eq(kind.source()),
            table::created_at.eq(stamp),
            table::updated_at.eq(stamp),
        ))
        .execute(conn)?;
    Ok(())
}

fn update(conn: &mut DbConnection, code: &str, target: &Target) -> DbResult<()> {
    diesel::update(table::table.find(code))
        .set((
            table::name.eq(&target.name),
            table::region.eq(&target.region),
            table::region_code.eq(&target.region_code),
            table::parent_code.eq(&target.parent_code),
            table::postcode.eq(&target.postcode),
            table::opened_on.eq(target.opened_on),
            table::closed_on.eq(target.closed_on),
            table::ods_file.eq(&target.ods_file),
            table::revision.eq(table::revision + 1),
            table::updated_at.eq(now()),
        ))
        .execute(conn)?;
    Ok(())
}

/// For the shipped seeds: adds every open organisation of the file that the catalogue does not
/// hold, and lets ODS take over the hand-checked records it lists, filling in their region code,
/// parent, postcode and open date while keeping their names, regions, exemplar flags and closure
/// as they were checked. Returns how many organisations it added; a repeat adds and changes
/// nothing.
pub(crate) fn seed(conn: &mut DbConnection, kind: OdsFileKind, records: &[OdsRecord]) -> DbResult<usize> {
    let known: BTreeMap<String, Organisation> =
        organisations::all(conn)?.into_iter().map(|o| (o.code.clone(), o)).collect();
    let mut added = 0;
    for record in records {
        match known.get(&record.code) {
            None if record.closed_on.is_none() => {
                insert(conn, kind, record.kind, &record.code, &Target::from_record(kind, record, None))?;
                added += 1;
            }
            None => {}
            Some(existing) if existing.ods_file.is_none() => {
                diesel::update(table::table.find(&record.code))
                    .set((
                        table::region_code.eq(&record.region_code),
                        table::parent_code.eq(&record.parent_code),
                        table::postcode.eq(&record.postcode),
                        table::opened_on.eq(record.opened_on),
                        table::ods_file.eq(kind.as_str()),
                    ))
                    .execute(conn)?;
            }
            Some(_) => {}
        }
    }
    Ok(added)
}
