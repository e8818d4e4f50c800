//! Typed configuration: built-in defaults, then a TOML file, then environment
//! variables, then command-line flags — later wins. Validated once at start;
//! every problem is reported together. No globals: the validated `Config` is
//! passed to `app::build`.
//!
//! Environment variables name a setting by its path, upper-case, sections
//! joined by a double underscore: `KAIBIAO_SERVER__LISTEN`,
//! `KAIBIAO_MAIL__SMTP__PASSWORD`. Unknown names are errors, not ignored.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::text_enum;

text_enum! {
    pub enum ClockMode {
        System = "system",
        Accelerated = "accelerated",
    }
}

text_enum! {
    pub enum MailTransport {
        /// `.eml` files under `<data_dir>/outbox-mail` (the embedded default).
        File = "file",
        Smtp = "smtp",
    }
}

text_enum! {
    pub enum SmtpTls {
        None = "none",
        Starttls = "starttls",
        Tls = "tls",
    }
}

text_enum! {
    pub enum LogFormat {
        Text = "text",
        Json = "json",
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub clock: ClockConfig,
    pub rules: RulesConfig,
    pub chronograph: ChronographConfig,
    pub room: RoomConfig,
    pub opening: OpeningConfig,
    pub evaluation: EvaluationConfig,
    pub mail: MailConfig,
    pub log: LogConfig,
    pub translog: TranslogConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: String,
    pub data_dir: PathBuf,
    /// The address users reach this platform at, for links in e-mails.
    /// Empty: `http://<listen>`.
    pub public_url: String,
    /// HTTP worker threads; 0 = one per core.
    pub workers: usize,
    /// Largest JSON body accepted, in bytes.
    pub max_json_bytes: usize,
    /// Largest tender document accepted, in bytes.
    pub max_document_bytes: u64,
    /// Largest bid (the documents part's plaintext) accepted, in bytes.
    pub max_bid_bytes: u64,
    /// Bearer token for `/metrics` on the main listener; empty = `/metrics`
    /// is not served there. (Request counts can reveal submission activity
    /// before a deadline: operators only.)
    pub metrics_token: String,
    /// A separate address that serves `/metrics` alone, without a token
    /// (bind it to loopback or an internal network); empty = none.
    pub metrics_listen: String,
    /// Reverse proxies whose `X-Forwarded-For` is believed (sign-in
    /// throttling counts by the client's address); empty = none.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Where documents and sealed bid parts are stored; empty =
    /// `<data_dir>/blobs`. With several nodes, a directory they all share.
    pub blob_dir: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `postgres://…` or `sqlite://PATH`; empty = SQLite at `<data_dir>/kaibiao.sqlite3`.
    pub url: String,
    pub pool_size: u32,
    /// SQLite: how long a writer waits for the lock before giving up.
    pub busy_timeout_ms: u64,
    pub connect_timeout_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClockConfig {
    pub mode: ClockMode,
    /// Accelerated mode: virtual seconds per real second.
    pub speed: f64,
    /// Accelerated mode: the real instant (RFC 3339) at which virtual time
    /// equals real time. Nodes sharing an accelerated clock must share this;
    /// empty = the moment the process starts.
    pub anchor: String,
}

/// The rules of trading that a centre may tune. Defaults follow the national
/// rules for projects that must be tendered by law.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RulesConfig {
    /// Minimum days between publication and deadline for construction and
    /// procurement projects that must be tendered by law (招标投标法 §24: 20).
    pub min_days_by_law: i64,
    /// Minimum days for every other section.
    pub min_days_other: i64,
    /// An amendment published with fewer than this many days left moves the
    /// deadline out to this many days (实施条例 §21: 15).
    pub amendment_min_days: i64,
    pub default_window_minutes: i64,
    pub default_min_bidders: i32,
    pub session_ttl_hours: i64,
    pub login_max_failures: i32,
    pub login_ip_max_failures: i32,
    pub login_window_minutes: i64,
    /// How long a failed sign-in on an account under attack (as many
    /// failures from anywhere as `login_max_failures`) waits before it is
    /// answered.
    pub login_slowdown_ms: u64,
    pub email_verification_hours: i64,
    pub key_challenge_minutes: i64,
}

/// The opening rooms' WebSockets.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoomConfig {
    /// Frames a watcher may fall behind by before it gets a fresh snapshot
    /// instead (per room and view; memory is shared, not per watcher).
    pub queue_frames: usize,
    /// A watcher that cannot be written to for this long is disconnected.
    pub send_timeout_ms: u64,
}

