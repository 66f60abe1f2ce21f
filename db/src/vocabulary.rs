//! The closed vocabularies of the domain (organisation kinds, tiers, metrics, ...). Stored as
//! text, checked by the database, and typed here so the API refuses anything else with 422.

/// Declares an enum stored as text: `as_str`, `parse`, serde as the stored text, diesel's mapping
/// and an OpenAPI schema. Extra derives follow the name in brackets, e.g. `Severity [PartialOrd,
/// Ord] { ... }` (an order follows the variants as written).
macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident $([$($derive:path),+])? { $($(#[$vdoc:meta])* $variant:ident = $text:tt),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(
            Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
            diesel::expression::AsExpression, diesel::deserialize::FromSqlRow, $($($derive),+)?
        )]
        #[diesel(sql_type = diesel::sql_types::Text)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(text: &str) -> Option<$name> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        $crate::vocabulary::text_sql!($name);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// diesel reads and writes the enum as its text on every backend (the MultiConnection's too), so a
/// row struct holds the enum itself; stored text outside the vocabulary is an error, never a
/// default. For an enum with `as_str` and `parse` that derives `AsExpression` and `FromSqlRow` as
/// Text: what `text_enum!` declares.
macro_rules! text_sql {
    ($name:ident) => {
        impl<DB> diesel::serialize::ToSql<diesel::sql_types::Text, DB> for $name
        where
            DB: diesel::backend::Backend,
            str: diesel::serialize::ToSql<diesel::sql_types::Text, DB>,
        {
            fn to_sql<'b>(
                &'b self,
                out: &mut diesel::serialize::Output<'b, '_, DB>,
            ) -> diesel::serialize::Result {
                self.as_str().to_sql(out)
            }
        }

        impl<DB> diesel::deserialize::FromSql<diesel::sql_types::Text, DB> for $name
        where
            DB: diesel::backend::Backend,
            String: diesel::deserialize::FromSql<diesel::sql_types::Text, DB>,
        {
            fn from_sql(bytes: DB::RawValue<'_>) -> diesel::deserialize::Result<Self> {
                let text = String::from_sql(bytes)?;
                $name::parse(&text).ok_or_else(|| {
                    format!(concat!("stored ", stringify!($name), " {:?} is not in the vocabulary"), text)
                        .into()
                })
            }
        }
    };
}
pub(crate) use {text_enum, text_sql};

text_enum!(
    /// The kind of an NHS organisation.
    OrganisationKind {
        Trust = "trust",
        Icb = "icb",
        GpPractice = "gp_practice",
        Csu = "csu",
        NationalBody = "national_body",
        ArmsLengthBody = "arms_length_body",
        Other = "other",
    }
);

text_enum!(
    /// How an agreement is paid for.
    FundingModel { Central = "central", CoFunded = "co_funded", Local = "local" }
);

text_enum!(
    /// Where an agreement stands. Ended agreements (expired, terminated) are kept, never deleted.
    AgreementStatus { Draft = "draft", Active = "active", Expired = "expired", Terminated = "terminated" }
);

text_enum!(
    /// What was decided on an option to extend an agreement.
    ExtensionDecision { Taken = "taken", Declined = "declined" }
);

text_enum!(
    /// The tier of an entitlement line.
    Tier { NationalProvision = "national_provision", TopUp = "top_up", AddOn = "add_on" }
);

text_enum!(
    /// The NHSmail service an organisation takes, from January 2024: each has its own national
    /// provision (Standard: Microsoft 365 F3 without Windows and its security; Enhanced:
    /// Microsoft 365 E3 Frontline Restricted and F5 Security & Compliance).
    NhsmailService { Standard = "standard", Enhanced = "enhanced" }
);

text_enum!(
    /// Where a seat request (a claim on a line that requires approval) stands.
    SeatRequestStatus {
        /// Waiting for the national team; holds no seats.
        Pending = "pending",
        /// Approved: its seats were taken as an allocation.
        Approved = "approved",
        /// Refused, with a reason; no seats taken.
        Refused = "refused",
        /// Withdrawn by the organisation before a decision.
        Withdrawn = "withdrawn",
    }
);

text_enum!(
    /// Where a request for a product the catalogue does not list stands.
    ProductRequestStatus {
        /// Waiting for the national team.
        Waiting = "waiting",
        /// The product is in the catalogue now: the request names it.
        Added = "added",
        /// Declined by the national team, with a reason.
        Declined = "declined",
        /// Withdrawn by the organisation before a decision.
        Withdrawn = "withdrawn",
    }
);

text_enum!(
    /// Where an estate snapshot came from: the catalogue's own CSV, a Microsoft Defender for
    /// Endpoint software inventory export, or an Intune discovered-apps export.
    EstateSource { Catalogue = "catalogue", Defender = "defender", Intune = "intune" }
);

text_enum!(
    /// What became of a row: `matched` (to `product_id`, and `release_id` when its version names
    /// one), `unmatched` (no product has its name: it waits in the national team's queue) or
    /// `invalid` (`reason` says why; the import is refused while any row is).
    RowStatus { Matched = "matched", Unmatched = "unmatched", Invalid = "invalid" }
);

