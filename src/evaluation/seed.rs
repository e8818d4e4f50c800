//! The draw's seed, which no single party picks (PROTOCOL §14.2).
//!
//! Before the host asks for the draw, every contributor — the supervisor of
//! record and each partner centre the committee is drawn from — commits to
//! a 32-byte value of its own by a signed [`ContributionStatement`]. The
//! host's request then fixes the pool snapshot, the parties to avoid and
//! the platform's own seed (by its commitment, [`super::draw::seed_commitment`]),
//! and opens a time to reveal. The contributors reveal their values; the
//! seed the draw uses is [`mix`] of the platform's seed and every value in
//! the contributors' order, a withheld value counting as 32 zero bytes.
//!
//! Why nobody steers it: every value is committed before the snapshot is
//! fixed and the platform's seed before any value is revealed, and the
//! platform's seed stays secret until the result is published — so a
//! contributor deciding whether to reveal cannot compute either outcome,
//! and the platform, bound by its commitment, cannot try seeds. What is
//! left — the platform and a contributor colluding — is stated in
//! docs/SECURITY.md.

use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::crypto::{sha256, sha256_hex, sign};

/// The label of a contributor's signature on its [`ContributionStatement`].
pub const CONTRIBUTION_LABEL: &str = "kaibiao/draw-contribution/v1";
/// The label of a value's commitment ([`value_commitment`]).
pub const VALUE_LABEL: &str = "kaibiao/draw-contribution-value/v1";
/// The label of the mixed seed ([`mix`]).
pub const MIX_LABEL: &str = "kaibiao/draw-seed-mix/v1";
/// The label under which `kaibiao supervisor` and `kaibiao centre` derive a
/// value from the contributor's key ([`derive_value`]), so that nothing has
/// to be kept between committing and revealing.
pub const SECRET_LABEL: &str = "kaibiao/draw-contribution-secret/v1";

/// The supervisor of record: the one who countersigned the opening record.
pub const SUPERVISOR: &str = "supervisor";

/// The party name of a partner centre: `centre:` and its code.
pub fn centre_party(code: &str) -> String {
    format!("centre:{code}")
}

/// The centre code a party names, if it names one.
pub fn party_centre(party: &str) -> Option<&str> {
    party.strip_prefix("centre:")
}

/// The contributors to a draw from `centres`, in the order their values
/// are mixed: the supervisor, then every centre but this one (`own`) by
/// code.
pub fn contributors(centres: &[String], own: &str) -> Vec<String> {
    let mut codes: Vec<&str> = centres
        .iter()
        .map(String::as_str)
        .filter(|c| *c != own)
        .collect();
    codes.sort_unstable();
    codes.dedup();
    std::iter::once(SUPERVISOR.to_string())
        .chain(codes.into_iter().map(centre_party))
        .collect()
}

/// What a contributor signs before the draw: its commitment to a value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContributionStatement {
    pub section_id: String,
    /// `supervisor` or `centre:{code}`.
    pub party: String,
    /// [`value_commitment`] of the value, hex.
    pub commitment: String,
}

/// `SHA-256(VALUE_LABEL || 0x00 || value)`, hex.
pub fn value_commitment(value: &[u8; 32]) -> String {
    let mut m = VALUE_LABEL.as_bytes().to_vec();
    m.push(0);
    m.extend_from_slice(value);
    sha256_hex(&m)
}

/// A value only the holder of `key` can compute, different per section:
/// `SHA-256(SECRET_LABEL || 0x00 || Ed25519(key, SECRET_LABEL, section_id))`.
/// Ed25519 signing is deterministic, so the same key gives the same value
/// at commit and at reveal. A convenience of the tools, not a rule of the
/// protocol: any value committed to will do.
pub fn derive_value(key: &SigningKey, section_id: &str) -> [u8; 32] {
    let sig = sign::sign(key, SECRET_LABEL, section_id.as_bytes());
    let mut m = SECRET_LABEL.as_bytes().to_vec();
    m.push(0);
    m.extend_from_slice(&sig);
    sha256(&m)
}

/// The draw's seed: `SHA-256(MIX_LABEL || 0x00 || platform_seed || v_1 ||
/// … || v_n)` over the contributors' values in their order, a withheld one
/// (`None`) as 32 zero bytes.
pub fn mix(platform_seed: &[u8; 32], values: &[Option<[u8; 32]>]) -> [u8; 32] {
    let mut m = MIX_LABEL.as_bytes().to_vec();
    m.push(0);
    m.extend_from_slice(platform_seed);
    for v in values {
        m.extend_from_slice(v.as_ref().unwrap_or(&[0u8; 32]));
    }
    sha256(&m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_depends_on_every_party() {
        let p = [1u8; 32];
        let values = [Some([2u8; 32]), Some([3u8; 32]), Some([4u8; 32])];
        let seed = mix(&p, &values);
        assert_ne!(mix(&[9u8; 32], &values), seed, "the platform's seed counts");
        for i in 0..values.len() {
            let mut other = values;
            other[i] = Some([7u8; 32]);
            assert_ne!(mix(&p, &other), seed, "value {i} counts");
            let mut withheld = values;
            withheld[i] = None;
            assert_ne!(mix(&p, &withheld), seed, "withholding value {i} counts");
        }
        // Order matters: a value cannot be moved to another contributor.
        let swapped = [values[1], values[0], values[2]];
        assert_ne!(mix(&p, &swapped), seed);
        // A contributor cannot be dropped.
        assert_ne!(mix(&p, &values[..2]), seed);
    }

    #[test]
    fn the_mix_is_the_documented_hash() {
        let p = [1u8; 32];
        let v = [0xabu8; 32];
        let mut m = b"kaibiao/draw-seed-mix/v1\0".to_vec();
        m.extend_from_slice(&p);
        m.extend_from_slice(&v);
        m.extend_from_slice(&[0u8; 32]);
        assert_eq!(mix(&p, &[Some(v), None]), sha256(&m));
    }

    #[test]
    fn a_commitment_binds_its_value() {
        let a = value_commitment(&[5u8; 32]);
        assert_eq!(a.len(), 64);
        assert_ne!(a, value_commitment(&[6u8; 32]));
        let mut m = b"kaibiao/draw-contribution-value/v1\0".to_vec();
        m.extend_from_slice(&[5u8; 32]);
        assert_eq!(a, sha256_hex(&m));
    }

    #[test]
    fn derived_values_are_per_key_and_per_section_and_repeatable() {
        let (k1, k2) = (sign::generate(), sign::generate());
        assert_eq!(derive_value(&k1, "sec_a"), derive_value(&k1, "sec_a"));
        assert_ne!(derive_value(&k1, "sec_a"), derive_value(&k1, "sec_b"));
        assert_ne!(derive_value(&k1, "sec_a"), derive_value(&k2, "sec_a"));
    }

    #[test]
    fn contributors_are_the_supervisor_then_the_other_centres_by_code() {
        let centres = ["SZ".to_string(), "HOME".into(), "GZ".into(), "SZ".into()];
        assert_eq!(
            contributors(&centres, "HOME"),
            ["supervisor", "centre:GZ", "centre:SZ"]
        );
        assert_eq!(contributors(&["HOME".into()], "HOME"), ["supervisor"]);
        assert_eq!(party_centre("centre:GZ"), Some("GZ"));
        assert_eq!(party_centre("supervisor"), None);
    }
}