/// The decryption at the opening.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpeningConfig {
    /// Threads that decrypt bids in parallel; 0 = one per core.
    pub decrypt_threads: usize,
}

/// Remote expert evaluation (DESIGN §6): this centre's identity and the
/// partner centres it trusts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvaluationConfig {
    /// This trading centre's code (its passes and its pool carry it).
    pub centre_code: String,
    pub centre_name: String,
    /// Partner centres' public files (`kaibiao centre export`), one per
    /// centre; their passes are admitted to this centre's rooms.
    pub trust_dir: PathBuf,
    /// Partner centres pinned by key fingerprint (`kaibiao centre export`
    /// prints it: SHA-256 of the raw public key, hex), learned from each
    /// centre out of band — its registry entry, a signed letter — so that
    /// whoever can write to `trust_dir` cannot slip in another key. When any
    /// pin is set, every file in `trust_dir` must match its centre's pin,
    /// and a centre without one is refused at start.
    pub centre_pins: std::collections::BTreeMap<String, String>,
    /// How long a drawn expert has to confirm or decline, in hours.
    pub answer_hours: u32,
    /// How long the contributors to the draw's seed have to reveal their
    /// values once the draw is asked for; a value not revealed by then is
    /// recorded as withheld and the committee is drawn without it.
    pub reveal_minutes: u32,
    /// How long the experts have to sign the report; whoever has not signed
    /// by then is recorded as agreeing.
    pub signing_minutes: u32,
    /// Publicity of the candidates (公示), in days: at least 3.
    pub publicity_days: u32,
    /// How long the tenderer has to answer an objection, in days.
    pub objection_answer_days: u32,
}

