//! The action a coverage answer leads with: what the officer should do, with the reason and the
//! date it rests on. Unsupported software is a stop, whatever else is true of it: an officer who
//! reads only the headline must not buy, deploy or keep running it unknowingly.

use chrono::NaiveDate;
use serde::Serialize;

use crate::releases::{self, Release};
use crate::vocabulary::{ReleaseStatus, SupportStatus};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ActionCode {
    /// Licensed nationally and supported: claim seats from the national entitlement.
    ClaimNationalSeats,
    /// Licensed nationally, but no seats remain under any cap: ask the national team first.
    AskNationalTeam,
    /// This release is unsupported: move to a supported release, or the successor product.
    MoveToSupported,
    /// Past its end of security support: only paid extended security updates cover it, until a date.
    ExtendedUpdatesOnly,
    /// Unsupported: do not buy or deploy it; kit that cannot be replaced needs a risk acceptance.
    DoNotBuyUnsupported,
    /// Not licensed itself, but a national provision covers this category: use it first.
    UseNationalProvision,
    /// Buy locally against the published standard.
    BuyAgainstStandard,
    /// No national licence, provision or standard: follow local procurement rules.
    NoGuidance,
}

/// The release an answer is about: the one asked for, or the best one the catalogue holds.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReleaseAnswer {
    pub name: String,
    pub status: ReleaseStatus,
    pub security_support_ends_on: Option<NaiveDate>,
    pub extended_updates_end_on: Option<NaiveDate>,
}

/// The product that replaces the asked one, followed past successors that are unsupported too.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SuccessorAnswer {
    pub product_id: i64,
    pub product: String,
    /// The asking organisation may claim it from a national entitlement on the date.
    pub licensed_nationally: bool,
    /// It (or one of its releases) receives security updates on the date.
    pub supported: bool,
}

/// A national provision in the asked product's category, for this organisation.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProvisionAnswer {
    pub product_id: i64,
    pub product: String,
    pub entitlement_id: i64,
    pub agreement_reference: String,
}

/// The standard version to buy against.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StandardAnswer {
    pub standard_id: i64,
    pub title: String,
    pub version: i32,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Action {
    pub code: ActionCode,
    /// The action in words a person acts on: the headline.
    #[cfg_attr(
        feature = "openapi",
        schema(example = "Do not buy or deploy Windows 7 Enterprise: it is unsupported")
    )]
    pub summary: String,
    /// Why, in a sentence.
    pub reason: String,
    /// The date the action rests on (an end of support, of paid updates), when there is one.
    pub rests_on: Option<NaiveDate>,
    pub release: Option<ReleaseAnswer>,
    pub successor: Option<SuccessorAnswer>,
    pub national_provision: Option<ProvisionAnswer>,
    pub standard: Option<StandardAnswer>,
}

/// What a coverage question knows of the asked product's lifecycle.
#[derive(Clone, Debug)]
pub struct LifecycleFacts {
    /// The product's releases, newest first (none: its own product-level dates decide).
    /// Shared: the read model hands out its copy without cloning it.
    pub releases: std::sync::Arc<[Release]>,
    /// The release asked about by name, if one was.
    pub release: Option<String>,
    pub successor: Option<SuccessorAnswer>,
}

impl SuccessorAnswer {
    /// A successor as an answer names it: supported if any release (or, without releases, the
    /// product's own dates) still receives security updates on `on`.
    pub fn new(
        id: i64,
        label: String,
        own_status: SupportStatus,
        releases: &[Release],
        licensed_nationally: bool,
        on: NaiveDate,
    ) -> SuccessorAnswer {
        let supported = match releases::best_at(releases, on) {
            Some(release) => matches!(release.status(on), ReleaseStatus::Supported | ReleaseStatus::Ending),
            None if releases.is_empty() => own_status != SupportStatus::Unsupported,
            None => false,
        };
        SuccessorAnswer { product_id: id, product: label, licensed_nationally, supported }
    }

