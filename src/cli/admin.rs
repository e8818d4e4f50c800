//! `kaibiao admin …` and `kaibiao db …`: bootstrap and schema maintenance,
//! run directly against the database (no server needed).

use std::io::BufRead;
use std::path::Path;
use std::time::Duration;

use clap::Subcommand;

use super::{load_config, ServerArgs};
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, DatabaseTarget};
use crate::db::Db;
use crate::domain::identity::{OrgKind, Role};
use crate::service::auth;

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Create a user whose e-mail counts as verified. The password is read
    /// from the first line of standard input (never from a flag).
    CreateUser {
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        role: String,
        #[arg(long)]
        display_name: String,
        /// Organisation id (every role but admin).
        #[arg(long)]
        org: Option<String>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Create an organisation.
    CreateOrg {
        #[arg(long)]
        kind: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        credit_code: String,
        /// Trading centres only.
        #[arg(long)]
        centre_code: Option<String>,
        #[command(flatten)]
        server: ServerArgs,
    },
}

#[derive(Subcommand)]
pub enum DbCommand {
    /// Apply pending migrations.
    Migrate(ServerArgs),
    /// Revert every migration (drops all data).
    RevertAll {
        /// Required: this deletes everything.
        #[arg(long)]
        yes: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Print the backend and schema version.
    Status(ServerArgs),
}

/// Whether the command may make the database (`db migrate`) or must find
/// the platform's (everything else).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Need {
    Existing,
    MayCreate,
}

/// The platform's database as the configuration names it, said on standard
/// error so nobody wonders where a user was written.
fn open(
    config_file: Option<&Path>,
    server: &ServerArgs,
    need: Need,
) -> anyhow::Result<(Config, Db)> {
    let config = load_config(config_file, &server.overrides())?;
    let target = config.database_target().map_err(anyhow::Error::msg)?;
    let from = match config_file {
        Some(f) => format!("configuration {}", f.display()),
        None => "no configuration file".to_string(),
    };
    // Where nothing names the database, the built-in default (./data) is
    // only used when it exists: an administrator written into a database
    // made on the spot, in whatever directory the command ran, would never
    // reach the running platform.
    let named = config_file.is_some()
        || server.data_dir.is_some()
        || server.database_url.is_some()
        || std::env::var_os("KAIBIAO_SERVER__DATA_DIR").is_some()
        || std::env::var_os("KAIBIAO_DATABASE__URL").is_some();
    if let DatabaseTarget::Sqlite(path) = &target {
        if !path.is_file() {
            if need == Need::Existing && !named {
                anyhow::bail!(
                    "no platform database at {} (the default; {from}): `kaibiao serve` has not run here. \
                     Run this where you run `kaibiao serve`, pass the --data-dir or --database-url you \
                     serve with, or put them in ./{} (which `kaibiao serve` and `kaibiao admin` both \
                     read); nothing was created",
                    target.describe(),
                    crate::config::DEFAULT_CONFIG_FILE
                );
            }
            eprintln!("creating a new, empty platform database");
        }
    }
    eprintln!("database: {} ({from})", target.describe());
    let db = Db::connect(
        &target,
        2,
        config.database.busy_timeout_ms,
        Duration::from_secs(config.database.connect_timeout_secs),
    )?;
    Ok((config, db))
}

fn print_problems(e: crate::error::AppError) -> anyhow::Error {
    let mut msg = format!("{}: {}", e.code.as_str(), e.message);
    for d in &e.details {
        msg.push_str(&format!("\n  - {}: {}", d.field, d.message));
    }
    anyhow::anyhow!(msg)
}

pub fn run(config_file: Option<&Path>, cmd: AdminCommand) -> anyhow::Result<()> {
    match cmd {
        AdminCommand::CreateUser {
            username,
            email,
            role,
            display_name,
            org,
            server,
        } => {
            let role = Role::parse(&role).ok_or_else(|| {
                let all: Vec<_> = Role::ALL.iter().map(|r| r.as_str()).collect();
                anyhow::anyhow!("--role must be one of: {}", all.join(", "))
            })?;
            let mut password = String::new();
            std::io::stdin().lock().read_line(&mut password)?;
            let password = password.trim_end_matches(['\r', '\n']).to_string();
            let (_, db) = open(config_file, &server, Need::Existing)?;
            db.migrate()?;
            let mut conn = db.get_blocking()?;
            let user = auth::bootstrap_user(
                &mut conn,
                SystemClock.now(),
                auth::BootstrapUser {
                    org_id: org.map(crate::domain::ids::OrgId::from_db),
                    role,
                    username: &username,
                    email: &email,
                    display_name: &display_name,
                    password: &password,
                },
            )
            .map_err(print_problems)?;
            println!("{}", serde_json::to_string_pretty(&user)?);
            Ok(())
        }
        AdminCommand::CreateOrg {
            kind,
            name,
            credit_code,
            centre_code,
            server,
        } => {
            let kind = OrgKind::parse(&kind).ok_or_else(|| {
                let all: Vec<_> = OrgKind::ALL.iter().map(|r| r.as_str()).collect();
                anyhow::anyhow!("--kind must be one of: {}", all.join(", "))
            })?;
            let (_, db) = open(config_file, &server, Need::Existing)?;
            db.migrate()?;
            let mut conn = db.get_blocking()?;
            let org = auth::bootstrap_org(
                &mut conn,
                SystemClock.now(),
                auth::NewOrg {
                    kind,
                    name,
                    credit_code,
                    centre_code,
                },
            )
            .map_err(print_problems)?;
            println!("{}", serde_json::to_string_pretty(&org)?);
            Ok(())
        }
    }
}

pub fn run_db(config_file: Option<&Path>, cmd: DbCommand) -> anyhow::Result<()> {
    match cmd {
        DbCommand::Migrate(server) => {
            let (_, db) = open(config_file, &server, Need::MayCreate)?;
            println!("schema version {}", db.migrate()?);
        }
        DbCommand::RevertAll { yes, server } => {
            if !yes {
                anyhow::bail!("this drops every table and all data; pass --yes to confirm");
            }
            let (_, db) = open(config_file, &server, Need::Existing)?;
            db.revert_all()?;
            println!("all migrations reverted");
        }
        DbCommand::Status(server) => {
            let (_, db) = open(config_file, &server, Need::Existing)?;
            println!(
                "backend {} schema version {}",
                db.backend().as_str(),
                db.schema_version_blocking()?
            );
        }
    }
    Ok(())
}
