//! The bidder's and the custodian's command line: keys, sign-in, sealing,
//! submission with a progress bar, status, withdrawal, receipt checks, and
//! custodians' per-section keys.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use ed25519_dalek::SigningKey;
use zeroize::Zeroizing;

use crate::client::{self, Client, SealRequest, Session, ENVELOPE_FILE, PARAMS_FILE, RECEIPT_FILE};
use crate::crypto::envelope::{self, SignedEnvelope, SummaryFields};
use crate::crypto::translog::SignedReceipt;
use crate::crypto::{keyfile, sign, x25519};
use crate::service::sections::SectionParams;

pub const SIGNING_KEY: &str = "signing.key";
pub const ENCRYPTION_KEY: &str = "encryption.key";
pub const IDENTITY_KEY: &str = "identity.key";

#[derive(Args)]
pub struct SessionArgs {
    /// Where `kaibiao login` keeps the session.
    #[arg(long, default_value = "kaibiao-session.json")]
    pub session: PathBuf,
}

#[derive(Args)]
pub struct Passphrase {
    /// Name of an environment variable holding the key files' passphrase.
    #[arg(long)]
    pub passphrase_env: Option<String>,
}

impl Passphrase {
    pub(super) fn get(&self) -> anyhow::Result<Option<Zeroizing<String>>> {
        match &self.passphrase_env {
            None => Ok(None),
            Some(var) => Ok(Some(Zeroizing::new(std::env::var(var).map_err(|_| {
                anyhow::anyhow!("the environment variable {var} is not set")
            })?))),
        }
    }
}

#[derive(Args)]
pub struct LoginArgs {
    #[arg(long)]
    pub server: String,
    #[arg(long)]
    pub username: String,
    #[command(flatten)]
    pub session: SessionArgs,
}

#[derive(Subcommand)]
pub enum BidCommand {
    /// Make the organisation's signing and encryption keys (files, mode 0600).
    Keygen {
        #[arg(long)]
        dir: PathBuf,
        #[command(flatten)]
        passphrase: Passphrase,
    },
    /// Register both keys with proof of possession (rotates existing ones).
    RegisterKeys {
        #[arg(long)]
        keys: PathBuf,
        #[command(flatten)]
        session: SessionArgs,
        #[command(flatten)]
        passphrase: Passphrase,
    },
    /// Seal a bid offline into a new directory.
    Seal(SealArgs),
    /// Submit a sealed bid (resumes an interrupted upload), check the
    /// platform's promise, wait for the log's flush and check the receipt.
    Submit {
        #[arg(long)]
        bid: PathBuf,
        /// Stop once the promise is checked; `kaibiao bid receipt` fetches
        /// the receipt later.
        #[arg(long)]
        no_wait: bool,
        #[command(flatten)]
        session: SessionArgs,
    },
    /// Fetch and check the receipt that fulfils a bid's (or its
    /// withdrawal's) promise, after the log's flush.
    Receipt {
        #[arg(long)]
        bid: PathBuf,
        /// The withdrawal's receipt, not the submission's.
        #[arg(long)]
        withdrawal: bool,
        /// Keep asking this long if it has not come yet.
        #[arg(long, default_value_t = 0)]
        wait_secs: u64,
        #[command(flatten)]
        session: SessionArgs,
    },
    /// Where a submitted bid stands.
    Status {
        #[arg(long)]
        bid: PathBuf,
        #[command(flatten)]
        session: SessionArgs,
    },
    /// Withdraw a submitted bid (before the deadline), with a signed statement.
    Withdraw {
        #[arg(long)]
        bid: PathBuf,
        #[arg(long)]
        keys: PathBuf,
        /// Stop once the promise is checked (see `kaibiao bid receipt`).
        #[arg(long)]
        no_wait: bool,
        #[command(flatten)]
        session: SessionArgs,
        #[command(flatten)]
        passphrase: Passphrase,
    },
    /// Sign in (签到) to a section's opening.
    SignIn {
        #[arg(long)]
        section: String,
        #[command(flatten)]
        session: SessionArgs,
    },
    /// Decrypt a submitted bid in the window (sections in a `bidders` mode):
    /// unwraps the bid master key from the bidder's own copy and hands it over.
    Decrypt {
        #[arg(long)]
        bid: PathBuf,
        #[arg(long)]
        keys: PathBuf,
        #[command(flatten)]
        session: SessionArgs,
        #[command(flatten)]
        passphrase: Passphrase,
    },
    /// Confirm the announced opening record after checking that it states
    /// the bid as sealed (signs the record's hash).
    Confirm {
        #[arg(long)]
        bid: PathBuf,
        #[arg(long)]
        keys: PathBuf,
        #[command(flatten)]
        session: SessionArgs,
        #[command(flatten)]
        passphrase: Passphrase,
    },
    /// Raise an objection (异议) to the opening record.
    Object {
        #[arg(long)]
        section: String,
        #[arg(long)]
        text: String,
        #[command(flatten)]
        session: SessionArgs,
    },
    /// Check a receipt offline against the sealed bid it is for.
    VerifyReceipt {
        #[arg(long)]
        bid: PathBuf,
        /// Default: `<bid>/receipt.json`, or `<bid>/promise.json` before the
        /// receipt has come.
        #[arg(long)]
        receipt: Option<PathBuf>,
        /// The platform's public key (default: the one in the parameters the bid was sealed against).
        #[arg(long)]
        platform_key: Option<String>,
    },
}

