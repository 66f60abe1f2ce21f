//! The coverage rules of DESIGN.md, restated straight from the tables and written apart from
//! `db::coverage::decide`, so that a regression in `decide` (or in what the read model hands it)
//! shows as a difference from this restatement rather than passing through both sides.

use std::collections::BTreeSet;

use chrono::{Months, NaiveDate, NaiveDateTime};
use db::Database;
use db::schema::{
    agreements, entitlements, nhsmail_service_periods, organisations, products, standard_versions, standards,
};
use diesel::prelude::*;
use serde_json::Value;

/// What a coverage question is asked about.
#[derive(Clone, Debug)]
pub enum Asked {
    Product(i64),
    Category(String),
}

struct Organisation {
    code: String,
    kind: String,
    closed: bool,
    /// Recorded NHSmail service periods: (service, starts on, ends on).
    services: Vec<(String, NaiveDate, Option<NaiveDate>)>,
}

impl Organisation {
    /// DESIGN.md's rule: a recorded period covering the day; with none recorded, from
    /// 2024-01-01 the Enhanced Service for trusts, ICBs, CSUs, arm's-length and national bodies
    /// and the Standard Service for the rest.
    fn nhsmail_service(&self, on: NaiveDate) -> Option<String> {
        if !self.services.is_empty() {
            return self
                .services
                .iter()
                .find(|(_, starts, ends)| within(*starts, *ends, on))
                .map(|s| s.0.clone());
        }
        let began = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
        let enhanced = ["trust", "icb", "csu", "arms_length_body", "national_body"];
        (on >= began)
            .then(|| if enhanced.contains(&self.kind.as_str()) { "enhanced" } else { "standard" }.to_owned())
    }
}

struct Product {
    id: i64,
    category: String,
    mainstream_ends: Option<NaiveDate>,
    extended_ends: Option<NaiveDate>,
}

struct LineRow {
    id: i64,
    product_id: i64,
    tier: String,
    seat_cap: Option<i64>,
    seats_allocated: i64,
    kinds: Vec<String>,
    starts_on: NaiveDate,
    ends_on: Option<NaiveDate>,
    agreement_status: String,
    agreement_starts_on: NaiveDate,
    agreement_ends_on: Option<NaiveDate>,
    agreement_kinds: Vec<String>,
    nhsmail_service: Option<String>,
}

/// The expected answer: the decision, each licence's id and seats left in best-first order, and
/// the warning codes.
struct Expected {
    decision: &'static str,
    licences: Vec<(i64, Option<i64>)>,
    warnings: BTreeSet<String>,
}

/// Everything the rules read, as stored.
pub struct Record {
    organisations: Vec<Organisation>,
    products: Vec<Product>,
    lines: Vec<LineRow>,
    /// (category, published at) of each version whose status is published.
    published: Vec<(String, NaiveDateTime)>,
}

fn kinds(text: &str) -> Vec<String> {
    text.split(',').map(|kind| kind.trim().to_owned()).filter(|kind| !kind.is_empty()).collect()
}

fn within(starts_on: NaiveDate, ends_on: Option<NaiveDate>, on: NaiveDate) -> bool {
    starts_on <= on && ends_on.is_none_or(|end| on <= end)
}

