//! The opening on the command line: a bidder's sign-in, decryption,
//! confirmation and objection; a custodian's key release; the host's
//! controls; the supervisor's key and countersignatures; and `kaibiao room
//! watch`, which prints a room's frames as they arrive.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use serde_json::Value;

use super::client::{
    encryption_key, identity_keygen, load_session, register_identity, runtime, signing_key,
    Passphrase, SessionArgs, IDENTITY_KEY, SIGNING_KEY,
};
use crate::client::opening::{own_summary, Watcher};
use crate::client::{self, ENVELOPE_FILE};
use crate::crypto::envelope::{self, SignedEnvelope};
use crate::crypto::opening::IncidentRuling;
use crate::crypto::{keyfile, x25519};

/// The file `kaibiao custodian section-key` keeps a section's key in.
pub fn section_key_file(keys: &Path, section: &str) -> PathBuf {
    keys.join(format!("section-{section}.key"))
}

fn print(v: &Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn section_of(bid: &Path) -> anyhow::Result<String> {
    let signed: SignedEnvelope = client::read_json(&bid.join(ENVELOPE_FILE))?;
    Ok(envelope::parse_signed(&signed)?.0.section_id)
}

pub fn sign_in(section: String, session: SessionArgs) -> anyhow::Result<()> {
    let (c, _) = load_session(&session)?;
    runtime(async move {
        c.sign_in(&section).await?;
        println!("signed in to the opening of {section}");
        Ok(())
    })
}

pub fn decrypt(
    bid: PathBuf,
    keys: PathBuf,
    session: SessionArgs,
    passphrase: Passphrase,
) -> anyhow::Result<()> {
    let enc = encryption_key(&keys, &passphrase)?;
    let (c, _) = load_session(&session)?;
    runtime(async move {
        let v = c.decrypt_own(&bid, &enc).await?;
        println!(
            "bid {}: {}",
            v["envelope_hash"].as_str().unwrap_or_default(),
            v["status"].as_str().unwrap_or_default()
        );
        Ok(())
    })
}

pub fn confirm(
    bid: PathBuf,
    keys: PathBuf,
    session: SessionArgs,
    passphrase: Passphrase,
) -> anyhow::Result<()> {
    let signing = signing_key(&keys, SIGNING_KEY, &passphrase)?;
    let enc = encryption_key(&keys, &passphrase)?;
    let own = own_summary(&bid, &enc)?;
    let section = section_of(&bid)?;
    let (c, _) = load_session(&session)?;
    runtime(async move {
        let org = c.my_org().await?;
        let v = c.confirm(&section, &org, &signing, Some(&own)).await?;
        println!(
            "confirmed the opening record {}",
            v["record_hash"].as_str().unwrap_or_default()
        );
        Ok(())
    })
}

pub fn object(section: String, text: String, session: SessionArgs) -> anyhow::Result<()> {
    let (c, _) = load_session(&session)?;
    runtime(async move {
        let v = c.object(&section, &text).await?;
        println!("objection {} raised", v["id"].as_str().unwrap_or_default());
        Ok(())
    })
}

pub fn release(
    section: String,
    keys: PathBuf,
    session: SessionArgs,
    passphrase: Passphrase,
) -> anyhow::Result<()> {
    let identity = signing_key(&keys, IDENTITY_KEY, &passphrase)?;
    let pw = passphrase.get()?;
    let (secret, _) = keyfile::read(
        &section_key_file(&keys, &section),
        "x25519",
        pw.as_deref().map(|s| s.as_str()),
    )?;
    let key = x25519::SecretKey::from_bytes(*secret);
    let (c, _) = load_session(&session)?;
    runtime(async move {
        let v = c.release_key(&section, &identity, &key).await?;
        println!(
            "released: {} of the {} keys needed",
            v["released"], v["threshold"]
        );
        Ok(())
    })
}

#[derive(Subcommand)]
pub enum SupervisorCommand {
    /// Make the supervisor's Ed25519 identity key (countersigns records).
    Keygen {
        #[arg(long)]
        dir: PathBuf,
        #[command(flatten)]
        passphrase: Passphrase,
    },
    /// Register the identity key with proof of possession.
    RegisterKey {
        #[arg(long)]
        keys: PathBuf,
        #[command(flatten)]
        session: SessionArgs,
        #[command(flatten)]
        passphrase: Passphrase,
    },
    /// Countersign a closed opening record (after checking the platform's signature).
    Countersign {
        #[arg(long)]
        section: String,
        #[arg(long)]
        keys: PathBuf,
        #[command(flatten)]
        session: SessionArgs,
        #[command(flatten)]
        passphrase: Passphrase,
    },
    /// Commit to the supervisor's value for the draw's seed (before the
    /// host asks for the draw), or with `--reveal` reveal it (after); the
    /// commitment is signed with the identity key that countersigned the
    /// opening record.
    Contribute {
        #[arg(long)]
        section: String,
        #[arg(long)]
        keys: PathBuf,
        #[arg(long)]
        reveal: bool,
        #[command(flatten)]
        session: SessionArgs,
        #[command(flatten)]
        passphrase: Passphrase,
    },
    /// Uphold a platform fault the host declared.
    CountersignIncident {
        #[arg(long)]
        section: String,
        #[arg(long)]
        incident: String,
        #[arg(long)]
        keys: PathBuf,
        #[command(flatten)]
        session: SessionArgs,
        #[command(flatten)]
        passphrase: Passphrase,
    },
}

pub fn supervisor(cmd: SupervisorCommand) -> anyhow::Result<()> {
    match cmd {
        SupervisorCommand::Keygen { dir, passphrase } => identity_keygen(&dir, &passphrase),
        SupervisorCommand::RegisterKey {
            keys,
            session,
            passphrase,
        } => register_identity(&keys, "supervisor_identity", &session, &passphrase),
        SupervisorCommand::Countersign {
            section,
            keys,
            session,
            passphrase,
        } => {
            let key = signing_key(&keys, IDENTITY_KEY, &passphrase)?;
            let (c, _) = load_session(&session)?;
            runtime(async move {
                c.countersign(&section, &key).await?;
                println!("countersigned the opening record of {section}");
                Ok(())
            })
        }
        SupervisorCommand::Contribute {
            section,
            keys,
            reveal,
            session,
            passphrase,
        } => {
            let key = signing_key(&keys, IDENTITY_KEY, &passphrase)?;
            let (c, _) = load_session(&session)?;
            runtime(async move {
                super::client::print_contribution(
                    &c,
                    &section,
                    crate::evaluation::seed::SUPERVISOR,
                    &key,
                    reveal,
                )
                .await
            })
        }
        SupervisorCommand::CountersignIncident {
            section,
            incident,
            keys,
            session,
            passphrase,
        } => {
            let key = signing_key(&keys, IDENTITY_KEY, &passphrase)?;
            let (c, _) = load_session(&session)?;
            runtime(async move {
                let room = c.opening(&section).await?;
                let i = room["state"]["incidents"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|i| i["id"] == incident.as_str())
                    .ok_or_else(|| anyhow::anyhow!("no incident {incident} in this opening"))?;
                let ruling = IncidentRuling {
                    format: crate::crypto::opening::INCIDENT_FORMAT.into(),
                    section_id: section.clone(),
                    incident_id: incident.clone(),
                    reason: i["reason"].as_str().unwrap_or_default().into(),
                    bidders: serde_json::from_value(i["bidders"].clone()).unwrap_or_default(),
                    declared_at_ms: i["declared_at_ms"].as_i64().unwrap_or_default(),
                };
                c.countersign_incident(&section, &ruling, &key).await?;
                println!("countersigned incident {incident}");
                Ok(())
            })
        }
    }
}

#[derive(Subcommand)]
pub enum HostCommand {
    /// Open sign-in (签到) for a section's opening.
    OpenSignin {
        #[arg(long)]
        section: String,
        #[command(flatten)]
        session: SessionArgs,
    },
    /// Extend the decryption window, with a reason.
    Extend {
        #[arg(long)]
        section: String,
        #[arg(long)]
        minutes: i64,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        session: SessionArgs,
    },
    /// Declare a platform fault: pauses the window's clock.
    Incident {
        #[arg(long)]
        section: String,
        #[arg(long)]
        reason: String,
        /// Affected bidder organisations (default: all).
        #[arg(long)]
        bidder: Vec<String>,
        #[command(flatten)]
        session: SessionArgs,
    },
    /// Resume the window's clock after an incident.
    Resume {
        #[arg(long)]
        section: String,
        #[command(flatten)]
        session: SessionArgs,
    },
    /// Answer an objection (the answer is final and on the record).
    Answer {
        #[arg(long)]
        section: String,
        #[arg(long)]
        objection: String,
        #[arg(long)]
        text: String,
        #[command(flatten)]
        session: SessionArgs,
    },
    /// Close the opening record (the platform signs it).
    Close {
        #[arg(long)]
        section: String,
        #[command(flatten)]
        session: SessionArgs,
    },
    /// Post a notice to the room.
    Notice {
        #[arg(long)]
        section: String,
        #[arg(long)]
        text: String,
        #[command(flatten)]
        session: SessionArgs,
    },
}

pub fn host(cmd: HostCommand) -> anyhow::Result<()> {
    let session = match &cmd {
        HostCommand::OpenSignin { session, .. }
        | HostCommand::Extend { session, .. }
        | HostCommand::Incident { session, .. }
        | HostCommand::Resume { session, .. }
        | HostCommand::Answer { session, .. }
        | HostCommand::Close { session, .. }
        | HostCommand::Notice { session, .. } => load_session(session)?.0,
    };
    runtime(async move {
        let c = session;
        let v = match cmd {
            HostCommand::OpenSignin { section, .. } => c.open_signin(&section).await?,
            HostCommand::Extend {
                section,
                minutes,
                reason,
                ..
            } => c.extend_window(&section, minutes, &reason).await?,
            HostCommand::Incident {
                section,
                reason,
                bidder,
                ..
            } => c.declare_incident(&section, &reason, &bidder).await?,
            HostCommand::Resume { section, .. } => c.resume(&section).await?,
            HostCommand::Answer {
                section,
                objection,
                text,
                ..
            } => c.answer(&section, &objection, &text).await?,
            HostCommand::Close { section, .. } => c.close_opening(&section).await?,
            HostCommand::Notice { section, text, .. } => c.notice(&section, &text).await?,
        };
        print(&v)
    })
}

#[derive(Subcommand)]
pub enum RoomCommand {
    /// Print a room's frames as they arrive (JSON lines), until it closes.
    Watch {
        #[arg(long)]
        section: String,
        /// Watch as the public even with a session.
        #[arg(long)]
        public: bool,
        /// The platform (default: the session's).
        #[arg(long)]
        server: Option<String>,
        /// Resume after this sequence number.
        #[arg(long, default_value_t = 0)]
        after: i64,
        #[command(flatten)]
        session: SessionArgs,
    },
}

pub fn room(cmd: RoomCommand) -> anyhow::Result<()> {
    let RoomCommand::Watch {
        section,
        public,
        server,
        after,
        session,
    } = cmd;
    let s = load_session(&session).ok().map(|(_, s)| s);
    let base = server
        .or_else(|| s.as_ref().map(|s| s.server.clone()))
        .ok_or_else(|| anyhow::anyhow!("give --server or sign in with `kaibiao login`"))?;
    let token = if public { None } else { s.map(|s| s.token) };
    runtime(async move {
        let mut w = Watcher::connect(&base, &section, token.as_deref(), after)
            .await?
            .resuming();
        println!("{}", w.hello);
        while let Some(f) = w.next().await? {
            println!("{f}");
        }
        Ok(())
    })
}
