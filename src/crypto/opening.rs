//! The signed statements of the opening (开标), shared by the server, the
//! clients and the offline verifier. Each is a JSON object in canonical form
//! (JCS), signed with Ed25519 over `label || 0x00 || JCS(statement)`; the
//! labels are in [`label`] and `docs/PROTOCOL.md` lists every field.
//!
//! - [`KeyRelease`]: a custodian hands over its per-section X25519 secret
//!   key, signed with its identity key.
//! - [`Confirmation`]: a bidder confirms the opening record (by its hash),
//!   signed with the organisation's bid-signing key.
//! - [`IncidentRuling`]: the supervisor countersigns a platform fault the
//!   host declared.
//! - The opening record (开标记录) is any JSON object; its hash is
//!   `SHA-256(JCS(record))`. The closing statement binds that hash with the
//!   confirmations, objections and answers; the platform signs it and the
//!   supervisor countersigns it ([`Closing`]).

use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{jcs, sign, x25519};
use crate::domain::section::{DecryptionMode, SummaryField};
use crate::domain::states::{DecryptedVia, Fault, OpeningStatus, RecordOutcome};

pub mod label {
    pub const KEY_RELEASE: &str = "kaibiao/opening/v1/key-release";
    pub const CONFIRMATION: &str = "kaibiao/opening/v1/confirmation";
    pub const INCIDENT: &str = "kaibiao/opening/v1/incident-ruling";
    pub const CLOSING: &str = "kaibiao/opening/v1/closing";
    pub const COUNTERSIGNATURE: &str = "kaibiao/opening/v1/countersignature";
}

pub const KEY_RELEASE_FORMAT: &str = "kaibiao-key-release/1";
pub const CONFIRMATION_FORMAT: &str = "kaibiao-opening-confirmation/1";
pub const INCIDENT_FORMAT: &str = "kaibiao-incident-ruling/1";
pub const RECORD_FORMAT: &str = "kaibiao-opening-record/1";
pub const CLOSING_FORMAT: &str = "kaibiao-opening-closing/1";

fn sign_json<T: Serialize>(key: &SigningKey, label: &str, v: &T) -> String {
    hex::encode(sign::sign(key, label, &jcs::to_vec(v).expect("plain JSON")))
}

fn verify_json<T: Serialize>(public_hex: &str, label: &str, v: &T, sig_hex: &str) -> bool {
    jcs::to_vec(v)
        .map(|m| sign::verify_hex(public_hex, label, &m, sig_hex).is_ok())
        .unwrap_or(false)
}

/// The hash of a JSON document as kaibiao names it: SHA-256 of its JCS form.
pub fn json_hash(v: &Value) -> String {
    super::sha256_hex(&jcs::canonicalize(v).expect("plain JSON"))
}

// ------------------------------------------------------------- key release

/// A custodian's release of its per-section key at the opening.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyRelease {
    pub format: String,
    pub section_id: String,
    pub custodian: String,
    pub position: u32,
    /// The registered X25519 public key this secret belongs to.
    pub public_key: String,
    /// The X25519 secret key, hex.
    pub secret_key: String,
    /// The custodian's Ed25519 identity key that signs this release.
    pub identity_key: String,
    pub released_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignedKeyRelease {
    pub release: KeyRelease,
    pub signature: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReleaseError {
    #[error("unknown release format")]
    Format,
    #[error("the release is for another section")]
    Section,
    #[error("the secret key is not 32 bytes of hex")]
    Encoding,
    #[error("the secret key does not belong to the registered public key")]
    KeyMismatch,
    #[error("the signature by the custodian's identity key does not verify")]
    Signature,
}

impl SignedKeyRelease {
    pub fn sign(release: KeyRelease, identity: &SigningKey) -> Self {
        let signature = sign_json(identity, label::KEY_RELEASE, &release);
        Self { release, signature }
    }

    /// The statement is well formed, its secret matches `public_key`, and the
    /// identity key signed it. The caller checks that `public_key` and
    /// `identity_key` are the ones registered for that position.
    pub fn verify(&self, section_id: &str) -> Result<x25519::SecretKey, ReleaseError> {
        let r = &self.release;
        if r.format != KEY_RELEASE_FORMAT {
            return Err(ReleaseError::Format);
        }
        if r.section_id != section_id {
            return Err(ReleaseError::Section);
        }
        let sk: [u8; 32] = super::hex_array(&r.secret_key).ok_or(ReleaseError::Encoding)?;
        let sk = x25519::SecretKey::from_bytes(sk);
        if hex::encode(sk.public_key()) != r.public_key {
            return Err(ReleaseError::KeyMismatch);
        }
        if !verify_json(&r.identity_key, label::KEY_RELEASE, r, &self.signature) {
            return Err(ReleaseError::Signature);
        }
        Ok(sk)
    }
}

// ------------------------------------------------------------ confirmation

/// A bidder's confirmation of the opening record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Confirmation {
    pub format: String,
    pub section_id: String,
    pub bidder: String,
    pub record_hash: String,
}

