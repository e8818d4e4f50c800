//! Sections (标段/包): the unit of bidding, opening and evaluation. Their
//! lifecycle and the rules a section's settings must satisfy to be published.

use crate::text_enum;

text_enum! {
    /// DESIGN §2: `draft → published → sealed → decrypting → announced →
    /// confirming → evaluating → publicity → awarded`, exits `failed` (流标)
    /// and `cancelled`.
    pub enum SectionState {
        Draft = "draft",
        Published = "published",
        Sealed = "sealed",
        Decrypting = "decrypting",
        Announced = "announced",
        Confirming = "confirming",
        Evaluating = "evaluating",
        Publicity = "publicity",
        Awarded = "awarded",
        Failed = "failed",
        Cancelled = "cancelled",
    }
}

impl SectionState {
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Awarded | Self::Failed | Self::Cancelled)
    }

    /// Whether the lifecycle allows `self → to`. Every state change in the
    /// database is a compare-and-set from a state for which this holds.
    pub fn can_become(self, to: SectionState) -> bool {
        use SectionState::*;
        if to == Cancelled {
            return !self.is_terminal();
        }
        matches!(
            (self, to),
            (Draft, Published)
                | (Published, Sealed)
                | (Sealed, Decrypting)
                | (Sealed, Failed)
                | (Decrypting, Announced)
                | (Decrypting, Failed)
                | (Announced, Confirming)
                | (Confirming, Evaluating)
                | (Evaluating, Publicity)
                | (Evaluating, Failed)
                | (Publicity, Awarded)
                | (Publicity, Evaluating)
        )
    }

    /// Visible to the public (published notices and everything after).
    pub fn is_public(self) -> bool {
        self != Self::Draft
    }
}

text_enum! {
    /// Trading categories (DESIGN intro).
    pub enum Category {
        /// 工程建设招投标
        Construction = "construction",
        /// 政府采购
        Procurement = "procurement",
        /// 土地使用权出让
        LandUse = "land_use",
        /// 矿业权出让
        MiningRights = "mining_rights",
        /// 国有产权交易
        PropertyRights = "property_rights",
    }
}

text_enum! {
    /// How bids are decrypted at the opening (DESIGN §4).
    pub enum DecryptionMode {
        Custodians = "custodians",
        Bidders = "bidders",
        BiddersWithEscrow = "bidders_with_escrow",
    }
}

impl DecryptionMode {
    /// The custodian quorum is needed to open bids in these modes; in plain
    /// `bidders` mode it is optional.
    pub fn needs_custodians(self) -> bool {
        !matches!(self, Self::Bidders)
    }
}

text_enum! {
    /// Kinds of amendment (澄清 clarification / 修改 modification).
    pub enum AmendmentKind {
        Clarification = "clarification",
        Modification = "modification",
    }
}

text_enum! {
    /// The value kind of one field of the 开标一览表 (bid summary).
    pub enum SummaryFieldKind {
        Money = "money",
        Integer = "integer",
        Text = "text",
    }
}

/// Bounds on per-section settings.
pub mod limits {
    pub const MIN_WINDOW_SECS: i64 = 60;
    pub const MAX_WINDOW_SECS: i64 = 24 * 3600;
    pub const MAX_CUSTODIANS: usize = 16;
    pub const MAX_GRACE_SECS: i64 = 3600;
    pub const MAX_MIN_BIDDERS: i32 = 100;
    pub const MAX_SUMMARY_FIELDS: usize = 20;
    pub const MAX_TEXT: usize = 20_000;
    pub const MAX_NAME: usize = 200;
}

#[cfg(test)]
mod tests {
    use super::SectionState::*;
    use super::*;

    #[test]
    fn lifecycle_moves_forward_only() {
        assert!(Draft.can_become(Published));
        assert!(Published.can_become(Sealed));
        assert!(!Published.can_become(Draft));
        assert!(!Draft.can_become(Sealed));
        assert!(!Sealed.can_become(Published));
        assert!(Published.can_become(Cancelled));
        assert!(!Cancelled.can_become(Cancelled));
        assert!(!Awarded.can_become(Cancelled));
        for s in SectionState::ALL {
            assert!(!s.can_become(Draft), "{s} must never return to draft");
        }
    }
}

/// One field of the 开标一览表 (bid summary) that every bid states and that
/// is read out at the opening (唱标). A section always has a `price`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SummaryField {
    pub key: String,
    pub label: String,
    pub kind: SummaryFieldKind,
    #[serde(default)]
    pub required: bool,
}

impl SummaryField {
    pub fn defaults() -> Vec<SummaryField> {
        let f = |key: &str, label: &str, kind, required| SummaryField {
            key: key.into(),
            label: label.into(),
            kind,
            required,
        };
        vec![
            f(
                "price",
                "投标报价（元）/ Bid price (yuan)",
                SummaryFieldKind::Money,
                true,
            ),
            f(
                "duration_days",
                "工期（日历天）/ Duration (calendar days)",
                SummaryFieldKind::Integer,
                false,
            ),
            f(
                "quality",
                "质量标准 / Quality standard",
                SummaryFieldKind::Text,
                false,
            ),
        ]
    }

    pub fn validate_all(fields: &[SummaryField], prefix: &str, p: &mut super::problems::Problems) {
        p.check(
            !fields.is_empty() && fields.len() <= limits::MAX_SUMMARY_FIELDS,
            prefix,
            format!("1 to {} fields", limits::MAX_SUMMARY_FIELDS),
        );
        let mut seen = std::collections::HashSet::new();
        for (i, f) in fields.iter().enumerate() {
            let at = format!("{prefix}[{i}]");
            p.check(
                !f.key.is_empty()
                    && f.key.len() <= 40
                    && f.key
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                format!("{at}.key"),
                "1-40 characters of a-z, 0-9 or '_'",
            );
            p.check(
                seen.insert(f.key.as_str()),
                format!("{at}.key"),
                "duplicate key",
            );
            p.check(
                !f.label.trim().is_empty() && f.label.chars().count() <= 100,
                format!("{at}.label"),
                "1-100 characters",
            );
        }
        let price = fields.iter().find(|f| f.key == "price");
        p.check(
            price.is_some_and(|f| f.kind == SummaryFieldKind::Money && f.required),
            prefix,
            "a required money field with key \"price\" is needed",
        );
    }
}