impl Default for EvaluationConfig {
    fn default() -> Self {
        Self {
            centre_code: "HOST".into(),
            centre_name: "本地交易中心".into(),
            trust_dir: PathBuf::from("keys/centres"),
            centre_pins: Default::default(),
            answer_hours: 24,
            reveal_minutes: 30,
            signing_minutes: 60,
            publicity_days: 3,
            objection_answer_days: 3,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChronographConfig {
    /// Longest real time between two looks at the schedule. New jobs made on
    /// this node wake it at once; jobs made by other nodes wait at most this.
    pub poll_interval_ms: u64,
    /// Name of this node in the schedule's records; empty = host name + pid.
    pub node_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailConfig {
    pub transport: MailTransport,
    pub from: String,
    pub poll_interval_ms: u64,
    pub max_attempts: i32,
    pub smtp: SmtpConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: String,
    pub password: String,
    pub timeout_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A tracing filter, e.g. `info` or `kaibiao=debug,actix_web=info`.
    pub level: String,
}

/// The transparency log's steady flushes (ADR 9).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TranslogConfig {
    /// Seconds between flushes of queued commitments, at multiples of it
    /// since the epoch, while any section takes bids.
    pub flush_seconds: u64,
    /// Leaves per flush: `B·k`, the smallest `k ≥ 1` that holds the queue,
    /// filled with cover leaves.
    pub flush_batch: u64,
}

impl Default for TranslogConfig {
    fn default() -> Self {
        Self {
            flush_seconds: 60,
            flush_batch: 16,
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./data"),
            public_url: String::new(),
            workers: 0,
            max_json_bytes: 256 * 1024,
            max_document_bytes: 512 * 1024 * 1024,
            max_bid_bytes: 4 * 1024 * 1024 * 1024,
            metrics_token: String::new(),
            metrics_listen: String::new(),
            trusted_proxies: Vec::new(),
            blob_dir: PathBuf::new(),
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            pool_size: 8,
            busy_timeout_ms: 10_000,
            connect_timeout_secs: 10,
        }
    }
}

impl Default for ClockConfig {
    fn default() -> Self {
        Self {
            mode: ClockMode::System,
            speed: 1.0,
            anchor: String::new(),
        }
    }
}

impl Default for RulesConfig {
    fn default() -> Self {
        Self {
            min_days_by_law: 20,
            min_days_other: 0,
            amendment_min_days: 15,
            default_window_minutes: 30,
            default_min_bidders: 3,
            session_ttl_hours: 12,
            login_max_failures: 5,
            login_ip_max_failures: 50,
            login_window_minutes: 15,
            login_slowdown_ms: 1000,
            email_verification_hours: 48,
            key_challenge_minutes: 5,
        }
    }
}

impl Default for ChronographConfig {
    fn default() -> Self {
        Self {
            poll_interval_ms: 1000,
            node_id: String::new(),
        }
    }
}

impl Default for RoomConfig {
    fn default() -> Self {
        Self {
            queue_frames: 256,
            send_timeout_ms: 10_000,
        }
    }
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            transport: MailTransport::File,
            from: "kaibiao <noreply@kaibiao.localhost>".into(),
            poll_interval_ms: 1000,
            max_attempts: 10,
            smtp: SmtpConfig::default(),
        }
    }
}

impl Default for SmtpConfig {
    fn default() -> Self {
        Self {
            host: String::new(),
            port: 587,
            tls: SmtpTls::Starttls,
            username: String::new(),
            password: String::new(),
            timeout_secs: 30,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

/// Values given on the command line; `None` = not given.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub data_dir: Option<PathBuf>,
    pub listen: Option<String>,
    pub database_url: Option<String>,
}

/// Which database a URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseTarget {
    Sqlite(PathBuf),
    Postgres(String),
}

impl DatabaseTarget {
    /// What the database is, for people: the SQLite file's full path, or
    /// PostgreSQL's host, port and database — never a password.
    pub fn describe(&self) -> String {
        match self {
            DatabaseTarget::Sqlite(p) => {
                let full = std::path::absolute(p).unwrap_or_else(|_| p.clone());
                format!("SQLite {}", full.display())
            }
            DatabaseTarget::Postgres(url) => {
                let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
                let rest = rest.split('?').next().unwrap_or(rest);
                let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
                format!("PostgreSQL {rest}")
            }
        }
    }
}

/// The configuration file a command uses: the one named (`--config`,
/// `KAIBIAO_CONFIG`), otherwise `kaibiao.toml` in the working directory if
/// there is one — so `kaibiao serve` and `kaibiao admin …` run in the same
/// place find the same settings.
pub fn config_file(named: Option<&Path>) -> Option<PathBuf> {
    match named {
        Some(p) => Some(p.to_path_buf()),
        None => {
            let local = PathBuf::from(DEFAULT_CONFIG_FILE);
            local.is_file().then_some(local)
        }
    }
}

/// The configuration file looked for in the working directory.
pub const DEFAULT_CONFIG_FILE: &str = "kaibiao.toml";

impl Config {
    /// Defaults < file < environment (`KAIBIAO_…` from `env`) < flags.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        flags: &Overrides,
    ) -> Result<Config, Vec<String>> {
        let mut errors = Vec::new();
        let mut tree = toml::Value::try_from(Config::default()).expect("defaults serialise");
        if let Some(path) = file {
            match std::fs::read_to_string(path) {
                Ok(text) => match text.parse::<toml::Table>() {
                    Ok(t) => merge(&mut tree, toml::Value::Table(t), "", &mut errors),
                    Err(e) => errors.push(format!("{}: {}", path.display(), e.message())),
                },
                Err(e) => errors.push(format!("cannot read config file {}: {e}", path.display())),
            }
        }
        for (k, v) in env {
            let Some(rest) = k.strip_prefix("KAIBIAO_") else {
                continue;
            };
            if rest == "CONFIG" {
                continue; // read by the command line itself
            }
            let path: Vec<String> = rest.split("__").map(|s| s.to_ascii_lowercase()).collect();
            if let Err(e) = set_path(&mut tree, &path, &v) {
                errors.push(format!("{k}: {e}"));
            }
        }
        let flag_values = [
            (
                vec!["server", "data_dir"],
                flags.data_dir.as_ref().map(|p| p.display().to_string()),
            ),
            (vec!["server", "listen"], flags.listen.clone()),
            (vec!["database", "url"], flags.database_url.clone()),
        ];
        for (path, v) in flag_values {
            if let Some(v) = v {
                let path: Vec<String> = path.into_iter().map(String::from).collect();
                if let Err(e) = set_path(&mut tree, &path, &v) {
                    errors.push(e);
                }
            }
        }
        let config: Config = match tree.try_into() {
            Ok(c) => c,
            Err(e) => {
                errors.push(e.message().to_string());
                return Err(errors);
            }
        };
        errors.extend(config.problems());
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(errors)
        }
    }

