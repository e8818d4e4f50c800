//! Start-up: everything shared (database pool, clock, blob store, platform
//! key, mailer, scheduler) is made here, once, before the HTTP server — so
//! every worker shares one copy — and `Application::build` hands back the
//! bound port. Production and the tests start the server the same way.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use tokio::sync::{watch, Notify};

use crate::clock::{AcceleratedClock, SharedClock, SystemClock};
use crate::config::{ClockMode, Config};
use crate::crypto::atrest::AtRest;
use crate::db::Db;
use crate::domain::time::Timestamp;
use crate::metrics::Metrics;
use crate::notify::mailer::Mailer;
use crate::room::hub::Hub;
use crate::service::Services;
use crate::storage::BlobStore;
use crate::{chronograph, http, keystore, notify};

/// Parts a test (or the demo) may supply instead of building them from the
/// configuration.
#[derive(Default)]
pub struct BuildOptions {
    pub clock: Option<SharedClock>,
    /// Don't start the chronograph (tests that drive `chronograph::tick` by hand).
    pub no_chronograph: bool,
}

pub struct Application {
    addr: SocketAddr,
    /// Where `/metrics` is served apart (`server.metrics_listen`), if it is.
    metrics_addr: Option<SocketAddr>,
    metrics_server: Option<actix_web::dev::Server>,
    services: Services,
    server: actix_web::dev::Server,
    shutdown: watch::Sender<bool>,
    background: Vec<tokio::task::JoinHandle<()>>,
}

pub fn clock_from_config(config: &Config) -> SharedClock {
    match config.clock.mode {
        ClockMode::System => Arc::new(SystemClock),
        ClockMode::Accelerated => {
            let anchor = Timestamp::parse_rfc3339(&config.clock.anchor)
                .map(|t| t.millis())
                .unwrap_or_else(|| crate::clock::Clock::now(&SystemClock).millis());
            Arc::new(AcceleratedClock::anchored(
                anchor,
                anchor,
                config.clock.speed,
            ))
        }
    }
}

fn node_name(config: &Config) -> String {
    if !config.chronograph.node_id.is_empty() {
        return config.chronograph.node_id.clone();
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "node".into());
    format!("{host}-{}", std::process::id())
}

impl Application {
    pub async fn build(config: Config, opts: BuildOptions) -> anyhow::Result<Application> {
        let data_dir = config.server.data_dir.clone();
        std::fs::create_dir_all(&data_dir)?;
        let target = config.database_target().map_err(anyhow::Error::msg)?;
        let db = Db::connect(
            &target,
            config.database.pool_size,
            config.database.busy_timeout_ms,
            Duration::from_secs(config.database.connect_timeout_secs),
        )?;
        let migrating = db.clone();
        let schema = tokio::task::spawn_blocking(move || migrating.migrate()).await??;
        let dd = data_dir.clone();
        let (platform_key, centre_key, at_rest) = tokio::task::spawn_blocking(move || {
            let p = keystore::load_or_create_platform_key(&dd)?;
            let c = keystore::load_or_create_centre_key(&dd)?;
            let a = keystore::load_or_create_secret(
                &dd,
                keystore::AT_REST_KEY_FILE,
                "the at-rest key",
            )?;
            anyhow::Ok((p, c, a))
        })
        .await??;
        let blobs = BlobStore::open(&config.blob_dir())?;
        let mailer = Mailer::from_config(&config.mail, &data_dir)?;
        let clock = opts.clock.unwrap_or_else(|| clock_from_config(&config));

        let listener = TcpListener::bind(config.listen_addr())?;
        let addr = listener.local_addr()?;
        let metrics_listener = match config.server.metrics_listen.as_str() {
            "" => None,
            a => Some(TcpListener::bind(a)?),
        };
        let node = node_name(&config);
        let trust = crate::service::evaluation::load_trust(&config, &centre_key)?;
        let services = Services {
            db,
            clock,
            public_url: config.public_url(addr),
            data_dir,
            config: Arc::new(config),
            blobs,
            metrics: Arc::new(Metrics::new()),
            platform_key: Arc::new(platform_key),
            centre_key: Arc::new(centre_key),
            atrest: Arc::new(AtRest::from_secret(&at_rest)),
            uploads: Arc::default(),
            chronograph_wake: Arc::new(Notify::new()),
            outbox_wake: Arc::new(Notify::new()),
            trust: Arc::new(trust),
            scores: crate::service::evaluation::ScoreWriter::default(),
        };
        let centres_logged = crate::service::evaluation::log_centres(&services)
            .await
            .map_err(|e| anyhow::anyhow!("logging the centres' registrations: {e}"))?;
        tracing::info!(
            %addr,
            centres_logged,
            backend = services.db.backend().as_str(),
            schema,
            clock = services.clock.describe(),
            node,
            centre_fingerprint = crate::crypto::sha256_hex(
                services.centre_key.verifying_key().as_bytes()
            ),
            "kaibiao starting"
        );

        let (shutdown, rx) = watch::channel(false);
        let (hub, hub_tasks) = Hub::start(services.clone(), node.clone(), rx.clone());
        let hub_data = web::Data::new(hub);
        let data = web::Data::new(services.clone());
        let max_json = services.config.server.max_json_bytes;
        let workers = match services.config.server.workers {
            0 => std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            n => n,
        };
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(hub_data.clone())
                .wrap(from_fn(http::middleware::observe))
                .configure(|c| http::configure(c, max_json))
                .default_service(web::to(http::route_not_found))
        })
        .workers(workers)
        .shutdown_timeout(10)
        .listen(listener)?
        .run();
        let (metrics_addr, metrics_server) = match metrics_listener {
            None => (None, None),
            Some(l) => {
                let addr = l.local_addr()?;
                let data = web::Data::new(services.clone());
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(data.clone())
                        .route("/metrics", web::get().to(http::system::metrics_only))
                        .default_service(web::to(http::route_not_found))
                })
                .workers(1)
                .shutdown_timeout(1)
                .listen(l)?
                .run();
                tracing::info!(%addr, "metrics served apart");
                (Some(addr), Some(server))
            }
        };

        let mut background = hub_tasks;
        background.push(tokio::spawn(notify::outbox::run(
            services.clone(),
            mailer,
            rx.clone(),
        )));
        if !opts.no_chronograph {
            background.push(tokio::spawn(chronograph::run(services.clone(), node, rx)));
        }
        Ok(Application {
            addr,
            metrics_addr,
            metrics_server,
            services,
            server,
            shutdown,
            background,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The separate metrics listener's address, when configured.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    pub fn services(&self) -> &Services {
        &self.services
    }

    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until the server is stopped (a signal, or `handle().stop()`),
    /// then stops the background workers.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let metrics_handle = self.metrics_server.as_ref().map(|m| m.handle());
        let main = async {
            let r = self.server.await;
            if let Some(h) = &metrics_handle {
                h.stop(true).await;
            }
            r
        };
        let metrics = async {
            if let Some(m) = self.metrics_server {
                let _ = m.await;
            }
        };
        let (r, ()) = futures_util::future::join(main, metrics).await;
        let _ = self.shutdown.send(true);
        for h in self.background {
            let _ = h.await;
        }
        r
    }
}
