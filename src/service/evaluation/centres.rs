//! The trading centres this centre admits passes from (PROTOCOL §14.1):
//! the partner centres' registrations in `evaluation.trust_dir`, each
//! signed by its centre and held to its pin, and this centre's own; and
//! their registrations logged, each as a `centre.registered` leaf, so that
//! the key a transcript shows for a centre is one the log took before the
//! draw — not one the platform chose afterwards.

use ed25519_dalek::SigningKey;
use serde_json::json;

use crate::config::Config;
use crate::crypto::sha256_hex;
use crate::db::evaluation::{self as repo, CentreRegistrationRow};
use crate::error::AppResult;
use crate::evaluation::pass::{Centre, Trust};
use crate::service::Services;

/// The centres this centre admits passes from: the partner centres' files in
/// `evaluation.trust_dir`, and this centre itself (its passes are signed with
/// its own key, `centre_key`, never the platform's).
pub fn load_trust(config: &Config, centre_key: &SigningKey) -> anyhow::Result<Trust> {
    let e = &config.evaluation;
    let mut t = Trust::load_dir(&e.trust_dir)?;
    check_pins(&t, &e.centre_pins)?;
    t.add(Centre::signed(&e.centre_code, &e.centre_name, centre_key))
        .map_err(|why| anyhow::anyhow!("evaluation.centre_code: {why}"))?;
    Ok(t)
}

/// With any pin configured, every partner centre's key must match its pin.
fn check_pins(t: &Trust, pins: &std::collections::BTreeMap<String, String>) -> anyhow::Result<()> {
    if pins.is_empty() {
        return Ok(());
    }
    for c in t.centres() {
        match pins.get(&c.code) {
            None => anyhow::bail!(
                "evaluation.centre_pins: centre {} in the trust directory has no pin; pin its key's fingerprint or remove its file",
                c.code
            ),
            Some(pin) if *pin != c.fingerprint() => anyhow::bail!(
                "evaluation.centre_pins: the key of centre {} (fingerprint {}) is not the pinned one ({pin}); its file in the trust directory was replaced or the pin is wrong",
                c.code,
                c.fingerprint()
            ),
            Some(_) => {}
        }
    }
    Ok(())
}

/// Logs every trusted centre's registration not yet logged: a leaf
/// `{"type":"centre.registered","statement_hash","at_ms","chain"}` naming
/// the hash of the registration the centre signed (PROTOCOL §14.1), in no
/// section's chain; the signed file itself is kept beside it for the
/// transcripts. A centre already logged with the same registration is not
/// logged again; one with a new key or name is, and its earlier leaves stay.
/// Returns how many were logged.
pub async fn log_centres(svc: &Services) -> AppResult<usize> {
    let svc2 = svc.clone();
    let centres = svc.trust.centres();
    svc.db
        .write(move |c| {
            // Every node appends under the log's lock, so that two nodes
            // starting together log a registration once.
            crate::db::translog::lock(c)?;
            let now = svc2.clock.now().millis();
            let mut logged = 0;
            for centre in centres {
                let statement_hash = sha256_hex(centre.statement().as_bytes());
                if repo::centre_registration(c, &statement_hash)?.is_some() {
                    continue;
                }
                let leaf = json!({
                    "type": "centre.registered",
                    "statement_hash": statement_hash,
                    "at_ms": now,
                });
                let (idx, _) = crate::service::translog::put_leaf(
                    &svc2,
                    c,
                    &leaf,
                    "centre.registered",
                    None,
                    now,
                )?;
                repo::insert_centre_registration(
                    c,
                    &CentreRegistrationRow {
                        statement_hash,
                        code: centre.code,
                        name: centre.name,
                        public_key: centre.public_key,
                        signature: centre.signature,
                        idx: idx as i64,
                        registered_at: now,
                    },
                )?;
                logged += 1;
            }
            if logged > 0 {
                crate::service::translog::sign_checkpoint(&svc2, c, now)?;
            }
            Ok(logged)
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partner_centre_must_match_its_pin_once_any_is_set() {
        let key = crate::crypto::sign::generate();
        let gz = Centre::signed("GZ-GGZY", "广州", &key);
        let mut t = Trust::default();
        t.add(gz.clone()).unwrap();
        let mut pins = std::collections::BTreeMap::new();
        check_pins(&t, &pins).expect("no pins, nothing pinned");
        pins.insert("GZ-GGZY".to_string(), gz.fingerprint());
        check_pins(&t, &pins).expect("the pinned key");
        pins.insert("GZ-GGZY".to_string(), "00".repeat(32));
        let e = check_pins(&t, &pins).unwrap_err().to_string();
        assert!(e.contains("is not the pinned one"), "{e}");
        pins.clear();
        pins.insert("ZH-GGZY".to_string(), gz.fingerprint());
        let e = check_pins(&t, &pins).unwrap_err().to_string();
        assert!(
            e.contains("centre GZ-GGZY in the trust directory has no pin"),
            "{e}"
        );
    }

    /// The platform refuses to start on a trust directory whose file does
    /// not match its pin: `load_trust` applies the pins, not only
    /// `check_pins` alone.
    #[test]
    fn the_trust_directory_is_loaded_only_through_the_pins() {
        let dir = tempfile::tempdir().unwrap();
        let partner = crate::crypto::sign::generate();
        let gz = Centre::signed("GZ-GGZY", "广州", &partner);
        std::fs::write(
            dir.path().join("GZ-GGZY.json"),
            serde_json::to_string(&gz).unwrap(),
        )
        .unwrap();
        let mut config = Config::default();
        config.evaluation.trust_dir = dir.path().to_path_buf();
        let own = crate::crypto::sign::generate();
        config
            .evaluation
            .centre_pins
            .insert("GZ-GGZY".into(), "00".repeat(32));
        let e = load_trust(&config, &own).unwrap_err().to_string();
        assert!(e.contains("is not the pinned one"), "{e}");
        config
            .evaluation
            .centre_pins
            .insert("GZ-GGZY".into(), gz.fingerprint());
        let t = load_trust(&config, &own).unwrap();
        assert_eq!(t.len(), 2, "the partner and this centre");
        assert_eq!(
            t.get(&config.evaluation.centre_code).unwrap().public_key,
            hex::encode(own.verifying_key().as_bytes()),
            "this centre's passes are checked with its own key"
        );
    }
}
