//! The test harness: a real server on port 0 over a fresh database (SQLite in
//! a temporary directory by default; PostgreSQL when
//! `KB_TEST_DATABASE_URL` names one, each test in its own schema), a
//! fixed clock the test moves by hand, and file mail read back from disk.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use awc::http::StatusCode;
use diesel::Connection;
use kaibiao::app::{Application, BuildOptions};
use kaibiao::clock::{FixedClock, SharedClock};
use kaibiao::config::{Config, Overrides};
use kaibiao::domain::time::Timestamp;
use kaibiao::service::Services;
use serde_json::{json, Value};

pub const START: &str = "2026-12-01T00:00:00Z";
pub const PASSWORD: &str = "correct horse battery staple";

pub fn start_time() -> Timestamp {
    Timestamp::parse_rfc3339(START).unwrap()
}

/// Where a test's data lives. Kept apart from the running app so a test can
/// stop the server and start another on the same database.
pub struct TestStore {
    pub dir: tempfile::TempDir,
    pub database_url: Option<String>,
    pg_schema: Option<(String, String)>,
}

impl TestStore {
    /// PostgreSQL: this store's schema, which its connections also use as
    /// their `application_name`.
    pub fn pg_schema(&self) -> Option<(&str, &str)> {
        self.pg_schema
            .as_ref()
            .map(|(b, s)| (b.as_str(), s.as_str()))
    }
}

impl TestStore {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        match std::env::var("KB_TEST_DATABASE_URL")
            .ok()
            .filter(|u| !u.is_empty())
        {
            Some(base) => {
                let (url, schema) = pg_schema(&base);
                TestStore {
                    dir,
                    database_url: Some(url),
                    pg_schema: Some((base, schema)),
                }
            }
            None => TestStore {
                dir,
                database_url: None,
                pg_schema: None,
            },
        }
    }

    /// A store on PostgreSQL whatever the environment says (multi-node tests).
    pub fn postgres() -> Self {
        let base = pg_base_url();
        let (url, schema) = pg_schema(&base);
        TestStore {
            dir: tempfile::tempdir().unwrap(),
            database_url: Some(url),
            pg_schema: Some((base, schema)),
        }
    }

    pub fn is_postgres(&self) -> bool {
        self.database_url.is_some()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn config(&self) -> Config {
        let mut c = Config::load(
            None,
            Vec::<(String, String)>::new(),
            &Overrides {
                data_dir: Some(self.data_dir()),
                listen: Some("127.0.0.1:0".into()),
                database_url: self.database_url.clone(),
            },
        )
        .unwrap();
        c.server.workers = 2;
        c.database.pool_size = 4;
        c.chronograph.poll_interval_ms = 50;
        // Tests jump the clock by weeks; keep sessions alive across the jumps.
        c.rules.session_ttl_hours = 720;
        c.mail.poll_interval_ms = 50;
        // Metrics are served apart, as operators deploy them.
        c.server.metrics_listen = "127.0.0.1:0".into();
        c
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        if let Some((base, schema)) = &self.pg_schema {
            if let Ok(mut c) = diesel::PgConnection::establish(base) {
                let _ = diesel::RunQueryDsl::execute(
                    diesel::sql_query(format!("DROP SCHEMA IF EXISTS {schema} CASCADE")),
                    &mut c,
                );
            }
        }
    }
}

pub fn pg_base_url() -> String {
    std::env::var("KB_TEST_PG_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(|| {
            std::env::var("KB_TEST_DATABASE_URL")
                .ok()
                .filter(|u| !u.is_empty())
        })
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A fresh schema; the returned URL puts it first on the search path.
fn pg_schema(base: &str) -> (String, String) {
    let schema = format!("t_{}", hex::encode(kaibiao::crypto::random_bytes::<6>()));
    let mut c = diesel::PgConnection::establish(base)
        .unwrap_or_else(|e| panic!("PostgreSQL at {base} is needed for this test: {e}"));
    diesel::RunQueryDsl::execute(diesel::sql_query(format!("CREATE SCHEMA {schema}")), &mut c)
        .unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    // The application name tells this test's connections apart from every
    // other test's on the same server (see `pool.rs`).
    (
        format!("{base}{sep}options=-csearch_path%3D{schema}&application_name={schema}"),
        schema,
    )
}