impl Record {
    pub fn read(db: &Database) -> Record {
        db.read(|conn| {
            let periods = nhsmail_service_periods::table
                .select((
                    nhsmail_service_periods::organisation_code,
                    nhsmail_service_periods::service,
                    nhsmail_service_periods::starts_on,
                    nhsmail_service_periods::ends_on,
                ))
                .load::<(String, String, NaiveDate, Option<NaiveDate>)>(conn)?;
            let organisations = organisations::table
                .select((organisations::code, organisations::kind, organisations::closed_on))
                .load::<(String, String, Option<NaiveDate>)>(conn)?
                .into_iter()
                .map(|(code, kind, closed_on)| Organisation {
                    services: periods
                        .iter()
                        .filter(|p| p.0 == code)
                        .map(|(_, service, starts, ends)| (service.clone(), *starts, *ends))
                        .collect(),
                    code,
                    kind,
                    closed: closed_on.is_some(),
                })
                .collect();
            let products = products::table
                .select((
                    products::id,
                    products::category,
                    products::mainstream_support_ends_on,
                    products::extended_support_ends_on,
                ))
                .load::<(i64, String, Option<NaiveDate>, Option<NaiveDate>)>(conn)?
                .into_iter()
                .map(|(id, category, mainstream_ends, extended_ends)| Product {
                    id,
                    category,
                    mainstream_ends,
                    extended_ends,
                })
                .collect();
            type Row = (
                (i64, i64, String, Option<i64>, i64, String, NaiveDate, Option<NaiveDate>, Option<String>),
                (String, NaiveDate, Option<NaiveDate>, String),
            );
            let lines = entitlements::table
                .inner_join(agreements::table)
                .select((
                    (
                        entitlements::id,
                        entitlements::product_id,
                        entitlements::tier,
                        entitlements::seat_cap,
                        entitlements::seats_allocated,
                        entitlements::eligible_kinds,
                        entitlements::starts_on,
                        entitlements::ends_on,
                        entitlements::nhsmail_service,
                    ),
                    (
                        agreements::status,
                        agreements::starts_on,
                        agreements::ends_on,
                        agreements::eligible_kinds,
                    ),
                ))
                .load::<Row>(conn)?
                .into_iter()
                .map(
                    |(
                        (
                            id,
                            product_id,
                            tier,
                            seat_cap,
                            seats_allocated,
                            line_kinds,
                            starts_on,
                            ends_on,
                            service,
                        ),
                        agreement,
                    )| {
                        let (agreement_status, agreement_starts_on, agreement_ends_on, agreement_kinds) =
                            agreement;
                        LineRow {
                            id,
                            product_id,
                            tier,
                            seat_cap,
                            seats_allocated,
                            kinds: kinds(&line_kinds),
                            starts_on,
                            ends_on,
                            agreement_status,
                            agreement_starts_on,
                            agreement_ends_on,
                            agreement_kinds: kinds(&agreement_kinds),
                            nhsmail_service: service,
                        }
                    },
                )
                .collect();
            let published = standards::table
                .inner_join(standard_versions::table)
                .filter(standard_versions::status.eq("published"))
                .select((standards::category, standard_versions::published_at))
                .load::<(String, Option<NaiveDateTime>)>(conn)?
                .into_iter()
                .filter_map(|(category, at)| Some((category, at?)))
                .collect();
            Ok(Record { organisations, products, lines, published })
        })
        .unwrap_or_else(|error| panic!("reading the record: {error}"))
    }

    pub fn organisation_codes(&self) -> Vec<String> {
        self.organisations.iter().map(|o| o.code.clone()).collect()
    }

    pub fn product_ids(&self) -> Vec<i64> {
        self.products.iter().map(|p| p.id).collect()
    }

