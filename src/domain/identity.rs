//! Organisations, users and roles.

use serde::{Deserialize, Serialize};

use crate::text_enum;

text_enum! {
    /// What an organisation is: a bidder company, a trading centre (交易中心),
    /// a tendering agent (招标代理), a tenderer (招标人/采购人), a regulator
    /// (行政监督部门) whose staff supervise, or a notary office (公证处) that
    /// may hold an opening key.
    pub enum OrgKind {
        Bidder = "bidder",
        TradingCentre = "trading_centre",
        Agent = "agent",
        Tenderer = "tenderer",
        Regulator = "regulator",
        Notary = "notary",
    }
}

text_enum! {
    pub enum Role {
        Admin = "admin",
        Host = "host",
        Tenderer = "tenderer",
        Supervisor = "supervisor",
        Custodian = "custodian",
        Expert = "expert",
        Bidder = "bidder",
    }
}

impl Role {
    /// The organisation kinds a user with this role may belong to. Platform
    /// administrators belong to no organisation.
    pub fn allowed_org_kinds(self) -> &'static [OrgKind] {
        use OrgKind::*;
        match self {
            Role::Admin => &[],
            Role::Host => &[TradingCentre, Agent],
            Role::Tenderer => &[Tenderer],
            Role::Supervisor => &[Regulator],
            // A custodian may sit in any institution (centre, tenderer,
            // regulator, notary, a remote centre) but never in a bidder.
            Role::Custodian => &[TradingCentre, Agent, Tenderer, Regulator, Notary],
            Role::Expert => &[TradingCentre],
            Role::Bidder => &[Bidder],
        }
    }
}

text_enum! {
    /// What a registered public key is for.
    pub enum KeyPurpose {
        /// A bidder organisation's Ed25519 key that signs its envelopes.
        BidderSigning = "bidder_signing",
        /// A bidder organisation's X25519 key that receives its own copy of each bid key.
        BidderEncryption = "bidder_encryption",
        /// A custodian's Ed25519 identity key (signs per-section keys and releases).
        CustodianIdentity = "custodian_identity",
        /// An expert's Ed25519 identity key (signs scores and the report).
        ExpertIdentity = "expert_identity",
        /// A supervisor's Ed25519 identity key (countersigns records and incident rulings).
        SupervisorIdentity = "supervisor_identity",
    }
}

text_enum! {
    pub enum KeyAlgorithm {
        Ed25519 = "ed25519",
        X25519 = "x25519",
    }
}

impl KeyPurpose {
    pub fn algorithm(self) -> KeyAlgorithm {
        match self {
            KeyPurpose::BidderEncryption => KeyAlgorithm::X25519,
            _ => KeyAlgorithm::Ed25519,
        }
    }
    /// The role that registers keys of this purpose.
    pub fn role(self) -> Role {
        match self {
            KeyPurpose::BidderSigning | KeyPurpose::BidderEncryption => Role::Bidder,
            KeyPurpose::CustodianIdentity => Role::Custodian,
            KeyPurpose::ExpertIdentity => Role::Expert,
            KeyPurpose::SupervisorIdentity => Role::Supervisor,
        }
    }
    /// Bidder keys belong to the organisation; identity keys to the person.
    pub fn owned_by_org(self) -> bool {
        self.role() == Role::Bidder
    }
}

/// A login name: 3–64 characters of `a-z 0-9 . _ -`, stored lower-case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Username(String);

impl Username {
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        let s = s.trim().to_ascii_lowercase();
        if !(3..=64).contains(&s.len()) {
            return Err("must be 3 to 64 characters");
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        {
            return Err("may contain only letters, digits, '.', '_' and '-'");
        }
        Ok(Self(s))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An e-mail address, checked for shape only (delivery proves the rest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        let s = s.trim();
        let ok = s.len() <= 254
            && s.parse::<lettre::Address>().is_ok()
            && s.rsplit_once('@')
                .is_some_and(|(_, d)| d.contains('.') || d == "localhost");
        if ok {
            Ok(Self(s.to_string()))
        } else {
            Err("is not a valid e-mail address")
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Password policy: 10–256 characters. Length beats composition rules
/// (NIST SP 800-63B); the check against breached lists is left to the IdP of
/// a later release.
pub fn check_password(p: &str) -> Result<(), &'static str> {
    let n = p.chars().count();
    if n < 10 {
        return Err("must be at least 10 characters");
    }
    if n > 256 {
        return Err("must be at most 256 characters");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_and_emails() {
        assert_eq!(Username::parse(" Host.Li ").unwrap().as_str(), "host.li");
        assert!(Username::parse("ab").is_err());
        assert!(Username::parse("张三丰").is_err());
        assert!(Email::parse("li@centre.example.cn").is_ok());
        assert!(Email::parse("not-an-address").is_err());
        assert!(Email::parse("a@b").is_err());
        assert!(check_password("short").is_err());
        assert!(check_password("a sufficiently long passphrase").is_ok());
    }

    #[test]
    fn bidders_are_never_custodians() {
        assert!(!Role::Custodian
            .allowed_org_kinds()
            .contains(&OrgKind::Bidder));
        assert_eq!(Role::Bidder.allowed_org_kinds(), &[OrgKind::Bidder]);
    }
}
