//! The command line (DESIGN §9). `main.rs` only calls [`main`].

mod admin;
mod bench;
mod centre;
pub mod client;
mod demo;
mod opening;
mod sandbox;
pub mod verify;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::app::{Application, BuildOptions};
use crate::config::{Config, LogFormat, Overrides};

#[derive(Parser)]
#[command(
    name = "kaibiao",
    version,
    about = "kaibiao (开标): sealed bids, live no-meeting openings, remote evaluation"
)]
pub struct Cli {
    /// A TOML configuration file (also KAIBIAO_CONFIG) [default:
    /// ./kaibiao.toml when it exists].
    #[arg(long, global = true, env = "KAIBIAO_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Args, Clone, Default)]
pub struct ServerArgs {
    /// Where the database (SQLite), blobs, keys and mail live [default: ./data].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long)]
    pub listen: Option<String>,
    /// postgres://… for PostgreSQL [default: SQLite in the data directory].
    #[arg(long)]
    pub database_url: Option<String>,
}

impl ServerArgs {
    fn overrides(&self) -> Overrides {
        Overrides {
            data_dir: self.data_dir.clone(),
            listen: self.listen.clone(),
            database_url: self.database_url.clone(),
        }
    }
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the platform (the default when no command is given).
    Serve(ServerArgs),
    /// Bootstrap organisations and users.
    #[command(subcommand)]
    Admin(admin::AdminCommand),
    /// Database schema maintenance.
    #[command(subcommand)]
    Db(admin::DbCommand),
    /// Sign in to a platform and keep the session in a file (password from standard input).
    Login(client::LoginArgs),
    /// The bidder's client: keys, sealing, submission, receipts.
    #[command(subcommand)]
    Bid(client::BidCommand),
    /// The custodian's client: identity and per-section keys, key release.
    #[command(subcommand)]
    Custodian(client::CustodianCommand),
    /// The host's controls of an opening.
    #[command(subcommand)]
    Host(opening::HostCommand),
    /// The supervisor's identity key and countersignatures.
    #[command(subcommand)]
    Supervisor(opening::SupervisorCommand),
    /// A trading centre's key, its public file and expert passes.
    #[command(subcommand)]
    Centre(centre::CentreCommand),
    /// Watch an opening room.
    #[command(subcommand)]
    Room(opening::RoomCommand),
    /// Section transcripts.
    #[command(subcommand)]
    Transcript(verify::TranscriptCommand),
    /// Check a transcript offline: exit 0 if valid, otherwise non-zero and why.
    Verify {
        file: PathBuf,
        /// A centre's key fingerprint known from outside the platform, as
        /// CODE=SHA256 (repeat for each centre); with any pin, every centre
        /// the draw drew from must be pinned and match.
        #[arg(long = "pin", value_name = "CODE=FINGERPRINT")]
        pins: Vec<String>,
    },
    /// Run a complete section on a fresh temporary platform, on an accelerated clock.
    Demo(demo::DemoArgs),
    /// Measure the performance targets against same-run baselines.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Print the API description (OpenAPI 3.1), as `/api/openapi.json` serves it.
    ApiDescription,
}

/// Loads and validates the configuration, printing every problem.
pub fn load_config(
    file: Option<&std::path::Path>,
    overrides: &Overrides,
) -> anyhow::Result<Config> {
    Config::load(file, std::env::vars(), overrides).map_err(|errors| {
        let mut msg = String::from("the configuration has problems:\n");
        for e in errors {
            msg.push_str(&format!("  - {e}\n"));
        }
        anyhow::anyhow!(msg)
    })
}

fn init_tracing(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log.level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let _ = match config.log.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

pub fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config_file = crate::config::config_file(cli.config.as_deref());
    match cli.command.unwrap_or(Command::Serve(ServerArgs::default())) {
        Command::Serve(args) => {
            let config = load_config(config_file.as_deref(), &args.overrides())?;
            init_tracing(&config);
            actix_web::rt::System::new().block_on(async move {
                let app = Application::build(config, BuildOptions::default()).await?;
                eprintln!("kaibiao serving on http://{}", app.addr());
                app.run_until_stopped().await?;
                Ok(())
            })
        }
        Command::Admin(cmd) => admin::run(config_file.as_deref(), cmd),
        Command::Db(cmd) => admin::run_db(config_file.as_deref(), cmd),
        Command::Login(args) => client::login(args),
        Command::Bid(cmd) => client::bid(cmd),
        Command::Custodian(cmd) => client::custodian(cmd),
        Command::Host(cmd) => opening::host(cmd),
        Command::Supervisor(cmd) => opening::supervisor(cmd),
        Command::Room(cmd) => opening::room(cmd),
        Command::Centre(cmd) => centre::run(cmd),
        Command::Transcript(cmd) => verify::transcript(cmd),
        Command::Verify { file, pins } => verify::verify(&file, &pins),
        Command::Demo(args) => demo::run(args),
        Command::Bench(cmd) => bench::run(cmd),
        Command::ApiDescription => {
            println!("{}", crate::http::api_description().json);
            Ok(())
        }
    }
}