impl Confirmation {
    pub fn new(section_id: &str, bidder: &str, record_hash: &str) -> Self {
        Self {
            format: CONFIRMATION_FORMAT.into(),
            section_id: section_id.into(),
            bidder: bidder.into(),
            record_hash: record_hash.into(),
        }
    }
    pub fn sign(&self, key: &SigningKey) -> String {
        sign_json(key, label::CONFIRMATION, self)
    }
    pub fn verify(&self, signer_hex: &str, sig_hex: &str) -> bool {
        self.format == CONFIRMATION_FORMAT
            && verify_json(signer_hex, label::CONFIRMATION, self, sig_hex)
    }
}

// -------------------------------------------------------------- incidents

/// What the supervisor countersigns when it upholds a declared platform
/// fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentRuling {
    pub format: String,
    pub section_id: String,
    pub incident_id: String,
    pub reason: String,
    /// The bidders the fault affected (organisation ids); empty = all.
    pub bidders: Vec<String>,
    pub declared_at_ms: i64,
}

impl IncidentRuling {
    pub fn sign(&self, key: &SigningKey) -> String {
        sign_json(key, label::INCIDENT, self)
    }
    pub fn verify(&self, signer_hex: &str, sig_hex: &str) -> bool {
        self.format == INCIDENT_FORMAT && verify_json(signer_hex, label::INCIDENT, self, sig_hex)
    }
}

// ------------------------------------------------------------------ record

/// The opening record (开标记录, `kaibiao-opening-record/1`): what the
/// announcement (唱标) read out, bid by bid. Its hash is
/// `SHA-256(JCS(record))`; bidders confirm that hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OpeningRecord {
    pub format: String,
    pub section_id: String,
    pub section_code: String,
    pub section_name: String,
    pub project_name: String,
    pub params_hash: Option<String>,
    pub deadline_ms: Option<i64>,
    /// The Merkle root of the sealed section's manifest.
    pub manifest_root: String,
    pub decryption_mode: DecryptionMode,
    pub window_started_at_ms: Option<i64>,
    pub window_ends_at_ms: Option<i64>,
    pub summary_fields: Vec<SummaryField>,
    /// The custodians' released keys (in the transcript, in full).
    pub key_releases: Vec<RecordRelease>,
    pub bids: Vec<RecordBid>,
    pub outcome: RecordOutcome,
    pub announced_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RecordRelease {
    pub position: i32,
    pub custodian: String,
    pub released_at_ms: i64,
}

/// One bid of the opening record and what its opening found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RecordBid {
    pub envelope_hash: String,
    pub bidder: String,
    pub bidder_name: String,
    pub bid_id: String,
    pub revision: i32,
    pub status: OpeningStatus,
    pub fault: Option<Fault>,
    pub reason: Option<String>,
    pub via: Option<DecryptedVia>,
    /// The 开标一览表 as decrypted (decimal strings); none when not announced.
    pub summary: Option<std::collections::BTreeMap<String, String>>,
    pub settled_at_ms: Option<i64>,
}

impl OpeningRecord {
    /// `SHA-256(JCS(record))`, hex.
    pub fn hash(&self) -> String {
        super::sha256_hex(&jcs::to_vec(self).expect("plain JSON"))
    }
    /// The canonical text.
    pub fn canonical(&self) -> String {
        String::from_utf8(jcs::to_vec(self).expect("plain JSON")).expect("JCS is UTF-8")
    }
}

// ----------------------------------------------------------------- closing

/// The closing statement over the opening record: signed by the platform
/// (`label::CLOSING`), then countersigned by the supervisor over the same
/// bytes (`label::COUNTERSIGNATURE`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Closing {
    pub format: String,
    pub section_id: String,
    pub record_hash: String,
    pub confirmations: Vec<ClosingConfirmation>,
    pub objections: Vec<ClosingObjection>,
    /// Bidders with a decrypted bid who neither confirmed nor objected
    /// (视为认可: taken as accepting the record).
    pub no_response: Vec<String>,
    pub incidents: Vec<ClosingIncident>,
    pub closed_by: String,
    pub closed_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClosingConfirmation {
    pub bidder: String,
    pub signer_key: String,
    pub signature: String,
    pub confirmed_at_ms: i64,
}

