//! Trading centres and expert passes (DESIGN §6). A centre has a code, a name
//! and an Ed25519 key. An expert signs in at the home centre, which issues a
//! short-lived pass bound to the expert's own key and to one section; the host
//! centre admits passes signed by centres it trusts — the keys configured as
//! files under `keys/centres/` — and by itself.
//!
//! A centre's public file (`kaibiao centre export`), its registration signed
//! by the centre itself (PROTOCOL §14.1):
//! `{"format":"kaibiao-centre/2","code":"…","name":"…","public_key":"<hex>","signature":"<hex>"}`,
//! the signature made with the label `kaibiao/centre-registration/v1` over
//! the canonical JSON of the other four fields. The platform cannot make one
//! for a key it does not hold, nor change a centre's name or code in it.
//! A pass: `{"pass":{…body…},"signature":"<hex>"}`, the signature made with
//! the label `kaibiao/expert-pass/v1` over the body's canonical JSON.

use std::collections::BTreeMap;
use std::path::Path;

use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::crypto::{jcs, sign};

pub const CENTRE_FORMAT: &str = "kaibiao-centre/2";
pub const PASS_FORMAT: &str = "expert-pass/1";
pub const PASS_LABEL: &str = "kaibiao/expert-pass/v1";
/// The longest a pass may live: one working day.
pub const MAX_LIFETIME_MS: i64 = 12 * 3600 * 1000;
/// Clock skew tolerated between centres when a pass starts.
pub const SKEW_MS: i64 = 2 * 60 * 1000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Centre {
    pub format: String,
    pub code: String,
    pub name: String,
    pub public_key: String,
    /// The centre's own signature over its registration ([`Centre::statement`]);
    /// missing in a `kaibiao-centre/1` file, which is then refused by name.
    #[serde(default)]
    pub signature: String,
}

impl Centre {
    /// The registration of centre `code` named `name`, signed with its key.
    pub fn signed(code: &str, name: &str, key: &SigningKey) -> Self {
        let mut c = Self {
            format: CENTRE_FORMAT.into(),
            code: code.into(),
            name: name.into(),
            public_key: hex::encode(key.verifying_key().as_bytes()),
            signature: String::new(),
        };
        c.signature = hex::encode(sign::sign(
            key,
            sign::domain::CENTRE_REGISTRATION,
            c.statement().as_bytes(),
        ));
        c
    }

    /// What the centre signs: the canonical JSON of its format, code, name
    /// and key (everything but the signature).
    pub fn statement(&self) -> String {
        let body = serde_json::json!({
            "format": self.format,
            "code": self.code,
            "name": self.name,
            "public_key": self.public_key,
        });
        String::from_utf8(jcs::canonicalize(&body).expect("strings only")).expect("JCS is UTF-8")
    }

    /// Checks the registration: its format, code and key, and the centre's
    /// signature over it with that key. Returns the key.
    pub fn check(&self) -> Result<VerifyingKey, String> {
        if self.format != CENTRE_FORMAT {
            return Err(format!(
                "format must be {CENTRE_FORMAT:?} (a centre's registration signed by the centre: re-export it with `kaibiao centre export`)"
            ));
        }
        if !Self::valid_code(&self.code) {
            return Err(format!(
                "{:?} is not a centre code (A-Z, 0-9, '-')",
                self.code
            ));
        }
        if self.name.trim().is_empty() {
            return Err("the centre's name is empty".into());
        }
        let key = sign::parse_public(&self.public_key).map_err(|e| e.to_string())?;
        let sig: [u8; 64] = crate::crypto::hex_array(&self.signature)
            .ok_or("the centre's signature is not 64 bytes of lower-case hex")?;
        sign::verify(
            &key,
            sign::domain::CENTRE_REGISTRATION,
            self.statement().as_bytes(),
            &sig,
        )
        .map_err(|_| {
            format!(
                "centre {}: the registration is not signed by the centre's key (its file was altered or signed by someone else)",
                self.code
            )
        })?;
        Ok(key)
    }

    /// The key's fingerprint, by which a centre is pinned: SHA-256 of the
    /// raw 32-byte Ed25519 public key, lower-case hex.
    pub fn fingerprint(&self) -> String {
        match crate::crypto::from_hex(&self.public_key) {
            Some(raw) => crate::crypto::sha256_hex(&raw),
            None => String::new(),
        }
    }

    /// A centre code: 2–32 characters of A-Z, 0-9 and '-'.
    pub fn valid_code(code: &str) -> bool {
        (2..=32).contains(&code.len())
            && code
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
    }
}

/// The centres whose passes this centre admits, by code.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    centres: BTreeMap<String, (Centre, VerifyingKey)>,
}

#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {why}")]
    Bad { path: String, why: String },
}

impl Trust {
    /// Trusts centre `c` once its registration checks ([`Centre::check`]).
    pub fn add(&mut self, c: Centre) -> Result<(), String> {
        let key = c.check()?;
        if let Some((old, _)) = self.centres.get(&c.code) {
            if old.public_key != c.public_key {
                return Err(format!(
                    "centre {} is configured twice with different keys",
                    c.code
                ));
            }
        }
        self.centres.insert(c.code.clone(), (c, key));
        Ok(())
    }

