//! Agreements published in the Open Contracting Data Standard (OCDS) 1.1: one release per
//! agreement, in a release package. The mapping is the API's (a wire format, like the JSON the
//! other routes serve); the data comes from `db::agreements` unchanged.
//!
//! The choices the standard leaves to a publisher, and why:
//! - `ocid` is the catalogue's prefix, `-`, and the agreement's reference. The prefix comes from
//!   `--ocid-prefix` / `CATALOGUE_OCID_PREFIX`; the default `ocds-xxxxxx` is a placeholder: a
//!   publisher registers its own prefix with the OCDS Helpdesk before publishing for real.
//! - One release per agreement, tagged `contract`, `initiationType` `tender` (the only value 1.1
//!   allows). Its `id` is the reference and the record's revision, so every change is a new id;
//!   its `date` is when the agreement last changed.
//! - The buyer is the agreement's recorded contracting authority (NHS Digital, the Crown
//!   Commercial Service...), identified by the catalogue (`catalogue-buyer-` and its name in
//!   lower case), as no organisation identifier scheme is recorded for them; an agreement whose
//!   buyer is not recorded names NHS England, the catalogue's publisher. The supplier (the licensor) and the reseller (whom the call-off is awarded to) are both
//!   `supplier` parties of the award.
//! - A day ends before the next day's midnight: an agreement ending 2026-03-31 has the
//!   `endDate` `2026-04-01T00:00:00Z`. `maxExtentDate` is the end of the initial term plus every
//!   extension option not declined.
//! - Values are in major units as JSON numbers (`774500000` for GBP 774.5m), from the integer
//!   minor units the catalogue holds.
//! - A record (`/v1/agreements/{id}/ocds/record`) holds the agreement's one current release,
//!   embedded, and a compiled release equal to it (tagged `compiled`): the catalogue keeps the
//!   agreement's history in its audit log, not as earlier OCDS releases, so there is nothing
//!   older to merge.

use chrono::{Months, NaiveDate, NaiveDateTime, NaiveTime};
use db::agreements::Agreement;
use db::vocabulary::{AgreementStatus, ExtensionDecision};
use serde::Serialize;
use utoipa::ToSchema;

/// The placeholder prefix: to be replaced by the prefix the OCDS Helpdesk registers.
pub const DEFAULT_OCID_PREFIX: &str = "ocds-xxxxxx";
pub const PUBLISHER: &str = "NHS England";
const BUYER_ID: &str = "GB-NHS-ENGLAND";

/// Whether `prefix` has the form of an OCID prefix: `ocds-` and six lower-case letters or digits.
pub fn valid_prefix(prefix: &str) -> bool {
    prefix.strip_prefix("ocds-").is_some_and(|rest| {
        rest.len() == 6 && rest.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    })
}

/// An OCDS 1.1 release package.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OcdsReleasePackage {
    /// Where this package is served.
    #[schema(format = "uri")]
    pub uri: String,
    /// `1.1`.
    #[schema(example = "1.1")]
    pub version: String,
    /// When the newest agreement in it last changed.
    pub published_date: String,
    pub publisher: OcdsPublisher,
    #[schema(min_items = 1)]
    pub releases: Vec<OcdsRelease>,
}

#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct OcdsPublisher {
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OcdsRelease {
    /// The prefix, `-`, and the agreement's reference.
    #[schema(example = "ocds-xxxxxx-NHSE-MS-2023-RM6068")]
    pub ocid: String,
    pub id: String,
    pub date: String,
    /// `["contract"]`.
    pub tag: Vec<String>,
    /// `tender`.
    pub initiation_type: String,
    pub parties: Vec<OcdsParty>,
    pub buyer: OcdsPartyReference,
    pub awards: Vec<OcdsAward>,
    pub contracts: Vec<OcdsContract>,
    /// The framework it is called off from, when there is one.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub related_processes: Vec<OcdsRelatedProcess>,
}

