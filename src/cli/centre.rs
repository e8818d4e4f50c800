//! `kaibiao centre …`: a trading centre's key, its public file for partner
//! centres' `keys/centres/`, and expert passes issued to its own experts.

use std::path::PathBuf;

use clap::Subcommand;
use ed25519_dalek::SigningKey;

use super::client::Passphrase;
use crate::clock::{Clock, SystemClock};
use crate::crypto::keyfile;
use crate::evaluation::pass::{self, Centre, PassBody};

#[derive(Subcommand)]
pub enum CentreCommand {
    /// Make this centre's Ed25519 key (it signs the passes of its experts).
    Keygen {
        /// The key file to write (mode 0600); refuses to overwrite.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        passphrase: Passphrase,
    },
    /// Write the centre's public file, for partner centres to put under
    /// their `keys/centres/` (their trust in this centre).
    Export {
        #[arg(long)]
        key: PathBuf,
        /// The centre's code (A-Z, 0-9, '-'), e.g. GZ-GGZY.
        #[arg(long)]
        code: String,
        #[arg(long)]
        name: String,
        /// Where to write it (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        passphrase: Passphrase,
    },
    /// Issue a pass to one of this centre's experts for one section, after
    /// the expert has signed in here; printed as JSON for the host centre.
    IssuePass {
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        code: String,
        /// The expert's id in the pool.
        #[arg(long)]
        expert: String,
        /// The expert's own Ed25519 public key, hex.
        #[arg(long)]
        expert_key: String,
        /// The host centre's section id.
        #[arg(long)]
        section: String,
        /// How long the pass lives, in minutes (at most 720).
        #[arg(long, default_value_t = 480)]
        minutes: i64,
        #[command(flatten)]
        passphrase: Passphrase,
    },
    /// Commit to this centre's value for the draw's seed of a section of
    /// the host centre (before the host asks for the draw), or with
    /// `--reveal` reveal it (after). The value is derived from the key, so
    /// nothing is kept in between.
    Contribute {
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        code: String,
        /// The host centre's section id.
        #[arg(long)]
        section: String,
        /// The host centre's platform, e.g. https://ggzy.example.cn
        #[arg(long)]
        server: String,
        #[arg(long)]
        reveal: bool,
        #[command(flatten)]
        passphrase: Passphrase,
    },
}

fn load(key: &std::path::Path, passphrase: &Passphrase) -> anyhow::Result<SigningKey> {
    let pw = passphrase.get()?;
    let (secret, _) = keyfile::read(key, "ed25519", pw.as_deref().map(|s| s.as_str()))?;
    Ok(SigningKey::from_bytes(&secret))
}

pub fn run(cmd: CentreCommand) -> anyhow::Result<()> {
    match cmd {
        CentreCommand::Keygen { out, passphrase } => {
            anyhow::ensure!(!out.exists(), "{} exists already", out.display());
            let k = crate::crypto::sign::generate();
            let pw = passphrase.get()?;
            keyfile::write(
                &out,
                "ed25519",
                k.verifying_key().as_bytes(),
                &k.to_bytes(),
                pw.as_deref().map(|s| s.as_str()),
            )?;
            println!("{}", hex::encode(k.verifying_key().as_bytes()));
            Ok(())
        }
        CentreCommand::Export {
            key,
            code,
            name,
            out,
            passphrase,
        } => {
            anyhow::ensure!(
                Centre::valid_code(&code),
                "--code: 2-32 characters of A-Z, 0-9 and '-'"
            );
            anyhow::ensure!(!name.trim().is_empty(), "--name: the centre's name");
            let k = load(&key, &passphrase)?;
            let centre = Centre::signed(&code, &name, &k);
            let text = serde_json::to_string_pretty(&centre)?;
            // The fingerprint partners pin (evaluation.centre_pins) and
            // auditors pass to `kaibiao verify --pin`.
            eprintln!("fingerprint {}={}", centre.code, centre.fingerprint());
            match out {
                Some(p) => std::fs::write(p, text + "\n")?,
                None => println!("{text}"),
            }
            Ok(())
        }
        CentreCommand::IssuePass {
            key,
            code,
            expert,
            expert_key,
            section,
            minutes,
            passphrase,
        } => {
            anyhow::ensure!(
                (1..=pass::MAX_LIFETIME_MS / 60_000).contains(&minutes),
                "--minutes: 1 to 720"
            );
            crate::crypto::sign::parse_public(&expert_key)
                .map_err(|e| anyhow::anyhow!("--expert-key: {e}"))?;
            let k = load(&key, &passphrase)?;
            let now = SystemClock.now().millis();
            let p = pass::issue(
                &k,
                PassBody::new(&code, &expert, &expert_key, &section, now, minutes),
            );
            println!("{}", serde_json::to_string_pretty(&p)?);
            Ok(())
        }
        CentreCommand::Contribute {
            key,
            code,
            section,
            server,
            reveal,
            passphrase,
        } => {
            anyhow::ensure!(
                Centre::valid_code(&code),
                "--code: 2-32 characters of A-Z, 0-9 and '-'"
            );
            let k = load(&key, &passphrase)?;
            let party = crate::evaluation::seed::centre_party(&code);
            super::client::runtime(async move {
                let c = crate::client::Client::new(&server);
                super::client::print_contribution(&c, &section, &party, &k, reveal).await
            })
        }
    }
}