    /// Every problem with the settings, as sentences naming the setting.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        let mut check = |ok: bool, msg: String| {
            if !ok {
                p.push(msg)
            }
        };
        check(
            self.server.listen.parse::<SocketAddr>().is_ok(),
            format!(
                "server.listen: {:?} is not an address such as 127.0.0.1:8080",
                self.server.listen
            ),
        );
        check(
            self.server.metrics_listen.is_empty()
                || self.server.metrics_listen.parse::<SocketAddr>().is_ok(),
            format!(
                "server.metrics_listen: {:?} is not an address such as 127.0.0.1:9464",
                self.server.metrics_listen
            ),
        );
        check(
            !self.server.data_dir.as_os_str().is_empty(),
            "server.data_dir: must not be empty".into(),
        );
        check(
            self.server.public_url.is_empty()
                || self.server.public_url.starts_with("http://")
                || self.server.public_url.starts_with("https://"),
            "server.public_url: must start with http:// or https://".into(),
        );
        check(
            (1024..=16 * 1024 * 1024).contains(&self.server.max_json_bytes),
            "server.max_json_bytes: must be between 1 KiB and 16 MiB".into(),
        );
        check(
            self.server.max_document_bytes >= 1024,
            "server.max_document_bytes: must be at least 1 KiB".into(),
        );
        check(
            self.server.max_bid_bytes >= 1024,
            "server.max_bid_bytes: must be at least 1 KiB".into(),
        );
        let target = self.database_target();
        check(target.is_ok(), target.err().unwrap_or_default());
        check(
            (1..=200).contains(&self.database.pool_size),
            "database.pool_size: must be between 1 and 200".into(),
        );
        check(
            self.database.busy_timeout_ms <= 600_000,
            "database.busy_timeout_ms: at most 600000".into(),
        );
        check(
            self.clock.speed.is_finite() && self.clock.speed > 0.0 && self.clock.speed <= 1e9,
            "clock.speed: must be more than 0 and at most 1e9".into(),
        );
        check(
            self.clock.mode == ClockMode::Accelerated || self.clock.speed == 1.0,
            "clock.speed: only the accelerated clock has a speed (set clock.mode = \"accelerated\")".into(),
        );
        check(
            self.clock.anchor.is_empty()
                || crate::domain::time::Timestamp::parse_rfc3339(&self.clock.anchor).is_some(),
            "clock.anchor: must be an RFC 3339 date-time".into(),
        );
        let r = &self.rules;
        check(
            (0..=365).contains(&r.min_days_by_law),
            "rules.min_days_by_law: 0 to 365".into(),
        );
        check(
            (0..=365).contains(&r.min_days_other),
            "rules.min_days_other: 0 to 365".into(),
        );
        check(
            (0..=365).contains(&r.amendment_min_days),
            "rules.amendment_min_days: 0 to 365".into(),
        );
        check(
            (1..=1440).contains(&r.default_window_minutes),
            "rules.default_window_minutes: 1 to 1440".into(),
        );
        check(
            (1..=100).contains(&r.default_min_bidders),
            "rules.default_min_bidders: 1 to 100".into(),
        );
        check(
            (1..=720).contains(&r.session_ttl_hours),
            "rules.session_ttl_hours: 1 to 720".into(),
        );
        check(
            (1..=100).contains(&r.login_max_failures),
            "rules.login_max_failures: 1 to 100".into(),
        );
        check(
            (1..=10_000).contains(&r.login_ip_max_failures),
            "rules.login_ip_max_failures: 1 to 10000".into(),
        );
        check(
            (1..=1440).contains(&r.login_window_minutes),
            "rules.login_window_minutes: 1 to 1440".into(),
        );
        check(
            r.login_slowdown_ms <= 10_000,
            "rules.login_slowdown_ms: 0 to 10000".into(),
        );
        check(
            (1..=720).contains(&r.email_verification_hours),
            "rules.email_verification_hours: 1 to 720".into(),
        );
        check(
            (1..=60).contains(&r.key_challenge_minutes),
            "rules.key_challenge_minutes: 1 to 60".into(),
        );
        check(
            (10..=60_000).contains(&self.chronograph.poll_interval_ms),
            "chronograph.poll_interval_ms: 10 to 60000".into(),
        );
        check(
            (1..=3600).contains(&self.translog.flush_seconds),
            "translog.flush_seconds: 1 to 3600".into(),
        );
        check(
            (1..=1024).contains(&self.translog.flush_batch),
            "translog.flush_batch: 1 to 1024".into(),
        );
        check(
            (4..=65_536).contains(&self.room.queue_frames),
            "room.queue_frames: 4 to 65536".into(),
        );
        check(
            (100..=600_000).contains(&self.room.send_timeout_ms),
            "room.send_timeout_ms: 100 to 600000".into(),
        );
        check(
            crate::evaluation::pass::Centre::valid_code(&self.evaluation.centre_code),
            "evaluation.centre_code: 2-32 characters of A-Z, 0-9 and '-'".into(),
        );
        check(
            (1..=720).contains(&self.evaluation.answer_hours),
            "evaluation.answer_hours: 1 to 720".into(),
        );
        check(
            (1..=1440).contains(&self.evaluation.reveal_minutes),
            "evaluation.reveal_minutes: 1 to 1440".into(),
        );
        check(
            (1..=1440).contains(&self.evaluation.signing_minutes),
            "evaluation.signing_minutes: 1 to 1440".into(),
        );
        check(
            (3..=30).contains(&self.evaluation.publicity_days),
            "evaluation.publicity_days: 3 to 30 (the law asks for at least 3)".into(),
        );
        check(
            (1..=30).contains(&self.evaluation.objection_answer_days),
            "evaluation.objection_answer_days: 1 to 30".into(),
        );
        check(
            self.opening.decrypt_threads <= 256,
            "opening.decrypt_threads: 0 (one per core) to 256".into(),
        );
        check(
            self.mail.from.parse::<lettre::message::Mailbox>().is_ok(),
            format!(
                "mail.from: {:?} is not a mailbox such as 'kaibiao <noreply@example.cn>'",
                self.mail.from
            ),
        );
        check(
            (10..=600_000).contains(&self.mail.poll_interval_ms),
            "mail.poll_interval_ms: 10 to 600000".into(),
        );
        check(
            (1..=100).contains(&self.mail.max_attempts),
            "mail.max_attempts: 1 to 100".into(),
        );
        if self.mail.transport == MailTransport::Smtp {
            check(
                !self.mail.smtp.host.is_empty(),
                "mail.smtp.host: required when mail.transport = \"smtp\"".into(),
            );
            check(
                self.mail.smtp.port != 0,
                "mail.smtp.port: must not be 0".into(),
            );
            check(
                self.mail.smtp.username.is_empty() == self.mail.smtp.password.is_empty(),
                "mail.smtp.username and mail.smtp.password: give both or neither".into(),
            );
        }
        check(
            tracing_subscriber::EnvFilter::try_new(&self.log.level).is_ok(),
            format!("log.level: {:?} is not a tracing filter", self.log.level),
        );
        p
    }

    pub fn database_target(&self) -> Result<DatabaseTarget, String> {
        let url = self.database.url.trim();
        if url.is_empty() {
            return Ok(DatabaseTarget::Sqlite(
                self.server.data_dir.join("kaibiao.sqlite3"),
            ));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DatabaseTarget::Postgres(url.to_string()));
        }
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err("database.url: sqlite:// needs a file path".into());
            }
            return Ok(DatabaseTarget::Sqlite(PathBuf::from(path)));
        }
        Err("database.url: must start with postgres://, postgresql:// or sqlite://".into())
    }

    pub fn blob_dir(&self) -> PathBuf {
        if self.server.blob_dir.as_os_str().is_empty() {
            self.server.data_dir.join("blobs")
        } else {
            self.server.blob_dir.clone()
        }
    }

    pub fn listen_addr(&self) -> SocketAddr {
        self.server.listen.parse().expect("validated at load")
    }

    pub fn public_url(&self, bound: SocketAddr) -> String {
        if self.server.public_url.is_empty() {
            format!("http://{bound}")
        } else {
            self.server.public_url.trim_end_matches('/').to_string()
        }
    }
}