/// A running kaibiao: in this process (with a fixed clock the test moves),
/// or a `kaibiao serve` child process (see `cli.rs` and `multinode.rs`).
pub struct TestApp {
    pub base: String,
    /// The separate metrics listener (`server.metrics_listen`), if any.
    pub metrics_base: Option<String>,
    pub client: awc::Client,
    pub db: kaibiao::db::Db,
    pub data_dir: PathBuf,
    pub clock: SharedClock,
    fixed: Option<Arc<FixedClock>>,
    services: Option<Services>,
    handle: Option<actix_web::dev::ServerHandle>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    pub process: Option<crate::cli::Node>,
}

type ConfigTweak = Box<dyn FnOnce(&mut Config)>;

pub struct Spawn<'a> {
    store: &'a TestStore,
    clock: Option<Arc<FixedClock>>,
    tweak: Option<ConfigTweak>,
}

impl<'a> Spawn<'a> {
    pub fn clock(mut self, c: Arc<FixedClock>) -> Self {
        self.clock = Some(c);
        self
    }
    pub fn config(mut self, f: impl FnOnce(&mut Config) + 'static) -> Self {
        self.tweak = Some(Box::new(f));
        self
    }
    pub async fn start(self) -> TestApp {
        init_logs();
        let mut config = self.store.config();
        if let Some(f) = self.tweak {
            f(&mut config);
        }
        let clock = self
            .clock
            .unwrap_or_else(|| Arc::new(FixedClock::new(start_time())));
        let shared: SharedClock = clock.clone();
        let app = Application::build(
            config,
            BuildOptions {
                clock: Some(shared),
                ..Default::default()
            },
        )
        .await
        .expect("the application starts");
        let base = format!("http://{}", app.addr());
        let metrics_base = app.metrics_addr().map(|a| format!("http://{a}"));
        let services = app.services().clone();
        let handle = app.handle();
        let task = tokio::spawn(app.run_until_stopped());
        TestApp {
            base,
            metrics_base,
            client: client(),
            db: services.db.clone(),
            data_dir: services.data_dir.clone(),
            clock: services.clock.clone(),
            fixed: Some(clock),
            services: Some(services),
            handle: Some(handle),
            task: Some(task),
            process: None,
        }
    }
}

/// Everything the in-process servers log, at debug level, for tests that
/// must prove something never reaches the logs.
static CAPTURED_LOGS: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());

struct Capture;

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        CAPTURED_LOGS.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub fn captured_logs() -> String {
    String::from_utf8_lossy(&CAPTURED_LOGS.lock().unwrap()).into_owned()
}

/// Server logs go to the test's captured output (shown when a test fails);
/// `KB_TEST_LOG` sets that filter (default: errors only). Everything at
/// debug level is also kept for [`captured_logs`].
fn init_logs() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    let filter = std::env::var("KB_TEST_LOG").unwrap_or_else(|_| "error".into());
    let shown = tracing_subscriber::fmt::layer()
        .with_test_writer()
        .with_filter(tracing_subscriber::EnvFilter::new(filter));
    let kept = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(|| Capture)
        .with_filter(tracing_subscriber::EnvFilter::new("debug"));
    let _ = tracing_subscriber::registry()
        .with(shown)
        .with(kept)
        .try_init();
}

/// The tests' HTTP client. It drops an idle pooled connection after 2 s,
/// well inside the server's 5 s keep-alive: a test that blocks its thread
/// (running the CLI, say) must not come back to a connection the server has
/// just closed, which awc reports as "connector has been disconnected".
pub fn client() -> awc::Client {
    awc::Client::builder()
        .connector(awc::Connector::new().conn_keep_alive(Duration::from_secs(2)))
        .timeout(Duration::from_secs(60))
        .finish()
}

pub fn spawn(store: &TestStore) -> Spawn<'_> {
    Spawn {
        store,
        clock: None,
        tweak: None,
    }
}

