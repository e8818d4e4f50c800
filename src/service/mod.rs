//! Use cases. Each public function here is one thing a user can do; it
//! authorises the caller, validates the input into domain types, and makes
//! the change in one transaction together with its event, its audit record
//! and its outbox mail (`action`). Each returns a named type: the API's
//! contract. HTTP handlers and the command line both call these.
//!
//! `action` and `transition` are the plumbing every use case shares; the
//! other modules are one use-case area each.

pub mod action;
pub mod auth;
pub mod bids;
pub mod confidential;
pub mod evaluation;
pub mod keys;
pub mod opening;
pub mod policy;
pub mod projects;
pub mod room;
pub mod schedule;
pub mod sections;
pub mod transcript;
pub mod transition;
pub mod translog;

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::Notify;

use crate::clock::SharedClock;
use crate::config::Config;
use crate::db::audit::Who;
use crate::db::Db;
use crate::domain::identity::Role;
use crate::domain::ids::{OrgId, UserId};
use crate::domain::time::Timestamp;
use crate::error::{AppError, AppResult};
use crate::metrics::Metrics;
use crate::storage::BlobStore;

/// Everything a use case needs, made once in `app::build` and shared by all
/// workers, the chronograph and the outbox worker.
#[derive(Clone)]
pub struct Services {
    pub db: Db,
    pub clock: SharedClock,
    pub config: Arc<Config>,
    pub blobs: BlobStore,
    pub metrics: Arc<Metrics>,
    pub platform_key: Arc<ed25519_dalek::SigningKey>,
    /// This centre's own key: it signs the passes of the centre's experts.
    pub centre_key: Arc<ed25519_dalek::SigningKey>,
    /// Blind indexes and sealed records for what is secret until the deadline.
    pub atrest: Arc<crate::crypto::atrest::AtRest>,
    /// Hashing state of part uploads in progress on this node.
    pub uploads: Arc<bids::UploadHashes>,
    /// Wakes the chronograph when a job is scheduled on this node.
    pub chronograph_wake: Arc<Notify>,
    /// Wakes the outbox worker when mail is queued on this node.
    pub outbox_wake: Arc<Notify>,
    /// Base URL for links in e-mails.
    pub public_url: String,
    pub data_dir: PathBuf,
    /// The centres whose expert passes this centre admits (itself included).
    pub trust: Arc<crate::evaluation::pass::Trust>,
    /// Batches the experts' score writes into group commits.
    pub scores: evaluation::ScoreWriter,
}

impl Services {
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub fn platform_public_hex(&self) -> String {
        hex::encode(self.platform_key.verifying_key().to_bytes())
    }

    /// Call after committing a transaction that queued mail or scheduled jobs.
    pub fn kick_workers(&self) {
        self.outbox_wake.notify_one();
        self.chronograph_wake.notify_one();
    }
}

/// A signed-in user, as established by the session token.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub id: UserId,
    pub org_id: Option<OrgId>,
    pub role: Role,
    pub username: String,
}

/// Who is calling a use case, and under which request.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user: AuthUser,
    pub request_id: String,
}

impl Actor {
    pub fn who(&self) -> Who {
        Who {
            actor_id: Some(self.user.id.to_string()),
            request_id: Some(self.request_id.clone()),
        }
    }

    /// Refuses callers whose role is not among `roles`.
    pub fn require(&self, roles: &[Role]) -> AppResult<()> {
        if roles.contains(&self.user.role) {
            Ok(())
        } else {
            Err(AppError::forbidden(format!(
                "this action is not open to the {} role",
                self.user.role
            )))
        }
    }

    pub fn org(&self) -> AppResult<&OrgId> {
        self.user
            .org_id
            .as_ref()
            .ok_or_else(|| AppError::forbidden("this action needs a user of an organisation"))
    }
}

/// Trims and bounds a free-text field.
pub fn text_field(
    p: &mut crate::domain::problems::Problems,
    field: &str,
    value: &str,
    min: usize,
    max: usize,
) -> String {
    let v = value.trim().to_string();
    let n = v.chars().count();
    if n < min || n > max {
        p.push(field, format!("must be {min} to {max} characters"));
    }
    if v.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        p.push(field, "must not contain control characters");
    }
    v
}