#[derive(Args)]
pub struct SealArgs {
    #[arg(long)]
    pub section: String,
    /// Fetch the published parameters from this platform…
    #[arg(long)]
    pub server: Option<String>,
    /// …or read them from a file (offline), checked against --params-hash.
    #[arg(long, requires = "params_hash")]
    pub params: Option<PathBuf>,
    #[arg(long)]
    pub params_hash: Option<String>,
    /// The bidder organisation's id (default: the signed-in user's, from --session).
    #[arg(long)]
    pub bidder: Option<String>,
    #[arg(long)]
    pub keys: PathBuf,
    /// The 开标一览表 as a JSON object of strings, e.g. {"price":"1234567.00"}.
    #[arg(long)]
    pub summary: PathBuf,
    /// The bid documents (one file; archive several).
    #[arg(long)]
    pub documents: PathBuf,
    /// The new bid directory.
    #[arg(long)]
    pub out: PathBuf,
    /// A bid directory this revision replaces.
    #[arg(long)]
    pub supersedes: Option<PathBuf>,
    #[command(flatten)]
    pub session: SessionArgs,
    #[command(flatten)]
    pub passphrase: Passphrase,
}

#[derive(Subcommand)]
pub enum CustodianCommand {
    /// Make the custodian's Ed25519 identity key.
    Keygen {
        #[arg(long)]
        dir: PathBuf,
        #[command(flatten)]
        passphrase: Passphrase,
    },
    /// Register the identity key with proof of possession.
    RegisterIdentity {
        #[arg(long)]
        keys: PathBuf,
        #[command(flatten)]
        session: SessionArgs,
        #[command(flatten)]
        passphrase: Passphrase,
    },
    /// Release this section's key at the opening, signed with the identity key.
    Release {
        #[arg(long)]
        section: String,
        #[arg(long)]
        keys: PathBuf,
        #[command(flatten)]
        session: SessionArgs,
        #[command(flatten)]
        passphrase: Passphrase,
    },
    /// Make this section's X25519 key on this device and register its public
    /// half, signed with the identity key (before publication).
    SectionKey {
        #[arg(long)]
        section: String,
        #[arg(long)]
        keys: PathBuf,
        #[command(flatten)]
        session: SessionArgs,
        #[command(flatten)]
        passphrase: Passphrase,
    },
}