    /// The answer the rules give for `organisation` and `asked` on `on`.
    fn expected(&self, organisation: &str, asked: &Asked, on: NaiveDate) -> Expected {
        let organisation = self.organisations.iter().find(|o| o.code == organisation).expect("organisation");
        let mut warnings = BTreeSet::new();
        if organisation.closed {
            warnings.insert("organisation_closed".to_owned());
        }
        let (category, product_ids): (&str, Vec<i64>) = match asked {
            Asked::Product(id) => {
                let product = self.products.iter().find(|p| p.id == *id).expect("product");
                // Support ends with extended support, or with mainstream support when there is none.
                if let Some(end) = product.extended_ends.or(product.mainstream_ends) {
                    if on > end {
                        warnings.insert("unsupported".to_owned());
                    } else if end <= on.checked_add_months(Months::new(12)).expect("a date") {
                        warnings.insert("support_ending".to_owned());
                    }
                }
                (&product.category, vec![product.id])
            }
            Asked::Category(category) => {
                (category, self.products.iter().filter(|p| &p.category == category).map(|p| p.id).collect())
            }
        };
        let mut licensed: Vec<&LineRow> = Vec::new();
        let (mut ineligible, mut ended) = (false, false);
        for line in self.lines.iter().filter(|line| product_ids.contains(&line.product_id)) {
            let agreement_in_force = match line.agreement_status.as_str() {
                "draft" => false,
                "active" => within(line.agreement_starts_on, line.agreement_ends_on, on),
                // An ended agreement answers history questions up to its recorded end.
                _ => {
                    line.agreement_ends_on.is_some()
                        && within(line.agreement_starts_on, line.agreement_ends_on, on)
                }
            };
            if !agreement_in_force || !within(line.starts_on, line.ends_on, on) {
                if line.agreement_status != "draft" && line.starts_on <= on {
                    ended = true;
                }
                continue;
            }
            let eligible = line.kinds.contains(&organisation.kind)
                && line.agreement_kinds.contains(&organisation.kind)
                && line
                    .nhsmail_service
                    .as_ref()
                    .is_none_or(|service| Some(service) == organisation.nhsmail_service(on).as_ref());
            if !eligible || organisation.closed {
                ineligible = true;
                continue;
            }
            licensed.push(line);
        }
        let remaining = |line: &LineRow| line.seat_cap.map(|cap| (cap - line.seats_allocated).max(0));
        licensed.sort_by_key(|line| best_first(&line.tier, remaining(line)));
        if licensed.is_empty() {
            if ineligible {
                warnings.insert("not_eligible".to_owned());
            }
            if ended {
                warnings.insert("entitlement_ended".to_owned());
            }
        } else if licensed.iter().all(|line| remaining(line) == Some(0)) {
            warnings.insert("no_seats_remaining".to_owned());
        }
        // A day ends at the next midnight (times are stored to the microsecond).
        let end_of_day = on.succ_opt().expect("a next day").and_time(chrono::NaiveTime::MIN);
        let decision = if !licensed.is_empty() {
            "nationally_licensed"
        } else if self.published.iter().any(|(c, at)| c == category && *at < end_of_day) {
            "buy_locally"
        } else {
            "no_guidance"
        };
        Expected {
            decision,
            licences: licensed.iter().map(|line| (line.id, remaining(line))).collect(),
            warnings,
        }
    }
}

/// Where a licence stands in the best-first order (smaller is better): lines with seats left,
/// then national provision before top-ups and add-ons, then the most seats left (an uncapped line
/// has the most).
fn best_first(tier: &str, left: Option<i64>) -> (bool, bool, std::cmp::Reverse<i64>) {
    (left == Some(0), tier != "national_provision", std::cmp::Reverse(left.unwrap_or(i64::MAX)))
}

impl Record {
    fn tier(&self, id: i64) -> &str {
        self.lines.iter().find(|line| line.id == id).map_or("", |line| line.tier.as_str())
    }

    /// Compares an answer (as the API serialises it) with what the rules give: the decision,
    /// the warnings, each licence with its seats left, and the best-first order. Lines that tie
    /// in that order may come in either order.
    pub fn check(
        &self,
        organisation: &str,
        asked: &Asked,
        on: NaiveDate,
        answer: &Value,
    ) -> Result<(), String> {
        let expected = self.expected(organisation, asked, on);
        let decision = answer["decision"].as_str().unwrap_or_default();
        let licences: Vec<(i64, Option<i64>)> = answer["licences"]
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|l| (l["entitlement_id"].as_i64().unwrap_or(-1), l["seats_remaining"].as_i64()))
                    .collect()
            })
            .unwrap_or_default();
        let warnings: BTreeSet<String> = answer["warnings"]
            .as_array()
            .map(|list| list.iter().filter_map(|w| w["code"].as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        let key = |(id, left): &(i64, Option<i64>)| (best_first(self.tier(*id), *left), *id);
        let in_order = licences.windows(2).all(|pair| {
            best_first(self.tier(pair[0].0), pair[0].1) <= best_first(self.tier(pair[1].0), pair[1].1)
        });
        let (mut got, mut want) = (licences.clone(), expected.licences.clone());
        got.sort_by_key(key);
        want.sort_by_key(key);
        if decision == expected.decision && warnings == expected.warnings && got == want && in_order {
            Ok(())
        } else {
            Err(format!(
                "{organisation} {asked:?} on {on}: expected {} {want:?} {:?}, got {decision} {licences:?} {warnings:?}",
                expected.decision, expected.warnings
            ))
        }
    }
}
