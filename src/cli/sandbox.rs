//! A throwaway platform for the demo and the benchmarks: a real server on a
//! temporary data directory, bootstrapped organisations and users, and
//! signed-in API clients.

use std::path::Path;
use std::sync::Arc;

use crate::app::{Application, BuildOptions};
use crate::client::Client;
use crate::clock::SharedClock;
use crate::config::{Config, Overrides};
use crate::domain::identity::{OrgKind, Role};
use crate::service::{auth, Services};

pub struct Sandbox {
    pub base: String,
    pub services: Services,
    handle: actix_web::dev::ServerHandle,
    server: actix_web::rt::task::JoinHandle<std::io::Result<()>>,
    password: String,
    orgs: std::sync::atomic::AtomicU32,
}

/// A bootstrapped user: `(id, username)`.
pub type Person = (String, String);

impl Sandbox {
    /// Starts a platform in `dir` (SQLite there unless `database_url`), with
    /// `clock`, after `tweak` adjusts the configuration.
    pub async fn start(
        dir: &Path,
        database_url: Option<String>,
        clock: SharedClock,
        tweak: impl FnOnce(&mut Config),
    ) -> anyhow::Result<Sandbox> {
        let mut config = Config::load(
            None,
            Vec::<(String, String)>::new(),
            &Overrides {
                data_dir: Some(dir.join("data")),
                listen: Some("127.0.0.1:0".into()),
                database_url,
            },
        )
        .map_err(|e| anyhow::anyhow!(e.join("; ")))?;
        config.server.workers = 2;
        config.chronograph.poll_interval_ms = 50;
        config.mail.poll_interval_ms = 100;
        tweak(&mut config);
        let app = Application::build(
            config,
            BuildOptions {
                clock: Some(Arc::clone(&clock)),
                ..Default::default()
            },
        )
        .await?;
        let base = format!("http://{}", app.addr());
        let services = app.services().clone();
        let handle = app.handle();
        let server = actix_web::rt::spawn(app.run_until_stopped());
        Ok(Sandbox {
            base,
            services,
            handle,
            server,
            password: hex::encode(crate::crypto::random_bytes::<16>()),
            orgs: std::sync::atomic::AtomicU32::new(0),
        })
    }

    /// A valid unified social credit code, different for every call.
    pub fn credit_code(&self) -> String {
        let n = self.orgs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let first17 = format!("91110000{:09}", 700_000_000 + n);
        let check =
            crate::domain::credit_code::check_char(first17.as_bytes()).expect("valid symbols");
        format!("{first17}{check}")
    }

    pub async fn org(&self, kind: OrgKind, name: &str) -> anyhow::Result<String> {
        let (db, now, code) = (
            self.services.db.clone(),
            self.services.now(),
            self.credit_code(),
        );
        let centre_code = (kind == OrgKind::TradingCentre).then(|| format!("S{}", &code[8..17]));
        let name = name.to_string();
        tokio::task::spawn_blocking(move || {
            let mut c = db.get_blocking()?;
            let org = auth::bootstrap_org(
                &mut c,
                now,
                auth::NewOrg {
                    kind,
                    name,
                    credit_code: code,
                    centre_code,
                },
            )
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            Ok(org.id.into_string())
        })
        .await?
    }

    /// A user whose e-mail counts as verified, with the sandbox's password.
    pub async fn user(
        &self,
        org: Option<&str>,
        role: Role,
        username: &str,
    ) -> anyhow::Result<Person> {
        let (db, now, password) = (
            self.services.db.clone(),
            self.services.now(),
            self.password.clone(),
        );
        let (org, username) = (
            org.map(|o| crate::domain::ids::OrgId::from_db(o.to_string())),
            username.to_string(),
        );
        tokio::task::spawn_blocking(move || {
            let mut c = db.get_blocking()?;
            let u = auth::bootstrap_user(
                &mut c,
                now,
                auth::BootstrapUser {
                    org_id: org,
                    role,
                    username: &username,
                    email: &format!("{username}@sandbox.kaibiao.localhost"),
                    display_name: &username,
                    password: &password,
                },
            )
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            Ok((u.id.into_string(), username))
        })
        .await?
    }

    pub async fn signin(&self, username: &str) -> anyhow::Result<Client> {
        let mut c = Client::new(&self.base);
        c.login(username, &self.password).await?;
        Ok(c)
    }

    /// Uploads a tender document as `host`.
    pub async fn upload(
        &self,
        host: &Client,
        section: &str,
        name: &str,
        bytes: &'static [u8],
    ) -> anyhow::Result<()> {
        let mut res = awc::Client::default()
            .post(format!(
                "{}/api/sections/{section}/documents?name={}",
                self.base,
                crate::http::public::url_encode(name)
            ))
            .bearer_auth(host.token().unwrap_or_default())
            .insert_header(("Content-Type", "application/pdf"))
            .send_body(bytes)
            .await
            .map_err(|e| anyhow::anyhow!("upload: {e}"))?;
        let body = res
            .body()
            .await
            .map_err(|e| anyhow::anyhow!("upload: {e}"))?;
        anyhow::ensure!(
            res.status().is_success(),
            "upload refused: {}",
            String::from_utf8_lossy(&body)
        );
        Ok(())
    }

    /// The calls (征询) sent to drawn experts so far, from the platform's
    /// outbox: (expert e-mail, answer token), oldest first.
    pub async fn expert_calls(&self) -> anyhow::Result<Vec<(String, String)>> {
        let rows = self
            .services
            .db
            .run(|c| Ok(crate::db::outbox::all(c)?))
            .await
            .map_err(|e| anyhow::anyhow!("{}", e.message))?;
        Ok(rows
            .into_iter()
            .filter(|m| m.kind == "expert_called")
            .filter_map(|m| {
                let i = m.body.find("kbx_")?;
                let token: String = m.body[i..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
                    .collect();
                Some((m.to_addr, token))
            })
            .collect())
    }

    /// [`Sandbox::expert_calls`], once at least `n` have been sent.
    pub async fn wait_expert_calls(&self, n: usize) -> anyhow::Result<Vec<(String, String)>> {
        for _ in 0..400 {
            let c = self.expert_calls().await?;
            if c.len() >= n {
                return Ok(c);
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        anyhow::bail!("expected {n} call mails")
    }

    pub async fn stop(self) {
        self.handle.stop(true).await;
        let _ = self.server.await;
    }
}
