//! The command line as a user runs it: real `kaibiao` processes.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{client, credit_code, unique, PASSWORD};

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_kaibiao")
}

/// A `kaibiao serve` child process; its stderr (the logs) is collected.
pub struct Node {
    pub base: String,
    child: Child,
    log: Arc<Mutex<String>>,
}

impl Node {
    /// Starts `kaibiao serve ARGS` with extra environment and waits until it
    /// says where it listens.
    pub fn start(args: &[&str], envs: &[(&str, String)]) -> Node {
        Self::start_in(None, args, envs)
    }

    /// [`Node::start`] in the working directory `cwd`.
    pub fn start_in(cwd: Option<&Path>, args: &[&str], envs: &[(&str, String)]) -> Node {
        let mut cmd = clean_command();
        if let Some(d) = cwd {
            cmd.current_dir(d);
        }
        cmd.arg("serve")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("kaibiao starts");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("kaibiao serving on ") {
                    if let Some(t) = tx.take() {
                        let _ = t.send(rest.trim().to_string());
                    }
                }
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        let base = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(b) => b,
            Err(_) => {
                let _ = child.kill();
                panic!("kaibiao serve did not start:\n{}", log.lock().unwrap());
            }
        };
        Node { base, child, log }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// SIGKILL: the process dies mid-whatever, with no chance to clean up.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait (actix stops gracefully).
    pub fn terminate(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The binary with none of this process's `KAIBIAO_…` variables (the test
/// harness's own settings would be unknown configuration to the server).
fn clean_command() -> Command {
    let mut cmd = Command::new(binary());
    for (k, _) in std::env::vars() {
        if k.starts_with("KAIBIAO_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// Runs the binary with `args`, `stdin` and extra environment; returns
/// (success, stdout, stderr).
pub fn run_with(args: &[&str], stdin: &str, env: &[(&str, &str)]) -> (bool, String, String) {
    run_in(None, args, stdin, env)
}

/// [`run_with`] in the working directory `cwd`.
fn run_in(
    cwd: Option<&Path>,
    args: &[&str],
    stdin: &str,
    env: &[(&str, &str)],
) -> (bool, String, String) {
    let mut cmd = clean_command();
    if let Some(d) = cwd {
        cmd.current_dir(d);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn run(args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    run_with(args, stdin.unwrap_or(""), &[])
}

/// `username` signs in on `node` with the tests' password.
async fn signs_in(node: &Node, username: &str) {
    let mut res = client()
        .post(format!("{}/api/auth/login", node.base))
        .send_json(&json!({"username": username, "password": PASSWORD}))
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{:?}", res.body().await);
}

fn dir_arg(p: &Path) -> String {
    p.display().to_string()
}

#[actix_web::test]
async fn serve_with_flags_answers_healthz_on_sqlite_in_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let mut node = Node::start(
        &["--data-dir", &dir_arg(&data), "--listen", "127.0.0.1:0"],
        &[],
    );
    let mut res = client()
        .get(format!("{}/healthz", node.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let h: serde_json::Value = res.json().await.unwrap();
    assert_eq!(h["backend"], "sqlite");
    assert!(data.join("kaibiao.sqlite3").is_file());
    let mut res = client()
        .get(format!("{}/", node.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(String::from_utf8_lossy(&res.body().await.unwrap()).contains("开标"));
    node.terminate();
    assert!(
        node.log().contains("kaibiao starting"),
        "structured start-up log expected:\n{}",
        node.log()
    );
}

#[actix_web::test]
async fn a_bad_configuration_is_refused_with_every_problem_listed() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("kaibiao.toml");
    std::fs::write(
        &cfg,
        "[server]\nlisten = \"not-an-address\"\n[rules]\nmin_days_by_law = -3\n[mail]\ntransport = \"smtp\"\nfrom = \"???\"\n",
    )
    .unwrap();
    let (ok, _, err) = run(
        &[
            "--config",
            &dir_arg(&cfg),
            "serve",
            "--database-url",
            "mysql://nope",
        ],
        None,
    );
    assert!(!ok);
    for needle in [
        "server.listen",
        "rules.min_days_by_law",
        "mail.smtp.host",
        "mail.from",
        "database.url",
    ] {
        assert!(err.contains(needle), "{needle} missing from:\n{err}");
    }
    // Unknown settings are errors, not silently ignored.
    std::fs::write(&cfg, "[server]\nlisten_on = \"127.0.0.1:1\"\n").unwrap();
    let (ok, _, err) = run(&["--config", &dir_arg(&cfg), "serve"], None);
    assert!(!ok);
    assert!(err.contains("unknown setting server.listen_on"), "{err}");
}

#[actix_web::test]
async fn admin_bootstrap_creates_a_verified_user_who_can_sign_in() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir_arg(&dir.path().join("d"));
    let (ok, out, err) = run(
        &[
            "admin",
            "create-org",
            "--kind",
            "trading_centre",
            "--name",
            "某市公共资源交易中心",
            "--credit-code",
            &credit_code(unique()),
            "--centre-code",
            "SZ",
            "--data-dir",
            &data,
        ],
        None,
    );
    assert!(ok, "{err}");
    let org: serde_json::Value = serde_json::from_str(&out).unwrap();
    let (ok, _, err) = run(
        &[
            "admin",
            "create-user",
            "--username",
            "root",
            "--email",
            "root@example.cn",
            "--role",
            "admin",
            "--display-name",
            "管理员",
            "--data-dir",
            &data,
        ],
        Some(&format!("{PASSWORD}\n")),
    );
    assert!(ok, "{err}");
    let (ok, _, err) = run(
        &[
            "admin",
            "create-user",
            "--username",
            "host1",
            "--email",
            "h@example.cn",
            "--role",
            "host",
            "--display-name",
            "主持人",
            "--org",
            org["id"].as_str().unwrap(),
            "--data-dir",
            &data,
        ],
        Some("short\n"),
    );
    assert!(!ok);
    assert!(err.contains("password"), "{err}");
    let (ok, out, _) = run(&["db", "status", "--data-dir", &data], None);
    let want = format!(
        "backend sqlite schema version {}",
        crate::helpers::latest_schema_version()
    );
    assert!(ok && out.contains(&want), "{out}");
    let (ok, _, err) = run(&["db", "revert-all", "--data-dir", &data], None);
    assert!(!ok && err.contains("--yes"), "{err}");

    let mut node = Node::start(&["--data-dir", &data, "--listen", "127.0.0.1:0"], &[]);
    signs_in(&node, "root").await;
    node.terminate();
}

/// The administration commands find the database the server uses: with no
/// flags they read `./kaibiao.toml` as `kaibiao serve` does, say which
/// database they wrote to, and never make a new one where nothing names it.
#[actix_web::test]
async fn admin_commands_use_the_servers_configuration_and_name_their_database() {
    let dir = tempfile::tempdir().unwrap();
    let here = dir.path();
    let create_user = |name: &str| {
        run_in(
            Some(here),
            &[
                "admin",
                "create-user",
                "--username",
                name,
                "--email",
                &format!("{name}@example.cn"),
                "--role",
                "admin",
                "--display-name",
                "管理员",
            ],
            &format!("{PASSWORD}\n"),
            &[],
        )
    };
    // Nothing names a database and none is here: refused, nothing made.
    let (ok, _, err) = create_user("root");
    assert!(!ok, "{err}");
    assert!(
        err.contains("kaibiao serve` has not run here") && err.contains("nothing was created"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_dir(here).unwrap().count(),
        0,
        "something was made"
    );

    // The server and the administrator read the same ./kaibiao.toml.
    std::fs::write(
        here.join("kaibiao.toml"),
        "[server]\ndata_dir = \"platform\"\nlisten = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    let mut node = Node::start_in(Some(here), &[], &[]);
    let (ok, _, err) = create_user("root");
    assert!(ok, "{err}");
    let db = std::fs::canonicalize(here.join("platform/kaibiao.sqlite3")).unwrap();
    assert!(
        err.contains(&format!("database: SQLite {}", db.display()))
            && err.contains("configuration kaibiao.toml"),
        "the database written to is named: {err}"
    );
    assert!(!here.join("data").exists(), "no stray ./data");
    signs_in(&node, "root").await;
    node.terminate();
}

/// A one-shot command on PostgreSQL exits cleanly, every time: no
/// connection is still being made (a TLS handshake in libpq) on a
/// background thread when the process exits. (It crashed one run in four.)
#[test]
fn db_status_on_postgres_exits_cleanly_every_time() {
    let store = crate::helpers::TestStore::postgres();
    let url = store.database_url.clone().unwrap();
    let data = store.data_dir().display().to_string();
    for i in 0..12 {
        let (ok, out, err) = run_with(
            &["db", "status", "--data-dir", &data, "--database-url", &url],
            "",
            &[],
        );
        assert!(
            ok && out.contains("backend postgres"),
            "run {i}: {out}{err}"
        );
    }
}
