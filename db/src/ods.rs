//! Organisations from the Organisation Data Service (ODS), the source that owns them. An ODS
//! national file is parsed into [`OdsRecord`]s, compared with the catalogue into an
//! [`ImportPlan`] (added, renamed, re-parented, closed, other changes, and codes ODS does not
//! know), and applied as one audited upsert in one transaction: the plan is made again inside
//! that transaction, so what is written is exactly what the plan says.
//!
//! Rules: codes are never deleted or reused (a code missing from the file is reported, never
//! removed; a closed one stays, closed); the exemplar flag, successor and source of a record stay
//! the catalogue's own; a name that differs from ODS only in letter case is kept (ODS publishes
//! upper case, the hand-checked records are in mixed case). Only the trusts file (`etr`) is read
//! so far; GP practices (`epraccur`), ICBs and successors (`succ`) are not.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use diesel::prelude::*;
use serde::Serialize;

use crate::audit::{Actor, Audited, Change, now};
use crate::connection::{Database, DbConnection};
use crate::error::{DbError, DbResult};
use crate::organisations::{self, Organisation};
use crate::schema::organisations as table;
use crate::vocabulary::{OrganisationKind, is_ods_code};

/// An ODS national file layout this module reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OdsFileKind {
    /// `etr.csv`: NHS trusts in England.
    Etr,
}

impl OdsFileKind {
    pub const ALL: &'static [OdsFileKind] = &[OdsFileKind::Etr];

    pub fn as_str(self) -> &'static str {
        match self {
            OdsFileKind::Etr => "etr",
        }
    }

    pub fn parse(text: &str) -> Option<OdsFileKind> {
        OdsFileKind::ALL.iter().copied().find(|kind| kind.as_str().eq_ignore_ascii_case(text.trim()))
    }

    /// The kind of every organisation the file lists.
    fn organisation_kind(self) -> OrganisationKind {
        match self {
            OdsFileKind::Etr => OrganisationKind::Trust,
        }
    }

    /// The `source` of an organisation this file adds.
    fn source(self) -> &'static str {
        match self {
            OdsFileKind::Etr => {
                "ODS etr.csv (NHS trusts), Organisation Data Service, NHS England; Open Government Licence v3.0"
            }
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
}

/// Fields in every row of the ODS standard extract layout (etr, ets, ...).
const STANDARD_FIELDS: usize = 27;

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

/// Parses an ODS file (no header row, every field quoted, 27 fields to a row). The first bad row
/// fails the whole file, naming its line: a partial file is never imported.
pub fn parse(kind: OdsFileKind, bytes: &[u8]) -> DbResult<Vec<OdsRecord>> {
    let invalid = |line: u64, detail: String| {
        DbError::Invalid(format!("ODS {} file, line {line}: {detail}", kind.as_str()))
    };
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(bytes);
    let mut records = Vec::new();
    let mut seen = BTreeSet::new();
    for row in reader.records() {
        let row = row.map_err(|error| {
            invalid(line_at(bytes, error.position()), format!("not readable as CSV ({error})"))
        })?;
        let line = line_at(bytes, row.position());
        if row.len() != STANDARD_FIELDS {
            return Err(invalid(
                line,
                format!("{} fields where the ODS {} layout has {STANDARD_FIELDS}", row.len(), kind.as_str()),
            ));
        }
        let field = |index: usize| row.get(index).map(str::trim).filter(|value| !value.is_empty());
        let code = field(0).unwrap_or_default().to_owned();
        if !is_ods_code(&code) {
            return Err(invalid(
                line,
                format!("{code:?} is not an ODS code (3 to 10 upper-case letters and digits)"),
            ));
        }
        if !seen.insert(code.clone()) {
            return Err(invalid(line, format!("{code} is listed twice")));
        }
        let name = field(1).ok_or_else(|| invalid(line, format!("{code} has no name")))?.to_owned();
        let date = |index: usize, what: &str| -> DbResult<Option<NaiveDate>> {
            field(index)
                .map(|text| {
                    NaiveDate::parse_from_str(text, "%Y%m%d").map_err(|_| {
                        invalid(line, format!("{code}: {what} {text:?} is not a date in YYYYMMDD form"))
                    })
                })
                .transpose()
        };
        let opened_on = date(10, "open date")?;
        let closed_on = date(11, "close date")?;
        if let (Some(opened), Some(closed)) = (opened_on, closed_on)
            && closed < opened
        {
            return Err(invalid(line, format!("{code} closes ({closed}) before it opens ({opened})")));
        }
        records.push(OdsRecord {
            code,
            name,
            region_code: field(2).map(str::to_owned),
            parent_code: field(3).map(str::to_owned),
            postcode: field(9).map(str::to_owned),
            opened_on,
            closed_on,
        });
    }
    if records.is_empty() {
        return Err(DbError::Invalid(format!("the ODS {} file holds no records", kind.as_str())));
    }
    Ok(records)
}

/// The line a record starts on, counted from its byte offset (the csv crate's own line count
/// runs behind on files with CRLF line ends, as ODS publishes them: measured, record 3 of
/// `a CRLF b CRLF c` is on its line 2).
fn line_at(bytes: &[u8], position: Option<&csv::Position>) -> u64 {
    let mut offset = position.map_or(0, |p| p.byte() as usize).min(bytes.len());
    // After a CR the csv crate starts the next record at the LF that ends the line.
    while offset < bytes.len() && matches!(bytes[offset], b'\r' | b'\n') {
        offset += 1;
    }
    1 + bytes[..offset].iter().filter(|&&b| b == b'\n').count() as u64
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
}

impl ImportPlan {
    /// Whether applying the plan writes anything.
    pub fn changes_anything(&self) -> bool {
        !self.added.is_empty()
            || !self.renamed.is_empty()
            || !self.reparented.is_empty()
            || !self.closed.is_empty()
            || !self.updated.is_empty()
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
    Insert(Target),
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
            steps.push((record.code.clone(), Step::Insert(target)));
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
    plan.unknown_to_ods = known
        .values()
        .filter(|o| o.ods_file.as_deref() == Some(kind.as_str()) || o.kind == kind.organisation_kind())
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
                Step::Insert(target) => {
                    insert(conn, kind, &code, &target)?;
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
    })
}

fn insert(conn: &mut DbConnection, kind: OdsFileKind, code: &str, target: &Target) -> DbResult<()> {
    let stamp = now();
    diesel::insert_into(table::table)
        .values((
            table::code.eq(code),
            table::name.eq(&target.name),
            table::kind.eq(kind.organisation_kind().as_str()),
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
                insert(conn, kind, &record.code, &Target::from_record(kind, record, None))?;
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