text_enum!(
    /// What the reconciliation of an organisation's estate with its holdings found.
    ReconciliationFlag {
        /// Runs more than it holds, where it holds some or a national line covers it: claim or buy.
        UnderClaimed = "under_claimed",
        /// Runs it, holds none, and no national line it may use covers it.
        Unlicensed = "unlicensed",
        /// Holds more than it runs: seats to release.
        Unused = "unused",
        /// Devices run a release past the security support its licence includes.
        RunningUnsupported = "running_unsupported",
    }
);

text_enum!(
    /// What one seat of an entitlement counts.
    Metric { PerDevice = "per_device", PerUser = "per_user", PerCore = "per_core", Site = "site" }
);

text_enum!(
    /// What a claim past the cap does: refused (`block`), or taken and flagged for true-up.
    OverAllocationPolicy { Block = "block", AllowAndFlag = "allow_and_flag" }
);

text_enum!(
    /// A product's support at a date, from its lifecycle dates.
    SupportStatus {
        /// In mainstream support (or no end announced).
        Supported = "supported",
        /// Past mainstream support, still receiving security updates.
        Extended = "extended",
        /// No security updates any more.
        Unsupported = "unsupported",
    }
);

text_enum!(
    /// A release's support at a date, from its own dates (see `releases::Release::status`).
    ReleaseStatus {
        /// Receiving security updates, with no end within 12 months.
        Supported = "supported",
        /// Receiving security updates, but they end within 12 months.
        Ending = "ending",
        /// Past its end of security support: only paid extended security updates cover it.
        ExtendedUpdatesOnly = "extended_updates_only",
        /// No security updates of any kind.
        Unsupported = "unsupported",
    }
);

text_enum!(
    /// Where a synced lifecycle date that moved too far stands: waiting for an admin, or decided.
    HoldStatus { Pending = "pending", Confirmed = "confirmed", Rejected = "rejected" }
);

text_enum!(
    /// Where a succession that ODS published stands: proposed to an admin, confirmed (the
    /// succession ran) or rejected.
    SuccessionStatus { Proposed = "proposed", Confirmed = "confirmed", Rejected = "rejected" }
);

text_enum!(
    /// Where a holding of software at risk stands: no risk acceptance in force on the date
    /// (an expired one does not count), or covered by one.
    RiskStatus {
        AtRisk = "at_risk",
        Accepted = "accepted",
    }
);

/// Parses a stored comma-separated list of organisation kinds (unknown entries are ignored:
/// the writers below only store known ones).
pub fn parse_kinds(text: &str) -> Vec<OrganisationKind> {
    text.split(',').filter_map(|k| OrganisationKind::parse(k.trim())).collect()
}

pub fn join_kinds(kinds: &[OrganisationKind]) -> String {
    kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(",")
}

/// A category slug: lower-case letters, digits and hyphens.
pub fn is_slug(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// An ODS code: 3 to 10 upper-case letters and digits.
pub fn is_ods_code(text: &str) -> bool {
    (3..=10).contains(&text.len()) && text.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

text_enum!(
    /// What happened, as subscribers choose it. The names are the webhook payloads' `type`.
    EventKind {
        /// A security advisory was published.
        AdvisoryPublished = "advisory.published",
        /// A published advisory was changed (its products, severity or remediation).
        AdvisoryChanged = "advisory.changed",
        /// An exposed organisation has not acknowledged an advisory whose deadline is within 24 hours.
        AcknowledgementDue = "acknowledgement.due",
        /// An exposed organisation's acknowledgement deadline passed without one.
        AcknowledgementOverdue = "acknowledgement.overdue",
        /// A national line's seats are 90% claimed.
        CapNearlyFull = "cap.nearly_full",
        /// A national line's seats are all claimed.
        CapFull = "cap.full",
        /// A release an organisation runs or holds leaves support within three months.
        SupportEnding = "support.ending",
        /// An entitlement line ends within 90 days.
        EntitlementEnding = "entitlement.ending",
        /// An agreement ends within 90 days.
        AgreementEnding = "agreement.ending",
        /// An agreement's extension must be decided within 30 days.
        ExtensionDecisionDue = "extension.decision_due",
        /// An obligation an organisation accepted falls due within 14 days.
        ObligationDue = "obligation.due",
        /// A version of a "buy against" standard was published.
        StandardPublished = "standard.published",
        /// A published version of a standard was withdrawn.
        StandardWithdrawn = "standard.withdrawn",
        /// A risk acceptance expires within 30 days.
        RiskAcceptanceExpiring = "risk_acceptance.expiring",
        /// An organisation asked for seats on a line that needs approval.
        ApprovalRequested = "approval.requested",
        /// A seat request was approved or refused.
        ApprovalDecided = "approval.decided",
    }
);

// How a subscription is told (`crate::subscriptions`).
text_enum!(
    Channel { Email = "email", Webhook = "webhook" }
);

text_enum!(
    /// How often an email subscription is sent: each event as it happens, or one digest a day.
    EmailCadence { Immediate = "immediate", Daily = "daily" }
);

// Where a delivery of an event to a subscription stands (`crate::deliveries`).
text_enum!(
    DeliveryStatus {
        /// Waiting for its next attempt.
        Pending = "pending",
        Delivered = "delivered",
        /// Retried for a day without success: kept, not retried unless redelivery is asked for.
        Dead = "dead",
    }
);