    fn described(&self) -> String {
        let licence =
            if self.licensed_nationally { "licensed nationally" } else { "not licensed nationally" };
        format!("{} ({licence})", self.product)
    }
}

/// The asked product as the action needs it.
pub struct AskedProduct<'a> {
    pub label: String,
    pub status: SupportStatus,
    pub support_ends_on: Option<NaiveDate>,
    pub lifecycle: Option<&'a LifecycleFacts>,
}

/// Everything the action is decided from.
pub struct ActionFacts<'a> {
    /// None for a question about a category.
    pub product: Option<AskedProduct<'a>>,
    /// Usable national licences for the asked product (or category), and whether any has seats.
    pub licensed: bool,
    pub seats_left: bool,
    pub provision: Option<ProvisionAnswer>,
    pub standard: Option<StandardAnswer>,
    pub category: &'a str,
    pub organisation_code: &'a str,
    pub on: NaiveDate,
}

impl ActionFacts<'_> {
    pub fn action(self) -> Action {
        let Some(product) = &self.product else { return self.procurement(None, None) };
        let lifecycle = product.lifecycle;
        let releases: &[Release] = lifecycle.map(|l| &l.releases[..]).unwrap_or_default();
        let asked = lifecycle.and_then(|l| l.release.as_deref());
        let chosen = match asked {
            Some(name) => releases.iter().find(|r| r.name.eq_ignore_ascii_case(name)),
            None => releases::best_at(releases, self.on),
        };
        let release = chosen.map(|r| ReleaseAnswer {
            name: r.name.clone(),
            status: r.status(self.on),
            security_support_ends_on: r.security_support_ends_on.or(r.active_support_ends_on),
            extended_updates_end_on: r.extended_updates_end_on,
        });
        let (status, ends_on) = match &release {
            Some(release) => (release.status, release.security_support_ends_on),
            None => (
                releases::from_product_status(product.status, product.support_ends_on, self.on),
                product.support_ends_on,
            ),
        };
        let label = match &release {
            Some(release) => format!("{} {}", product.label, release.name),
            None => product.label.clone(),
        };
        let successor = lifecycle.and_then(|l| l.successor.clone());
        // A newer release of the same product that is supported (only when a release was asked
        // about: without one, the best release is already the answer).
        let supported_release = asked
            .and_then(|_| releases::best_at(releases, self.on))
            .filter(|r| matches!(r.status(self.on), ReleaseStatus::Supported | ReleaseStatus::Ending))
            .filter(|r| chosen.is_none_or(|c| c.id != r.id));
        let move_to = match (supported_release, &successor) {
            (Some(r), _) => Some(format!("{} {}", product.label, r.name)),
            (None, Some(s)) if s.supported => Some(s.described()),
            _ => None,
        };
        match status {
            ReleaseStatus::Unsupported => {
                let since = ends_on.map(|d| format!(" since {d}")).unwrap_or_default();
                let reason = format!("{label} has received no security updates{since}.");
                if move_to.is_some() && (self.licensed || supported_release.is_some()) {
                    let target = move_to.unwrap_or_default();
                    return Action {
                        code: ActionCode::MoveToSupported,
                        summary: format!("Move to {target}: {label} is unsupported"),
                        reason: format!(
                            "{reason} {}",
                            if self.licensed {
                                "It is licensed nationally, but a licence does not make it safe to run."
                            } else {
                                "A supported release of the same product is available."
                            }
                        ),
                        rests_on: ends_on,
                        release,
                        successor,
                        national_provision: None,
                        standard: None,
                    };
                }
                let replace = move_to.map(|t| format!(" Replace it with {t}.")).unwrap_or_default();
                Action {
                    code: ActionCode::DoNotBuyUnsupported,
                    summary: format!("Do not buy or deploy {label}: it is unsupported"),
                    reason: format!(
                        "{reason}{replace} Kit that cannot be replaced needs a recorded risk acceptance \
                         (POST /v1/organisations/{}/risk-acceptances, or the risk page).",
                        self.organisation_code
                    ),
                    rests_on: ends_on,
                    release,
                    successor,
                    national_provision: None,
                    standard: None,
                }
            }
            ReleaseStatus::ExtendedUpdatesOnly => {
                let until = release.as_ref().and_then(|r| r.extended_updates_end_on);
                let plan = move_to.map(|t| format!(" Plan the move to {t}.")).unwrap_or_default();
                Action {
                    code: ActionCode::ExtendedUpdatesOnly,
                    summary: format!(
                        "Covered only by paid Extended Security Updates until {}: do not deploy more {label}",
                        until.map(|d| d.to_string()).unwrap_or_default()
                    ),
                    reason: format!(
                        "{label} has been past its end of security support since {}; only organisations that \
                         buy Extended Security Updates receive fixes.{plan}",
                        ends_on.map(|d| d.to_string()).unwrap_or_default()
                    ),
                    rests_on: until,
                    release,
                    successor,
                    national_provision: None,
                    standard: None,
                }
            }
            ReleaseStatus::Supported | ReleaseStatus::Ending => self.procurement(release, successor),
        }
    }

    /// The action for something supported (or a category): claim, provision, standard, nothing.
    fn procurement(&self, release: Option<ReleaseAnswer>, successor: Option<SuccessorAnswer>) -> Action {
        let subject = match &self.product {
            Some(product) => match &release {
                Some(release) => format!("{} {}", product.label, release.name),
                None => product.label.clone(),
            },
            None => format!("the {} category", self.category),
        };
        let ending = release
            .as_ref()
            .filter(|r| r.status == ReleaseStatus::Ending)
            .and_then(|r| r.security_support_ends_on)
            .or_else(|| {
                self.product
                    .as_ref()
                    .filter(|p| {
                        release.is_none()
                            && releases::from_product_status(p.status, p.support_ends_on, self.on)
                                == ReleaseStatus::Ending
                    })?
                    .support_ends_on
            });
        let ending_note = ending
            .map(|d| format!(" Security support ends on {d}: plan its replacement."))
            .unwrap_or_default();
        let (code, summary, reason, standard, provision) = if self.licensed && self.seats_left {
            (
                ActionCode::ClaimNationalSeats,
                format!("Claim national seats for {subject}: do not buy it"),
                format!("It is licensed nationally for your organisation.{ending_note}"),
                None,
                None,
            )
        } else if self.licensed {
            (
                ActionCode::AskNationalTeam,
                format!("Ask the national team about {subject}: no national seats remain"),
                format!("It is licensed nationally, but every capped line is fully claimed.{ending_note}"),
                None,
                None,
            )
        } else if let Some(provision) = self.provision.clone() {
            (
                ActionCode::UseNationalProvision,
                format!("Use the national provision, {}, before buying {subject}", provision.product),
                format!(
                    "{} is provided nationally for this category ({}), for your organisation.{ending_note}",
                    provision.product, provision.agreement_reference
                ),
                None,
                Some(provision),
            )
        } else if let Some(standard) = self.standard.clone() {
            (
                ActionCode::BuyAgainstStandard,
                format!("Buy locally against {} v{}", standard.title, standard.version),
                format!(
                    "It is not licensed nationally; the standard says what a purchase must meet.{ending_note}"
                ),
                Some(standard),
                None,
            )
        } else {
            (
                ActionCode::NoGuidance,
                format!("No national guidance for {subject}: follow your organisation's procurement rules"),
                format!("Nothing is licensed nationally and no standard is published for it.{ending_note}"),
                None,
                None,
            )
        };
        Action {
            code,
            summary,
            reason,
            rests_on: ending,
            release,
            successor,
            national_provision: provision,
            standard,
        }
    }
}