/// Commits to (or with `reveal`, reveals) `party`'s value for the draw of
/// `section` and says what happened.
pub(super) async fn print_contribution(
    c: &crate::client::Client,
    section: &str,
    party: &str,
    key: &ed25519_dalek::SigningKey,
    reveal: bool,
) -> anyhow::Result<()> {
    if reveal {
        let v = c.reveal_to_draw(section, party, key).await?;
        match v["waiting_for"].as_array().filter(|w| !w.is_empty()) {
            _ if v["drawn"].is_object() => {
                println!("revealed {party}'s value; it was the last: the committee is drawn")
            }
            Some(w) => println!(
                "revealed {party}'s value; still to come: {}",
                w.iter()
                    .filter_map(|p| p.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None => println!("revealed {party}'s value (already revealed)"),
        }
    } else {
        let v = c.commit_to_draw(section, party, key).await?;
        println!(
            "committed {party} to a value for the draw of {section}: {}",
            v["commitment"].as_str().unwrap_or_default()
        );
    }
    Ok(())
}

pub(super) fn runtime<F: std::future::Future<Output = anyhow::Result<()>>>(
    f: F,
) -> anyhow::Result<()> {
    actix_web::rt::System::new().block_on(f)
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

pub(super) fn load_session(args: &SessionArgs) -> anyhow::Result<(Client, Session)> {
    let s: Session = client::read_json(&args.session)
        .map_err(|e| anyhow::anyhow!("no session ({e}); sign in with `kaibiao login` first"))?;
    Ok((Client::new(&s.server).with_token(&s.token), s))
}

/// Reads a password: from standard input, without echo on a terminal.
fn read_password(prompt: &str) -> anyhow::Result<Zeroizing<String>> {
    let tty = std::io::stdin().is_terminal();
    if tty {
        eprint!("{prompt}");
        let _ = std::process::Command::new("stty").arg("-echo").status();
    }
    let mut line = Zeroizing::new(String::new());
    let r = std::io::stdin().lock().read_line(&mut line);
    if tty {
        let _ = std::process::Command::new("stty").arg("echo").status();
        eprintln!();
    }
    r?;
    Ok(Zeroizing::new(
        line.trim_end_matches(['\r', '\n']).to_string(),
    ))
}

pub fn login(args: LoginArgs) -> anyhow::Result<()> {
    let password = read_password("password: ")?;
    runtime(async move {
        let mut c = Client::new(&args.server);
        let s = c.login(&args.username, &password).await?;
        write_private(&args.session.session, &serde_json::to_vec_pretty(&s)?)?;
        eprintln!(
            "signed in until {}; session in {}",
            s.expires_at,
            args.session.session.display()
        );
        Ok(())
    })
}

pub(super) fn signing_key(dir: &Path, file: &str, p: &Passphrase) -> anyhow::Result<SigningKey> {
    let pw = p.get()?;
    let (secret, public) = keyfile::read(
        &dir.join(file),
        "ed25519",
        pw.as_deref().map(|s| s.as_str()),
    )?;
    let key = SigningKey::from_bytes(&secret);
    anyhow::ensure!(
        key.verifying_key().to_bytes() == public,
        "{file}: the public key does not match the secret"
    );
    Ok(key)
}

pub(super) fn encryption_key(dir: &Path, p: &Passphrase) -> anyhow::Result<x25519::SecretKey> {
    let pw = p.get()?;
    let (secret, public) = keyfile::read(
        &dir.join(ENCRYPTION_KEY),
        "x25519",
        pw.as_deref().map(|s| s.as_str()),
    )?;
    let key = x25519::SecretKey::from_bytes(*secret);
    anyhow::ensure!(
        key.public_key() == public,
        "{ENCRYPTION_KEY}: the public key does not match the secret"
    );
    Ok(key)
}

/// `… keygen`: a new Ed25519 identity key in `dir`; prints its public half.
pub(super) fn identity_keygen(dir: &Path, p: &Passphrase) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let pk = new_signing_file(dir, IDENTITY_KEY, p)?;
    println!("identity key {pk}");
    Ok(())
}

/// `… register-…`: registers the identity key in `keys` for `purpose`,
/// with proof of possession.
pub(super) fn register_identity(
    keys: &Path,
    purpose: &'static str,
    session: &SessionArgs,
    p: &Passphrase,
) -> anyhow::Result<()> {
    let identity = signing_key(keys, IDENTITY_KEY, p)?;
    let (c, _) = load_session(session)?;
    runtime(async move {
        let v = c.register_ed25519(purpose, &identity).await?;
        println!("registered identity key {}", v["fingerprint"]);
        Ok(())
    })
}

pub(super) fn new_signing_file(dir: &Path, file: &str, p: &Passphrase) -> anyhow::Result<String> {
    let key = sign::generate();
    let pw = p.get()?;
    keyfile::write(
        &dir.join(file),
        "ed25519",
        &key.verifying_key().to_bytes(),
        &key.to_bytes(),
        pw.as_deref().map(|s| s.as_str()),
    )?;
    Ok(hex::encode(key.verifying_key().to_bytes()))
}

/// A progress bar on standard error, drawn only on a terminal.
pub struct Progress {
    tty: bool,
    started: std::time::Instant,
    last: std::time::Instant,
    what: &'static str,
}

impl Progress {
    pub fn new(what: &'static str) -> Self {
        let now = std::time::Instant::now();
        Self {
            tty: std::io::stderr().is_terminal(),
            started: now,
            last: now - std::time::Duration::from_secs(1),
            what,
        }
    }

    pub fn update(&mut self, done: u64, total: u64) {
        if !self.tty || (self.last.elapsed().as_millis() < 100 && done < total) {
            return;
        }
        self.last = std::time::Instant::now();
        let frac = if total == 0 {
            1.0
        } else {
            done as f64 / total as f64
        };
        let width = 30;
        let filled = (frac * width as f64) as usize;
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        eprint!(
            "\r{} [{}{}] {:>5.1}% {:.1}/{:.1} MiB {:.1} MiB/s ",
            self.what,
            "#".repeat(filled),
            " ".repeat(width - filled),
            frac * 100.0,
            done as f64 / 1048576.0,
            total as f64 / 1048576.0,
            done as f64 / 1048576.0 / secs
        );
        if done >= total {
            eprintln!();
        }
    }
}

pub fn bid(cmd: BidCommand) -> anyhow::Result<()> {
    match cmd {
        BidCommand::Keygen { dir, passphrase } => {
            std::fs::create_dir_all(&dir)?;
            let signing = new_signing_file(&dir, SIGNING_KEY, &passphrase)?;
            let enc = x25519::SecretKey::generate();
            let pw = passphrase.get()?;
            keyfile::write(
                &dir.join(ENCRYPTION_KEY),
                "x25519",
                &enc.public_key(),
                &enc.to_bytes(),
                pw.as_deref().map(|s| s.as_str()),
            )?;
            println!(
                "signing key    {signing}\nencryption key {}",
                hex::encode(enc.public_key())
            );
            Ok(())
        }
        BidCommand::RegisterKeys {
            keys,
            session,
            passphrase,
        } => {
            let signing = signing_key(&keys, SIGNING_KEY, &passphrase)?;
            let enc = encryption_key(&keys, &passphrase)?;
            let (c, _) = load_session(&session)?;
            runtime(async move {
                let a = c.register_ed25519("bidder_signing", &signing).await?;
                let b = c.register_x25519(&enc).await?;
                println!(
                    "registered signing key {} and encryption key {}",
                    a["fingerprint"], b["fingerprint"]
                );
                Ok(())
            })
        }
        BidCommand::Seal(args) => seal(args),
        BidCommand::Submit {
            bid,
            no_wait,
            session,
        } => {
            let (c, _) = load_session(&session)?;
            runtime(async move {
                let mut bar = Progress::new("submitting");
                let p = c.submit(&bid, &mut |d, t| bar.update(d, t)).await?;
                let at = |ms| crate::domain::time::Timestamp::from_millis(ms).shanghai_rfc3339();
                println!(
                    "complete: envelope {} received {} before the deadline {}; the platform's signed promise is in {}",
                    p.receipt.envelope_hash,
                    at(p.receipt.completed_at_ms),
                    at(p.receipt.deadline_ms),
                    bid.join(client::PROMISE_FILE).display()
                );
                if no_wait {
                    println!(
                        "the log takes it at {}: `kaibiao bid receipt --bid {}` fetches the receipt then",
                        at(p.receipt.flush_at_ms),
                        bid.display()
                    );
                    return Ok(());
                }
                println!(
                    "waiting for the log's flush at {} (the log takes commitments at fixed times, so that nobody can count the bids)…",
                    at(p.receipt.flush_at_ms)
                );
                let r = c.await_receipt(&bid, false, receipt_wait(&p)).await?;
                print_logged(&r, &bid.join(RECEIPT_FILE));
                Ok(())
            })
        }
        BidCommand::Receipt {
            bid,
            withdrawal,
            wait_secs,
            session,
        } => {
            let (c, _) = load_session(&session)?;
            runtime(async move {
                let r = c
                    .await_receipt(&bid, withdrawal, std::time::Duration::from_secs(wait_secs))
                    .await?;
                let file = if withdrawal {
                    client::WITHDRAWAL_RECEIPT_FILE
                } else {
                    RECEIPT_FILE
                };
                print_logged(&r, &bid.join(file));
                Ok(())
            })
        }
        BidCommand::Status { bid, session } => {
            let (c, _) = load_session(&session)?;
            let signed: SignedEnvelope = client::read_json(&bid.join(ENVELOPE_FILE))?;
            let (_, hash) = envelope::parse_signed(&signed)?;
            runtime(async move {
                let v = c.status(&hash).await?;
                println!("{}", serde_json::to_string_pretty(&v)?);
                Ok(())
            })
        }
        BidCommand::Withdraw {
            bid,
            keys,
            no_wait,
            session,
            passphrase,
        } => {
            let signing = signing_key(&keys, SIGNING_KEY, &passphrase)?;
            let (c, _) = load_session(&session)?;
            runtime(async move {
                let now = crate::clock::Clock::now(&crate::clock::SystemClock).millis();
                let p = c.withdraw(&bid, &signing, now).await?;
                println!(
                    "withdrawn; the platform's signed promise for {} is in {}",
                    p.receipt.envelope_hash,
                    bid.join(client::WITHDRAWAL_PROMISE_FILE).display()
                );
                if no_wait {
                    return Ok(());
                }
                let r = c.await_receipt(&bid, true, receipt_wait(&p)).await?;
                print_logged(&r, &bid.join(client::WITHDRAWAL_RECEIPT_FILE));
                Ok(())
            })
        }
        BidCommand::SignIn { section, session } => super::opening::sign_in(section, session),
        BidCommand::Decrypt {
            bid,
            keys,
            session,
            passphrase,
        } => super::opening::decrypt(bid, keys, session, passphrase),
        BidCommand::Confirm {
            bid,
            keys,
            session,
            passphrase,
        } => super::opening::confirm(bid, keys, session, passphrase),
        BidCommand::Object {
            section,
            text,
            session,
        } => super::opening::object(section, text, session),
        BidCommand::VerifyReceipt {
            bid,
            receipt,
            platform_key,
        } => {
            let signed: SignedEnvelope = client::read_json(&bid.join(ENVELOPE_FILE))?;
            let (_, hash) = envelope::parse_signed(&signed)
                .map_err(|e| anyhow::anyhow!("the envelope: {e}"))?;
            let file = receipt.unwrap_or_else(|| {
                let r = bid.join(RECEIPT_FILE);
                if r.exists() {
                    r
                } else {
                    bid.join(client::PROMISE_FILE)
                }
            });
            let receipt: SignedReceipt = client::read_json(&file)?;
            let key = match platform_key {
                Some(k) => k,
                None => client::read_json::<SectionParams>(&bid.join(PARAMS_FILE))?.platform_key,
            };
            let at = |ms| crate::domain::time::Timestamp::from_millis(ms).shanghai_rfc3339();
            let r = &receipt.receipt;
            if r.format == crate::crypto::translog::PROMISE_FORMAT {
                receipt
                    .verify_promise(&key, &hash)
                    .map_err(|e| anyhow::anyhow!("the promise is NOT valid: {e}"))?;
                println!(
                    "valid promise: envelope {hash} completed {} before the deadline {}; the platform promised to log it at {} — if the section's transcript lacks it, this promise is the platform's signed word that it accepted the bid",
                    at(r.completed_at_ms),
                    at(r.deadline_ms),
                    at(r.flush_at_ms)
                );
                return Ok(());
            }
            receipt
                .verify(&key, &hash)
                .map_err(|e| anyhow::anyhow!("the receipt is NOT valid: {e}"))?;
            println!(
                "valid: envelope {hash} completed {} before the deadline {}; log entry {} in a tree of {}",
                at(r.completed_at_ms),
                at(r.deadline_ms),
                receipt.log_index().unwrap_or_default(),
                r.log.as_ref().map_or(0, |l| l.checkpoint.checkpoint.size)
            );
            Ok(())
        }
    }
}

fn print_logged(r: &SignedReceipt, file: &std::path::Path) {
    println!(
        "logged, as promised: entry {} in a tree of {}; receipt in {}",
        r.log_index().unwrap_or_default(),
        r.receipt
            .log
            .as_ref()
            .map_or(0, |l| l.checkpoint.checkpoint.size),
        file.display()
    );
}

/// How long to wait for a promise's receipt: until its flush, and half a
/// minute more (the clocks of bidder and platform may differ).
fn receipt_wait(p: &SignedReceipt) -> std::time::Duration {
    let now = crate::clock::Clock::now(&crate::clock::SystemClock).millis();
    std::time::Duration::from_millis((p.receipt.flush_at_ms - now).max(0) as u64 + 30_000)
}

fn seal(a: SealArgs) -> anyhow::Result<()> {
    let fields: SummaryFields = client::read_json(&a.summary)?;
    let signing = signing_key(&a.keys, SIGNING_KEY, &a.passphrase)?;
    let enc = encryption_key(&a.keys, &a.passphrase)?;
    let (params_json, params_hash, bidder) = match (&a.params, &a.server) {
        (Some(file), _) => {
            let json = std::fs::read_to_string(file)?;
            let bidder = a
                .bidder
                .clone()
                .ok_or_else(|| anyhow::anyhow!("offline sealing needs --bidder"))?;
            (
                json,
                a.params_hash.clone().expect("clap requires it"),
                bidder,
            )
        }
        (None, server) => {
            let session = load_session(&a.session).ok();
            let server = server
                .clone()
                .or_else(|| session.as_ref().map(|(_, s)| s.server.clone()))
                .ok_or_else(|| anyhow::anyhow!("give --server, --params or a session"))?;
            let section = a.section.clone();
            let bidder_arg = a.bidder.clone();
            let mut out = None;
            runtime(async {
                let c = Client::new(&server);
                let (_, hash, json) = c.params(&section).await?;
                let bidder = match bidder_arg {
                    Some(b) => b,
                    None => {
                        let (c, _) =
                            session.ok_or_else(|| anyhow::anyhow!("give --bidder or sign in"))?;
                        c.my_org().await?
                    }
                };
                out = Some((json, hash, bidder));
                Ok(())
            })?;
            out.expect("set above")
        }
    };
    let (params, _) = client::check_params(&params_json, Some(&params_hash))?;
    anyhow::ensure!(
        params.section_id == a.section,
        "the parameters are for section {}",
        params.section_id
    );
    let mut bar = Progress::new("sealing");
    let total = std::fs::metadata(&a.documents)?.len();
    let (hash, env) = client::seal_to_dir(
        SealRequest {
            params_json: &params_json,
            params_hash: &params_hash,
            bidder: &bidder,
            signing: &signing,
            encryption_public: enc.public_key(),
            fields,
            documents: &a.documents,
            supersedes: a.supersedes.as_deref(),
            now_ms: crate::clock::Clock::now(&crate::clock::SystemClock).millis(),
        },
        &a.out,
        &mut |d| bar.update(d, total),
    )?;
    println!(
        "sealed revision {} of bid {}: envelope {hash} in {}",
        env.revision,
        env.bid_id,
        a.out.display()
    );
    Ok(())
}

pub fn custodian(cmd: CustodianCommand) -> anyhow::Result<()> {
    match cmd {
        CustodianCommand::Keygen { dir, passphrase } => identity_keygen(&dir, &passphrase),
        CustodianCommand::RegisterIdentity {
            keys,
            session,
            passphrase,
        } => register_identity(&keys, "custodian_identity", &session, &passphrase),
        CustodianCommand::Release {
            section,
            keys,
            session,
            passphrase,
        } => super::opening::release(section, keys, session, passphrase),
        CustodianCommand::SectionKey {
            section,
            keys,
            session,
            passphrase,
        } => {
            let identity = signing_key(&keys, IDENTITY_KEY, &passphrase)?;
            let (c, _) = load_session(&session)?;
            let file = super::opening::section_key_file(&keys, &section);
            let key = x25519::SecretKey::generate();
            let pw = passphrase.get()?;
            keyfile::write(
                &file,
                "x25519",
                &key.public_key(),
                &key.to_bytes(),
                pw.as_deref().map(|s| s.as_str()),
            )?;
            runtime(async move {
                let me: serde_json::Value = c.get("/api/auth/me").await?;
                let user = me["user"]["id"].as_str().unwrap_or_default().to_string();
                c.register_section_key(&section, &user, &identity, &key)
                    .await?;
                println!(
                    "registered the key for section {section}; keep {} safe until the opening",
                    file.display()
                );
                Ok(())
            })
        }
    }
}
