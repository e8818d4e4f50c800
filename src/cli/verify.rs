//! `kaibiao transcript export` and `kaibiao verify`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Subcommand;

use crate::client::Client;
use crate::evaluation::pass::Centre;
use crate::transcript::{self, Transcript};

#[derive(Subcommand)]
pub enum TranscriptCommand {
    /// Fetch a sealed section's transcript into one self-contained file.
    Export {
        #[arg(long)]
        section: String,
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        server: String,
        /// Default: `transcript-<section>.json`.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

pub fn transcript(cmd: TranscriptCommand) -> anyhow::Result<()> {
    match cmd {
        TranscriptCommand::Export {
            section,
            server,
            out,
        } => {
            let out = out.unwrap_or_else(|| PathBuf::from(format!("transcript-{section}.json")));
            actix_web::rt::System::new().block_on(async {
                let t: Transcript = Client::new(&server)
                    .get(&format!("/api/public/sections/{section}/transcript"))
                    .await?;
                std::fs::write(&out, serde_json::to_vec_pretty(&t)?)?;
                println!("wrote {}", out.display());
                anyhow::Ok(())
            })
        }
    }
}

/// Checks a transcript file; `Err` carries the reason it is not valid.
pub fn verify_file(path: &Path) -> anyhow::Result<transcript::Summary> {
    transcript::verify(&load(path)?).map_err(|e| anyhow::anyhow!("INVALID: {e}"))
}

fn load(path: &Path) -> anyhow::Result<Transcript> {
    let bytes =
        std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    serde_json::from_slice(&bytes).map_err(|e| anyhow::anyhow!("not a kaibiao transcript: {e}"))
}

/// `CODE=FINGERPRINT` pairs, as `kaibiao verify --pin` takes them.
pub fn parse_pins(pins: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for p in pins {
        let (code, fpr) = p
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--pin {p:?}: write CODE=FINGERPRINT"))?;
        anyhow::ensure!(
            Centre::valid_code(code),
            "--pin {p:?}: the centre code is 2-32 characters of A-Z, 0-9 and '-'"
        );
        anyhow::ensure!(
            fpr.len() == 64 && crate::crypto::from_hex(fpr).is_some(),
            "--pin {p:?}: the fingerprint is 64 lower-case hex digits (SHA-256 of the centre's key)"
        );
        anyhow::ensure!(
            out.insert(code.to_string(), fpr.to_string()).is_none(),
            "--pin: centre {code} is pinned twice"
        );
    }
    Ok(out)
}

pub fn verify(path: &Path, pins: &[String]) -> anyhow::Result<()> {
    let pins = parse_pins(pins)?;
    let t = load(path)?;
    let s = transcript::verify(&t).map_err(|e| anyhow::anyhow!("INVALID: {e}"))?;
    if !pins.is_empty() {
        let n = transcript::check_pins(&t, &pins).map_err(|e| anyhow::anyhow!("INVALID: {e}"))?;
        println!("VALID: centres — {n} centre key(s) of the draw match the pins given");
    }
    println!(
        "VALID: section {} — {} parameter version(s), {} bid envelope(s), {} accepted, {} late attempt(s), manifest root {}, {} log entries checked against the signed checkpoint",
        s.section_id, s.params_versions, s.bids, s.accepted, s.late_attempts, s.manifest_root, s.log_entries
    );
    match &s.opening {
        Some(o) => println!(
            "VALID: opening — record {} {}: {} key release(s) checked against the registered keys, {} bid(s) re-decrypted to the announced values, {} revoked, {} withdrawn; {} confirmation(s), {} objection(s); {}",
            o.record_hash,
            o.outcome,
            o.key_releases,
            o.decrypted,
            o.revoked,
            o.withdrawn,
            o.confirmations,
            o.objections,
            match (o.closed, o.countersigned) {
                (true, true) => "closed by the platform and countersigned by the supervisor",
                (true, false) => "closed by the platform, not yet countersigned",
                _ => "not closed yet",
            }
        ),
        None => println!("(the opening has not been announced yet)"),
    }
    match &s.evaluation {
        Some(e) => println!(
            "VALID: evaluation — the seed mixed from the platform's and {} committed value(s) ({}{}); a committee of {} drawn again from it and the pool snapshot ({} skipped for a conflict); {} review(s) and {} score(s) checked against the members' passes; {} recusal(s), {} outlier confirmation(s) and {} clarification(s) re-checked; the result recomputed, {} candidate(s); {} dissent(s), {} deemed agreeing; {}",
            e.contributors.len(),
            e.contributors.join(", "),
            if e.withheld.is_empty() {
                String::new()
            } else {
                format!("; withheld: {}", e.withheld.join(", "))
            },
            e.committee,
            e.skipped_for_conflict,
            e.reviews,
            e.scores,
            e.recusals,
            e.outlier_confirmations,
            e.clarifications,
            e.candidates.len(),
            e.dissents,
            e.deemed_agreed,
            match &e.awarded {
                Some(org) => format!("awarded to {org}"),
                None => "not awarded yet".to_string(),
            }
        ),
        None => println!("(no evaluation result has been published yet)"),
    }
    Ok(())
}