/// A platform incident declared during the window, as the closing lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClosingIncident {
    pub id: String,
    pub reason: String,
    /// The bidders it affected (organisation ids); empty = all.
    pub bidders: Vec<String>,
    pub declared_at_ms: i64,
    /// Upheld by the supervisor's countersignature.
    pub countersigned: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClosingObjection {
    pub id: String,
    pub bidder: String,
    pub text: String,
    pub raised_at_ms: i64,
    pub answer: String,
    pub answered_at_ms: i64,
}

impl Closing {
    pub fn bytes(&self) -> Vec<u8> {
        jcs::to_vec(self).expect("plain JSON")
    }
    pub fn hash(&self) -> String {
        super::sha256_hex(&self.bytes())
    }
    pub fn sign_platform(&self, key: &SigningKey) -> String {
        sign_json(key, label::CLOSING, self)
    }
    pub fn verify_platform(&self, platform_hex: &str, sig_hex: &str) -> bool {
        verify_json(platform_hex, label::CLOSING, self, sig_hex)
    }
    pub fn countersign(&self, key: &SigningKey) -> String {
        sign_json(key, label::COUNTERSIGNATURE, self)
    }
    pub fn verify_countersignature(&self, supervisor_hex: &str, sig_hex: &str) -> bool {
        verify_json(supervisor_hex, label::COUNTERSIGNATURE, self, sig_hex)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release(sk: &x25519::SecretKey, id: &SigningKey) -> KeyRelease {
        KeyRelease {
            format: KEY_RELEASE_FORMAT.into(),
            section_id: "sec_1".into(),
            custodian: "usr_1".into(),
            position: 2,
            public_key: hex::encode(sk.public_key()),
            secret_key: hex::encode(*sk.to_bytes()),
            identity_key: hex::encode(id.verifying_key().to_bytes()),
            released_at_ms: 1,
        }
    }

    #[test]
    fn a_release_binds_the_secret_to_the_public_key_and_the_identity() {
        let sk = x25519::SecretKey::generate();
        let id = sign::generate();
        let signed = SignedKeyRelease::sign(release(&sk, &id), &id);
        assert!(signed.verify("sec_1").is_ok());
        assert_eq!(signed.verify("sec_2").err().unwrap(), ReleaseError::Section);

        // Another secret under the same public key.
        let mut wrong = signed.clone();
        wrong.release.secret_key = hex::encode(*x25519::SecretKey::generate().to_bytes());
        assert_eq!(
            wrong.verify("sec_1").err().unwrap(),
            ReleaseError::KeyMismatch
        );

        // Any field changed after signing.
        let mut moved = signed.clone();
        moved.release.position = 3;
        assert_eq!(
            moved.verify("sec_1").err().unwrap(),
            ReleaseError::Signature
        );

        // Signed by someone else's identity key.
        let other = sign::generate();
        let forged = SignedKeyRelease::sign(release(&sk, &id), &other);
        assert_eq!(
            forged.verify("sec_1").err().unwrap(),
            ReleaseError::Signature
        );
    }

    #[test]
    fn a_confirmation_is_for_one_record() {
        let k = sign::generate();
        let pk = hex::encode(k.verifying_key().to_bytes());
        let c = Confirmation::new("sec_1", "org_1", "aa");
        let sig = c.sign(&k);
        assert!(c.verify(&pk, &sig));
        assert!(!Confirmation::new("sec_1", "org_1", "bb").verify(&pk, &sig));
        assert!(!Confirmation::new("sec_1", "org_2", "aa").verify(&pk, &sig));
    }

    #[test]
    fn closing_signatures_are_not_interchangeable() {
        let platform = sign::generate();
        let c = Closing {
            format: CLOSING_FORMAT.into(),
            section_id: "sec_1".into(),
            record_hash: "aa".into(),
            confirmations: vec![],
            objections: vec![],
            no_response: vec![],
            incidents: vec![],
            closed_by: "usr_1".into(),
            closed_at_ms: 5,
        };
        let pk = hex::encode(platform.verifying_key().to_bytes());
        let sig = c.sign_platform(&platform);
        assert!(c.verify_platform(&pk, &sig));
        // A platform closing signature is not a countersignature.
        assert!(!c.verify_countersignature(&pk, &sig));
    }
}