/// Overlays `over` onto `base`, refusing keys the defaults don't have.
fn merge(base: &mut toml::Value, over: toml::Value, prefix: &str, errors: &mut Vec<String>) {
    match (base, over) {
        (toml::Value::Table(b), toml::Value::Table(o)) => {
            for (k, v) in o {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                match b.get_mut(&k) {
                    Some(slot) if slot.is_table() => merge(slot, v, &path, errors),
                    Some(slot) => *slot = v,
                    None => errors.push(format!("unknown setting {path}")),
                }
            }
        }
        (b, o) => *b = o,
    }
}

/// Sets a leaf named by `path` from a string, converted to the leaf's type.
fn set_path(tree: &mut toml::Value, path: &[String], raw: &str) -> Result<(), String> {
    let mut node = tree;
    for (i, key) in path.iter().enumerate() {
        let table = node
            .as_table_mut()
            .ok_or_else(|| format!("unknown setting {}", path[..i].join(".")))?;
        node = table
            .get_mut(key)
            .ok_or_else(|| format!("unknown setting {}", path[..=i].join(".")))?;
    }
    let name = path.join(".");
    *node = match node {
        toml::Value::String(_) => toml::Value::String(raw.to_string()),
        toml::Value::Integer(_) => toml::Value::Integer(
            raw.trim()
                .parse()
                .map_err(|_| format!("{name}: {raw:?} is not an integer"))?,
        ),
        toml::Value::Float(_) => toml::Value::Float(
            raw.trim()
                .parse()
                .map_err(|_| format!("{name}: {raw:?} is not a number"))?,
        ),
        toml::Value::Array(_) => toml::Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(|v| toml::Value::String(v.to_string()))
                .collect(),
        ),
        toml::Value::Boolean(_) => toml::Value::Boolean(match raw.trim() {
            "true" | "1" => true,
            "false" | "0" => false,
            _ => return Err(format!("{name}: {raw:?} is not true or false")),
        }),
        _ => return Err(format!("{name} is a section, not a setting")),
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_valid_and_serve_sqlite_in_data() {
        let c = Config::load(None, vec![], &Overrides::default()).unwrap();
        assert_eq!(c.server.listen, "127.0.0.1:8080");
        assert_eq!(
            c.database_target().unwrap(),
            DatabaseTarget::Sqlite(PathBuf::from("./data/kaibiao.sqlite3"))
        );
    }

    #[test]
    fn file_then_env_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("k.toml");
        std::fs::write(
            &f,
            "[server]\nlisten = \"127.0.0.1:9000\"\n[rules]\nmin_days_by_law = 25\n[mail.smtp]\nport = 2525\n",
        )
        .unwrap();
        let c = Config::load(
            Some(&f),
            env(&[
                ("KAIBIAO_SERVER__LISTEN", "127.0.0.1:9001"),
                ("KAIBIAO_MAIL__SMTP__PASSWORD", "12345"),
                ("KAIBIAO_MAIL__SMTP__USERNAME", "u"),
                ("PATH", "/bin"),
            ]),
            &Overrides {
                database_url: Some("postgres://postgres@127.0.0.1/x".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(c.server.listen, "127.0.0.1:9001");
        assert_eq!(c.rules.min_days_by_law, 25);
        assert_eq!(c.mail.smtp.port, 2525);
        assert_eq!(c.mail.smtp.password, "12345");
        assert!(matches!(
            c.database_target(),
            Ok(DatabaseTarget::Postgres(_))
        ));
    }

    #[test]
    fn every_error_is_listed() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("k.toml");
        std::fs::write(
            &f,
            "[server]\nlisten = \"nowhere\"\ncolour = \"red\"\n[mail]\ntransport = \"smtp\"\n",
        )
        .unwrap();
        let errs = Config::load(
            Some(&f),
            env(&[
                ("KAIBIAO_RULES__MIN_DAYS_BY_LAW", "many"),
                ("KAIBIAO_NOPE", "1"),
            ]),
            &Overrides {
                database_url: Some("mysql://x".into()),
                ..Default::default()
            },
        )
        .unwrap_err();
        let all = errs.join("\n");
        for needle in [
            "unknown setting server.colour",
            "KAIBIAO_RULES__MIN_DAYS_BY_LAW",
            "unknown setting nope",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
        }
        // Type errors stop before semantic checks, so check those separately.
        let errs = Config::load(
            None,
            env(&[
                ("KAIBIAO_SERVER__LISTEN", "nowhere"),
                ("KAIBIAO_MAIL__TRANSPORT", "smtp"),
            ]),
            &Overrides {
                database_url: Some("mysql://x".into()),
                ..Default::default()
            },
        )
        .unwrap_err();
        let all = errs.join("\n");
        for needle in ["server.listen", "database.url", "mail.smtp.host"] {
            assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
        }
    }
}