    /// Every `*.json` file in `dir` (a missing directory trusts nobody).
    pub fn load_dir(dir: &Path) -> Result<Self, TrustError> {
        let mut t = Self::default();
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(t),
            Err(source) => {
                return Err(TrustError::Io {
                    path: dir.display().to_string(),
                    source,
                })
            }
        };
        let mut paths: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        paths.sort();
        for p in paths {
            let path = p.display().to_string();
            let text = std::fs::read_to_string(&p).map_err(|source| TrustError::Io {
                path: path.clone(),
                source,
            })?;
            let c: Centre = serde_json::from_str(&text).map_err(|e| TrustError::Bad {
                path: path.clone(),
                why: e.to_string(),
            })?;
            t.add(c).map_err(|why| TrustError::Bad { path, why })?;
        }
        Ok(t)
    }

    pub fn get(&self, code: &str) -> Option<&Centre> {
        self.centres.get(code).map(|(c, _)| c)
    }

    /// Every trusted centre, by code.
    pub fn centres(&self) -> Vec<Centre> {
        self.centres.values().map(|(c, _)| c.clone()).collect()
    }

    pub fn codes(&self) -> impl Iterator<Item = &str> {
        self.centres.keys().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.centres.len()
    }

    pub fn is_empty(&self) -> bool {
        self.centres.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PassBody {
    pub format: String,
    /// The issuing (home) centre's code.
    pub centre: String,
    /// The expert's id in the pool.
    pub expert_id: String,
    /// The expert's own Ed25519 key (hex): everything the expert does in the
    /// room is signed with it.
    pub expert_key: String,
    pub section_id: String,
    pub issued_at_ms: i64,
    pub expires_at_ms: i64,
}

impl PassBody {
    /// A pass from `centre` for its expert `expert_id` holding `expert_key`
    /// (hex), to sit on section `section_id` from `now_ms` for `minutes`.
    pub fn new(
        centre: &str,
        expert_id: &str,
        expert_key: &str,
        section_id: &str,
        now_ms: i64,
        minutes: i64,
    ) -> PassBody {
        PassBody {
            format: PASS_FORMAT.into(),
            centre: centre.into(),
            expert_id: expert_id.into(),
            expert_key: expert_key.into(),
            section_id: section_id.into(),
            issued_at_ms: now_ms,
            expires_at_ms: now_ms + minutes * 60_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Pass {
    pub pass: PassBody,
    pub signature: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PassError {
    #[error("not an expert pass ({0})")]
    Format(String),
    #[error("the pass is issued by centre {0:?}, which this centre does not trust")]
    Untrusted(String),
    #[error("the pass's signature does not verify with centre {0}'s key")]
    Signature(String),
    #[error("the pass has expired")]
    Expired,
    #[error("the pass is not valid yet")]
    NotYet,
    #[error("the pass lives longer than 12 hours")]
    TooLong,
    #[error("the pass is for another section")]
    OtherSection,
}

fn body_bytes(b: &PassBody) -> Vec<u8> {
    jcs::to_vec(b).expect("a pass is plain JSON")
}

/// Issues a pass (the home centre's side).
pub fn issue(centre_key: &SigningKey, body: PassBody) -> Pass {
    let sig = sign::sign(centre_key, PASS_LABEL, &body_bytes(&body));
    Pass {
        pass: body,
        signature: hex::encode(sig),
    }
}

/// Admits a pass (the host centre's side): trusted issuer, good signature,
/// well formed, for `section_id`, valid at `now_ms`.
pub fn admit<'a>(
    p: &'a Pass,
    trust: &Trust,
    section_id: &str,
    now_ms: i64,
) -> Result<&'a PassBody, PassError> {
    let b = &p.pass;
    if b.format != PASS_FORMAT {
        return Err(PassError::Format(format!("format must be {PASS_FORMAT:?}")));
    }
    let (_, key) = trust
        .centres
        .get(&b.centre)
        .ok_or_else(|| PassError::Untrusted(b.centre.clone()))?;
    let sig = crate::crypto::from_hex(&p.signature)
        .ok_or(())
        .map_err(|_| PassError::Signature(b.centre.clone()))?;
    sign::verify(key, PASS_LABEL, &body_bytes(b), &sig)
        .map_err(|_| PassError::Signature(b.centre.clone()))?;
    sign::parse_public(&b.expert_key).map_err(|e| PassError::Format(format!("expert_key: {e}")))?;
    if b.expires_at_ms - b.issued_at_ms > MAX_LIFETIME_MS || b.expires_at_ms <= b.issued_at_ms {
        return Err(PassError::TooLong);
    }
    if now_ms >= b.expires_at_ms {
        return Err(PassError::Expired);
    }
    if now_ms + SKEW_MS < b.issued_at_ms {
        return Err(PassError::NotYet);
    }
    if b.section_id != section_id {
        return Err(PassError::OtherSection);
    }
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (SigningKey, Trust, PassBody) {
        let k = sign::generate();
        let mut t = Trust::default();
        t.add(Centre::signed("GZ-GGZY", "广州公共资源交易中心", &k))
            .unwrap();
        let expert = sign::generate();
        let key = hex::encode(expert.verifying_key().as_bytes());
        let body = PassBody::new("GZ-GGZY", "E001", &key, "sec_1", 1_000_000, 60);
        (k, t, body)
    }

    #[test]
    fn a_pass_from_a_trusted_centre_is_admitted() {
        let (k, t, body) = setup();
        let p = issue(&k, body.clone());
        assert_eq!(admit(&p, &t, "sec_1", 1_000_001).unwrap(), &body);
        // It survives a JSON round trip (the wire form).
        let back: Pass = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert!(admit(&back, &t, "sec_1", 1_000_001).is_ok());
    }

    #[test]
    fn every_bad_pass_is_refused_with_its_reason() {
        let (k, t, body) = setup();
        let p = issue(&k, body.clone());
        assert_eq!(
            admit(&p, &t, "sec_2", 1_000_001),
            Err(PassError::OtherSection)
        );
        assert_eq!(
            admit(&p, &t, "sec_1", body.expires_at_ms),
            Err(PassError::Expired)
        );
        assert!(admit(&p, &t, "sec_1", body.expires_at_ms - 1).is_ok());
        assert_eq!(
            admit(&p, &t, "sec_1", body.issued_at_ms - SKEW_MS - 1),
            Err(PassError::NotYet)
        );
        // Signed by a centre nobody configured.
        let stranger = sign::generate();
        let mut other = body.clone();
        other.centre = "XX-UNKNOWN".into();
        let p2 = issue(&stranger, other);
        assert_eq!(
            admit(&p2, &t, "sec_1", 1_000_001),
            Err(PassError::Untrusted("XX-UNKNOWN".into()))
        );
        // Claiming a trusted centre but signed with another key.
        let p3 = issue(&stranger, body.clone());
        assert_eq!(
            admit(&p3, &t, "sec_1", 1_000_001),
            Err(PassError::Signature("GZ-GGZY".into()))
        );
        // Altered after signing: another section, a longer life.
        let mut p4 = p.clone();
        p4.pass.section_id = "sec_2".into();
        assert_eq!(
            admit(&p4, &t, "sec_2", 1_000_001),
            Err(PassError::Signature("GZ-GGZY".into()))
        );
        let mut long = body;
        long.expires_at_ms = long.issued_at_ms + MAX_LIFETIME_MS + 1;
        assert_eq!(
            admit(&issue(&k, long), &t, "sec_1", 1_000_001),
            Err(PassError::TooLong)
        );
    }

    #[test]
    fn trust_files_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let k = sign::generate();
        let c = Centre::signed("SZ-GGZY", "深圳", &k);
        std::fs::write(
            dir.path().join("sz.json"),
            serde_json::to_string(&c).unwrap(),
        )
        .unwrap();
        std::fs::write(dir.path().join("README.md"), "not a centre").unwrap();
        let t = Trust::load_dir(dir.path()).unwrap();
        assert_eq!(t.codes().collect::<Vec<_>>(), ["SZ-GGZY"]);
        let mut bad = c.clone();
        bad.code = "lower".into();
        std::fs::write(
            dir.path().join("bad.json"),
            serde_json::to_string(&bad).unwrap(),
        )
        .unwrap();
        let e = Trust::load_dir(dir.path()).unwrap_err().to_string();
        assert!(e.contains("bad.json") && e.contains("centre code"), "{e}");
        std::fs::remove_file(dir.path().join("bad.json")).unwrap();
        let refused = |text: String, why: &str| {
            std::fs::write(dir.path().join("bad.json"), text).unwrap();
            let e = Trust::load_dir(dir.path()).unwrap_err().to_string();
            assert!(e.contains("bad.json") && e.contains(why), "{e}");
        };
        // The old unsigned file: no countersignature by the centre.
        refused(
            serde_json::json!({"format": "kaibiao-centre/1", "code": "GZ-GGZY",
                "name": "广州", "public_key": c.public_key})
            .to_string(),
            "re-export it",
        );
        // Renamed after the centre signed it.
        let mut renamed = Centre::signed("GZ-GGZY", "广州", &sign::generate());
        renamed.name = "广州公共资源交易中心".into();
        refused(
            serde_json::to_string(&renamed).unwrap(),
            "not signed by the centre's key",
        );
        // Re-signed: a key the file names, signed by someone else.
        let mut resigned = Centre::signed("GZ-GGZY", "广州", &sign::generate());
        resigned.public_key = c.public_key.clone();
        refused(
            serde_json::to_string(&resigned).unwrap(),
            "not signed by the centre's key",
        );
        let mut upper = Centre::signed("GZ-GGZY", "广州", &sign::generate());
        upper.signature = upper.signature.to_uppercase();
        refused(serde_json::to_string(&upper).unwrap(), "lower-case hex");
        std::fs::remove_file(dir.path().join("bad.json")).unwrap();
        assert!(Trust::load_dir(&dir.path().join("missing"))
            .unwrap()
            .is_empty());
    }
}