/// A response, read whole.
pub struct Resp {
    pub status: StatusCode,
    pub headers: awc::http::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// Asserts the status and returns the JSON body.
    #[track_caller]
    pub fn expect(&self, status: u16) -> Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.text()
        );
        if self.body.is_empty() {
            Value::Null
        } else {
            self.json()
        }
    }
    /// Asserts an error envelope with this status and code.
    #[track_caller]
    pub fn expect_error(&self, status: u16, code: &str) -> Value {
        let v = self.expect(status);
        assert_eq!(v["error"], code, "unexpected error code: {v}");
        assert!(
            v["request_id"].as_str().is_some_and(|s| !s.is_empty()),
            "envelope without request id: {v}"
        );
        assert!(
            v["message"].as_str().is_some_and(|s| !s.is_empty()),
            "envelope without message: {v}"
        );
        v
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// The metrics, from the separate metrics listener.
    pub async fn scrape(&self) -> String {
        let base = self.metrics_base.as_ref().expect("a metrics listener");
        let mut r = self
            .client
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        String::from_utf8(r.body().await.unwrap().to_vec()).unwrap()
    }

    pub async fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let bearer = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = bearer
            .as_deref()
            .map(|b| ("Authorization", b))
            .into_iter()
            .collect();
        self.request_with(method, path, &headers, body).await
    }

    /// A request with exactly these headers (no bearer token): as a browser
    /// sends it, with its cookies.
    pub async fn request_with(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Resp {
        let m = awc::http::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.client.request(m, self.url(path));
        for (k, v) in headers {
            req = req.insert_header((*k, *v));
        }
        let mut res = match body {
            Some(b) => req.send_json(&b).await,
            None => req.send().await,
        }
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let body = res.body().limit(64 * 1024 * 1024).await.unwrap().to_vec();
        Resp {
            status: res.status(),
            headers: res.headers().clone(),
            body,
        }
    }

    /// Sends raw bytes with a content type.
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
    ) -> Resp {
        let m = awc::http::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .client
            .request(m, self.url(path))
            .insert_header(("Content-Type", content_type));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let mut res = req
            .send_body(body)
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let body = res.body().limit(64 * 1024 * 1024).await.unwrap().to_vec();
        Resp {
            status: res.status(),
            headers: res.headers().clone(),
            body,
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Resp {
        self.request("GET", path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Resp {
        self.request("POST", path, token, Some(body)).await
    }

    /// A handle on a `kaibiao serve` process, for the same helpers.
    pub fn remote(
        node: crate::cli::Node,
        db: kaibiao::db::Db,
        data_dir: PathBuf,
        clock: SharedClock,
    ) -> TestApp {
        TestApp {
            base: node.base.clone(),
            metrics_base: None,
            client: client(),
            db,
            data_dir,
            clock,
            fixed: None,
            services: None,
            handle: None,
            task: None,
            process: Some(node),
        }
    }

    /// The in-process server's services (not for child processes).
    pub fn services(&self) -> &Services {
        self.services.as_ref().expect("an in-process server")
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Every entry of the public log up to its latest checkpoint
    /// (`{index, leaf, …}` each), as anyone can read it.
    pub async fn log_entries(&self) -> Vec<Value> {
        let size = self.get("/api/log/checkpoint", None).await.expect(200)["checkpoint"]["size"]
            .as_u64()
            .unwrap();
        self.get(&format!("/api/log/entries?start=0&end={size}"), None)
            .await
            .expect(200)
            .as_array()
            .unwrap()
            .clone()
    }

    /// Moves the fixed clock (in-process servers only).
    pub fn advance(&self, d: chrono::Duration) {
        self.fixed.as_ref().expect("a fixed clock").advance(d);
    }

    pub fn fixed_clock(&self) -> Arc<FixedClock> {
        self.fixed.clone().expect("a fixed clock")
    }

    /// Stops the server and its background workers.
    pub async fn stop(mut self) {
        if let Some(h) = self.handle.take() {
            h.stop(true).await;
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
        if let Some(mut n) = self.process.take() {
            n.terminate();
        }
    }

    /// Waits until `f` holds, polling; panics with `what` after 10 s.
    pub async fn eventually<F, Fut>(&self, what: &str, mut f: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        for _ in 0..400 {
            if f().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("timed out waiting for: {what}");
    }

    /// Mail delivered to the file outbox, as (recipients line, subject, whole text).
    pub fn mails(&self) -> Vec<String> {
        read_mails(&self.data_dir.join("mail"))
    }

    pub async fn wait_for_mail(&self, to: &str, containing: &str) -> String {
        let mut found = None;
        self.eventually(&format!("a mail to {to} containing {containing:?}"), || {
            found = self
                .mails()
                .into_iter()
                .find(|m| m.contains(&format!("To: {to}")) && m.contains(containing));
            let ok = found.is_some();
            async move { ok }
        })
        .await;
        found.unwrap()
    }
}

pub fn read_mails(dir: &Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in rd.flatten() {
        if e.path().extension().is_some_and(|x| x == "eml") {
            if let Ok(raw) = std::fs::read(e.path()) {
                out.push(decode_mail(&raw));
            }
        }
    }
    out
}

/// Undoes the transfer encodings lettre may use, so tests can search text.
pub fn decode_mail(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw).replace("\r\n", "\n");
    let Some((head, body)) = text.split_once("\n\n") else {
        return text;
    };
    let decoded_body = if head
        .to_ascii_lowercase()
        .contains("content-transfer-encoding: base64")
    {
        use base64::Engine;
        let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
        base64::engine::general_purpose::STANDARD
            .decode(compact)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_else(|_| body.to_string())
    } else if head
        .to_ascii_lowercase()
        .contains("content-transfer-encoding: quoted-printable")
    {
        decode_qp(body)
    } else {
        body.to_string()
    };
    format!("{head}\n\n{decoded_body}")
}

fn decode_qp(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'=' && i + 1 < b.len() && b[i + 1] == b'\n' {
            i += 2;
        } else if b[i] == b'=' && i + 2 < b.len() {
            match u8::from_str_radix(&s[i + 1..i + 3], 16) {
                Ok(v) => {
                    out.push(v);
                    i += 3;
                }
                Err(_) => {
                    out.push(b[i]);
                    i += 1;
                }
            }
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A valid unified social credit code made from a number.
/// The fields an error envelope's `details` name, in order.
pub fn detail_fields(e: &Value) -> Vec<&str> {
    e["details"]
        .as_array()
        .expect("details")
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect()
}

pub fn credit_code(n: u32) -> String {
    const A: &[u8] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
    let first17 = format!("91110000{n:09}");
    let check = kaibiao::domain::credit_code::check_char(first17.as_bytes()).unwrap();
    let _ = A;
    format!("{first17}{check}")
}

pub fn unique() -> u32 {
    u32::from_be_bytes(kaibiao::crypto::random_bytes::<4>()) % 900_000_000
}

/// A minimal valid evaluation spec.
pub fn evaluation() -> Value {
    json!({
        "method": "comprehensive",
        "items": [
            {"id": "price", "name": "投标报价 / Price", "kind": "price", "max_points": "40"},
            {"id": "tech", "name": "技术方案 / Technical proposal", "kind": "technical", "max_points": "50"},
            {"id": "credit", "name": "信用 / Credit", "kind": "credit", "max_points": "10"}
        ],
        "price": {"benchmark": "trimmed_mean", "trim": 1, "k_coefficients": ["0.95", "0.97", "1"],
                  "deduct_above_per_pct": "1", "deduct_below_per_pct": "0.5"}
    })
}

/// The rows of a confidential table as text, columns joined by `|`.
pub async fn rows_of(app: &TestApp, table: &str) -> String {
    let sql = match table {
        "submissions" => "SELECT id || '|' || section_tag || '|' || bidder_tag || '|' || owner_tag || '|' || envelope_hash || '|' || state || '|' || record || '|' || progress AS t FROM submissions",
        "section_registrations" => "SELECT id || '|' || section_tag || '|' || member_tag || '|' || record AS t FROM section_registrations",
        "key_releases" => "SELECT section_id || '|' || custodian || '|' || sealed_secret || '|' || COALESCE(secret_key, '') AS t FROM key_releases",
        "bid_openings" => "SELECT envelope_hash || '|' || status || '|' || COALESCE(sealed_result, '') || '|' || COALESCE(summary, '') || '|' || COALESCE(bmk, '') AS t FROM bid_openings",
        "signins" => "SELECT id || '|' || section_tag || '|' || member_tag || '|' || record AS t FROM signins",
        other => panic!("no query for {other}"),
    };
    let db = app.db.clone();
    tokio::task::spawn_blocking(move || {
        use diesel::prelude::*;
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = diesel::sql_types::Text)]
            t: String,
        }
        let mut c = db.get_blocking().unwrap();
        let rows: Vec<Row> = diesel::sql_query(sql).load(&mut **c).unwrap();
        rows.into_iter().map(|r| r.t).collect::<Vec<_>>().join("\n")
    })
    .await
    .unwrap()
}

/// The schema version the migrations lead to (the newest folder's date and number).
pub fn latest_schema_version() -> String {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    let newest = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .max()
        .unwrap();
    newest.split('_').next().unwrap().replace('-', "")
}