#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct OcdsParty {
    pub id: String,
    pub name: String,
    /// From the partyRole codelist: `buyer`, `supplier`.
    pub roles: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct OcdsPartyReference {
    pub id: String,
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct OcdsValue {
    /// In the currency's major units.
    pub amount: f64,
    /// ISO 4217.
    pub currency: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OcdsPeriod {
    pub start_date: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_date: Option<String>,
    /// The end of the initial term and every extension option not declined.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_extent_date: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OcdsAward {
    pub id: String,
    pub title: String,
    /// From the awardStatus codelist: `pending` for a draft agreement, `active` otherwise.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<OcdsValue>,
    pub suppliers: Vec<OcdsPartyReference>,
    pub contract_period: OcdsPeriod,
}

#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OcdsContract {
    pub id: String,
    #[serde(rename = "awardID")]
    pub award_id: String,
    pub title: String,
    /// From the contractStatus codelist: draft `pending`, active `active`, expired and terminated
    /// `terminated` (the codelist's word for a contract that has come to a close).
    pub status: String,
    pub period: OcdsPeriod,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<OcdsValue>,
    /// Its published notices, when there are any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub documents: Vec<OcdsDocument>,
}

#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct OcdsDocument {
    pub id: String,
    pub title: String,
    #[schema(format = "uri")]
    pub url: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct OcdsRelatedProcess {
    pub id: String,
    /// `["framework"]`.
    pub relationship: Vec<String>,
    pub title: String,
    pub identifier: String,
}

/// An instant in OCDS's form: `2023-06-01T00:00:00Z`.
fn instant(at: NaiveDateTime) -> String {
    at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn start_of(day: NaiveDate) -> String {
    instant(day.and_time(NaiveTime::MIN))
}

/// The instant a day ends: the next day's midnight.
fn end_of(day: NaiveDate) -> String {
    start_of(day.succ_opt().unwrap_or(day))
}

fn value(agreement: &Agreement) -> Option<OcdsValue> {
    let minor = agreement.value_minor?;
    let (major, rest) = db::agreements::major_units(minor, &agreement.currency);
    let scale = 10_f64.powi(db::agreements::minor_unit_digits(&agreement.currency) as i32);
    // At most 10^14 minor units: exact in an f64 (below 2^53).
    Some(OcdsValue { amount: major as f64 + rest as f64 / scale, currency: agreement.currency.clone() })
}

fn period(agreement: &Agreement) -> OcdsPeriod {
    let initial_end = agreement
        .initial_term_months
        .and_then(|m| agreement.starts_on.checked_add_months(Months::new(u32::try_from(m).ok()?)));
    let extensions: u32 = agreement
        .extension_options
        .iter()
        .filter(|o| o.decision != Some(ExtensionDecision::Declined))
        .filter_map(|o| u32::try_from(o.months).ok())
        .sum();
    let max_extent = initial_end
        .filter(|_| !agreement.extension_options.is_empty())
        .and_then(|end| end.checked_add_months(Months::new(extensions)));
    OcdsPeriod {
        start_date: start_of(agreement.starts_on),
        end_date: agreement.ends_on.map(end_of),
        // The initial term's end is already the next day's midnight (starts_on plus the months).
        max_extent_date: max_extent.map(start_of),
    }
}

/// A notice address as a URI (RFC 3986), as OCDS's `format: uri` requires: the catalogue takes
/// any http(s) address without white space, so characters a URI cannot hold (non-ASCII letters,
/// quotes, braces, a second `#`, a `%` that starts no escape) are percent-encoded as UTF-8. An
/// address that is a URI already is unchanged.
fn as_uri(address: &str) -> String {
    const KEPT: &[u8] = b"-._~:/?#@!$&'()*+,;=";
    let bytes = address.as_bytes();
    let mut out = String::with_capacity(address.len());
    let mut fragment = false;
    for (i, &byte) in bytes.iter().enumerate() {
        let escape = byte == b'%'
            && bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
            && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
        let kept =
            (byte.is_ascii_alphanumeric() || KEPT.contains(&byte) || escape) && !(byte == b'#' && fragment);
        fragment |= byte == b'#';
        if kept {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The buyer's party: the recorded buyer, or the publisher when none is recorded.
fn buyer_party(agreement: &Agreement) -> OcdsPartyReference {
    match agreement.buyer.as_deref() {
        Some(name) if name != PUBLISHER => {
            let slug: String = name
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
                .collect();
            let slug = slug.split('-').filter(|part| !part.is_empty()).collect::<Vec<_>>().join("-");
            OcdsPartyReference { id: format!("catalogue-buyer-{slug}"), name: name.to_owned() }
        }
        _ => OcdsPartyReference { id: BUYER_ID.into(), name: PUBLISHER.into() },
    }
}

fn supplier_party_id(supplier_id: i64) -> String {
    format!("catalogue-supplier-{supplier_id}")
}

/// The release of one agreement.
pub fn release(agreement: &Agreement, ocid_prefix: &str) -> OcdsRelease {
    let reference = &agreement.reference;
    let buyer = buyer_party(agreement);
    let mut parties =
        vec![OcdsParty { id: buyer.id.clone(), name: buyer.name.clone(), roles: vec!["buyer".into()] }];
    let mut suppliers = vec![OcdsPartyReference {
        id: supplier_party_id(agreement.supplier_id),
        name: agreement.supplier.clone(),
    }];
    if let (Some(id), Some(name)) = (agreement.reseller_id, &agreement.reseller)
        && id != agreement.supplier_id
    {
        suppliers.push(OcdsPartyReference { id: supplier_party_id(id), name: name.clone() });
    }
    parties.extend(suppliers.iter().map(|s| OcdsParty {
        id: s.id.clone(),
        name: s.name.clone(),
        roles: vec!["supplier".into()],
    }));
    let (award_status, contract_status) = match agreement.status {
        AgreementStatus::Draft => ("pending", "pending"),
        AgreementStatus::Active => ("active", "active"),
        AgreementStatus::Expired | AgreementStatus::Terminated => ("active", "terminated"),
    };
    let award_id = format!("{reference}-award");
    OcdsRelease {
        ocid: format!("{ocid_prefix}-{reference}"),
        id: format!("{reference}-{}", agreement.revision),
        date: instant(agreement.updated_at),
        tag: vec!["contract".into()],
        initiation_type: "tender".into(),
        parties,
        buyer,
        awards: vec![OcdsAward {
            id: award_id.clone(),
            title: agreement.title.clone(),
            status: award_status.into(),
            value: value(agreement),
            suppliers,
            contract_period: period(agreement),
        }],
        contracts: vec![OcdsContract {
            id: format!("{reference}-contract"),
            award_id,
            title: agreement.title.clone(),
            status: contract_status.into(),
            period: period(agreement),
            value: value(agreement),
            documents: agreement
                .notice_urls
                .iter()
                .enumerate()
                .map(|(n, url)| OcdsDocument {
                    id: format!("notice-{}", n + 1),
                    title: "Published notice".into(),
                    url: as_uri(url),
                })
                .collect(),
        }],
        related_processes: agreement
            .framework_reference
            .iter()
            .map(|framework| OcdsRelatedProcess {
                id: "framework".into(),
                relationship: vec!["framework".into()],
                title: match &agreement.framework_lot {
                    Some(lot) => format!("Framework {framework}, {lot}"),
                    None => format!("Framework {framework}"),
                },
                identifier: framework.clone(),
            })
            .collect(),
    }
}

/// The package's opening, up to and including `"releases":[`; the releases and `]}` follow.
pub fn package_head(uri: &str, published: NaiveDateTime) -> String {
    let head = serde_json::json!({
        "uri": uri,
        "version": "1.1",
        "publishedDate": instant(published),
        "publisher": OcdsPublisher { name: PUBLISHER.into() },
    });
    let text = head.to_string();
    // The object's closing brace becomes the releases array's opening.
    format!("{},\"releases\":[", &text[..text.len() - 1])
}

/// An OCDS 1.1 record package.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OcdsRecordPackage {
    /// Where this package is served.
    #[schema(format = "uri")]
    pub uri: String,
    /// `1.1`.
    #[schema(example = "1.1")]
    pub version: String,
    pub published_date: String,
    pub publisher: OcdsPublisher,
    /// The release packages the records' releases are published in.
    pub packages: Vec<String>,
    #[schema(min_items = 1)]
    pub records: Vec<OcdsRecord>,
}

/// Everything published about one contracting process (one agreement).
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OcdsRecord {
    pub ocid: String,
    /// The agreement's releases, oldest first (the catalogue publishes one, its current state).
    #[schema(min_items = 1)]
    pub releases: Vec<OcdsRelease>,
    /// The releases merged: the current state, tagged `compiled`.
    pub compiled_release: OcdsRelease,
}

/// A package of one agreement's record, naming the release package its release is in.
pub fn record_package(
    uri: &str,
    release_package_uri: &str,
    agreement: &Agreement,
    ocid_prefix: &str,
) -> OcdsRecordPackage {
    let current = release(agreement, ocid_prefix);
    let mut compiled = current.clone();
    compiled.id = format!("{}-compiled", current.id);
    compiled.tag = vec!["compiled".into()];
    OcdsRecordPackage {
        uri: uri.to_owned(),
        version: "1.1".into(),
        published_date: instant(agreement.updated_at),
        publisher: OcdsPublisher { name: PUBLISHER.into() },
        packages: vec![release_package_uri.to_owned()],
        records: vec![OcdsRecord {
            ocid: current.ocid.clone(),
            releases: vec![current],
            compiled_release: compiled,
        }],
    }
}

/// A package of one agreement's release.
pub fn package(uri: &str, agreement: &Agreement, ocid_prefix: &str) -> OcdsReleasePackage {
    OcdsReleasePackage {
        uri: uri.to_owned(),
        version: "1.1".into(),
        published_date: instant(agreement.updated_at),
        publisher: OcdsPublisher { name: PUBLISHER.into() },
        releases: vec![release(agreement, ocid_prefix)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use db::vocabulary::{FundingModel, OrganisationKind};

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap_or_else(|| panic!("{y}-{m}-{d} is no date"))
    }

    fn call_off() -> Agreement {
        Agreement {
            id: 7,
            supplier_id: 1,
            supplier: "Microsoft".into(),
            reference: "NHSE-MS-2023-RM6068".into(),
            title: "Call-off".into(),
            framework_reference: Some("RM6068".into()),
            starts_on: day(2023, 6, 1),
            ends_on: Some(day(2028, 3, 31)),
            funding_model: FundingModel::Central,
            status: AgreementStatus::Active,
            ended: false,
            eligible_kinds: vec![OrganisationKind::Trust],
            source: None,
            value_minor: Some(77_450_000_050),
            currency: "GBP".into(),
            reseller_id: Some(2),
            reseller: Some("Bytes Software Services".into()),
            framework_lot: None,
            initial_term_months: Some(34),
            notice_urls: vec!["https://example.org/notice".into()],
            commercial_source: None,
            buyer: None,
            extension_options: vec![db::agreements::ExtensionOption {
                id: 1,
                months: 24,
                decide_by: day(2026, 3, 31),
                decision: None,
                decided_on: None,
                source: None,
            }],
            revision: 3,
            created_at: day(2026, 12, 3).and_time(NaiveTime::MIN),
            updated_at: day(2026, 12, 3).and_time(NaiveTime::MIN),
        }
    }

    #[test]
    fn a_release_names_the_ocid_parties_value_and_periods() {
        let release = release(&call_off(), "ocds-abc123");
        assert_eq!(release.ocid, "ocds-abc123-NHSE-MS-2023-RM6068");
        assert_eq!(release.id, "NHSE-MS-2023-RM6068-3");
        let names: Vec<&str> = release.parties.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["NHS England", "Microsoft", "Bytes Software Services"]);
        let value = release.contracts[0].value.as_ref().unwrap_or_else(|| panic!("no value"));
        assert_eq!((value.amount, value.currency.as_str()), (774_500_000.5, "GBP"));
        let period = &release.contracts[0].period;
        assert_eq!(
            period.end_date.as_deref(),
            Some("2028-04-01T00:00:00Z"),
            "the day ends at the next midnight"
        );
        assert_eq!(period.max_extent_date.as_deref(), Some("2028-04-01T00:00:00Z"), "34 months and 24 more");
        assert_eq!(release.related_processes[0].identifier, "RM6068");
    }

    #[test]
    fn notice_addresses_are_published_as_uris() {
        assert_eq!(
            as_uri("https://www.find-tender.service.gov.uk/Notice/000001-2024"),
            "https://www.find-tender.service.gov.uk/Notice/000001-2024"
        );
        assert_eq!(as_uri("http://©R/a b"), "http://%C2%A9R/a%20b");
        assert_eq!(as_uri("https://x/p?q=1#f#g"), "https://x/p?q=1#f%23g", "one fragment");
        assert_eq!(as_uri("https://x/100%25/%zz\"{}"), "https://x/100%25/%25zz%22%7B%7D");
    }

    #[test]
    fn the_buyer_is_the_recorded_one_or_the_publisher() {
        let mut agreement = call_off();
        agreement.buyer = Some("NHSX and NHS Digital".into());
        let release = release(&agreement, DEFAULT_OCID_PREFIX);
        assert_eq!(release.buyer.id, "catalogue-buyer-nhsx-and-nhs-digital");
        assert_eq!(release.buyer.name, "NHSX and NHS Digital");
        assert_eq!(release.parties[0].roles, ["buyer"]);
        assert_eq!(release.parties[0].id, release.buyer.id, "the buyer is one of the parties");
        agreement.buyer = Some(PUBLISHER.into());
        assert_eq!(super::release(&agreement, DEFAULT_OCID_PREFIX).buyer.id, BUYER_ID);
    }

    #[test]
    fn a_declined_option_does_not_extend_and_ended_agreements_are_terminated_contracts() {
        let mut agreement = call_off();
        agreement.extension_options[0].decision = Some(ExtensionDecision::Declined);
        agreement.status = AgreementStatus::Expired;
        let release = release(&agreement, DEFAULT_OCID_PREFIX);
        assert_eq!(release.contracts[0].period.max_extent_date.as_deref(), Some("2026-04-01T00:00:00Z"));
        assert_eq!(release.contracts[0].status, "terminated");
        assert_eq!(release.awards[0].status, "active");
    }

    #[test]
    fn a_record_embeds_the_release_and_compiles_it() {
        let package = record_package("https://x/r", "https://x/p", &call_off(), "ocds-abc123");
        let record = &package.records[0];
        assert_eq!(record.ocid, "ocds-abc123-NHSE-MS-2023-RM6068");
        assert_eq!(record.releases.len(), 1);
        assert_eq!(record.releases[0].tag, vec!["contract".to_owned()]);
        assert_eq!(record.compiled_release.tag, vec!["compiled".to_owned()]);
        assert_ne!(record.compiled_release.id, record.releases[0].id, "a compiled release has its own id");
        assert_eq!(record.compiled_release.awards[0].suppliers, record.releases[0].awards[0].suppliers);
        assert_eq!(package.packages, vec!["https://x/p".to_owned()]);
    }

    #[test]
    fn prefixes_are_checked_and_the_package_head_opens_the_releases() {
        assert!(valid_prefix(DEFAULT_OCID_PREFIX));
        assert!(valid_prefix("ocds-213czf"));
        for bad in ["ocds-", "ocds-ABCDEF", "ocds-1234567", "xyz-123456", ""] {
            assert!(!valid_prefix(bad), "{bad}");
        }
        let head =
            package_head("http://localhost/v1/agreements/ocds", day(2026, 12, 3).and_time(NaiveTime::MIN));
        let whole: serde_json::Value = serde_json::from_str(&format!("{head}]}}"))
            .unwrap_or_else(|e| panic!("the head and a closing make no JSON: {e}"));
        assert_eq!(whole["version"], "1.1");
        assert_eq!(whole["releases"], serde_json::json!([]));
    }
}
