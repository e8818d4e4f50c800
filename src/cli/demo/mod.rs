//! `kaibiao demo`: a complete section on a fresh temporary platform — a
//! real server, real HTTP, the bidders', custodians' and experts' client
//! code — on an accelerated clock. Every step is checked; any failure exits
//! non-zero.
//!
//! The story, one file per act: [`cast`] (the organisations and people),
//! [`tender`] (the section drafted, keyed and published), [`bidding`]
//! (sealed bids, a revision, a withdrawal), [`opening`] (the room, the
//! deadline, the decryption, 唱标, the signed record), [`evaluation`] (the
//! pool, the draw, passes, reviews, scores, the report, the award), and
//! finally the transcript, verified offline.

mod bidding;
mod cast;
mod evaluation;
mod opening;
mod tender;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use serde_json::Value;

use super::sandbox::Sandbox;
use crate::client::Client;
use crate::clock::{AcceleratedClock, Clock};
use crate::domain::time::Timestamp;

#[derive(Args)]
pub struct DemoArgs {
    /// Virtual seconds per real second. The weeks between publication and
    /// the deadline are jumped over; everything else runs at this speed.
    #[arg(long, default_value_t = 60.0)]
    pub speed: f64,
    /// Where to write the section's transcript (default: in the temporary directory).
    #[arg(long)]
    pub transcript: Option<PathBuf>,
    /// Run on PostgreSQL instead of a temporary SQLite database.
    #[arg(long)]
    pub database_url: Option<String>,
}

/// What every act works with: the platform, its clock, a scratch directory
/// for the parties' files, and the numbered narration.
pub struct Demo<'a> {
    pub sandbox: &'a Sandbox,
    pub clock: &'a AcceleratedClock,
    pub speed: f64,
    pub dir: &'a Path,
    steps: u32,
}

impl Demo<'_> {
    /// Announces the next numbered step.
    pub fn step(&mut self, what: &str) {
        self.steps += 1;
        println!("\n[{:>2}] {what}", self.steps);
    }

    /// A check the demo stands on: printed when it holds, fatal when not.
    pub fn check(&self, ok: bool, what: &str) -> anyhow::Result<()> {
        anyhow::ensure!(ok, "check failed: {what}");
        println!("     ✓ {what}");
        Ok(())
    }

    pub fn base(&self) -> &str {
        &self.sandbox.base
    }

    /// An unauthenticated client, as the public and the experts use.
    pub fn anonymous(&self) -> Client {
        Client::new(&self.sandbox.base)
    }
}

pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.speed.is_finite() && args.speed >= 1.0,
        "--speed must be at least 1"
    );
    let dir = tempfile::tempdir()?;
    let result = actix_web::rt::System::new().block_on(demo(&args, dir.path()));
    match &result {
        Ok(()) => println!("\nDEMO PASSED"),
        Err(e) => eprintln!("\nDEMO FAILED: {e:#}"),
    }
    result
}

async fn demo(args: &DemoArgs, dir: &Path) -> anyhow::Result<()> {
    println!("\n[ 1] a fresh platform on a temporary directory, on an accelerated clock");
    let clock = AcceleratedClock::starting_now(args.speed);
    let trust_dir = dir.join("trust");
    let partner_keys = evaluation::partner_keys(&trust_dir)?;
    let sandbox = Sandbox::start(
        dir,
        args.database_url.clone(),
        Arc::new(clock.clone()),
        |c| {
            // Weeks pass in seconds here: keep the demo's sessions for the whole run.
            c.rules.session_ttl_hours = 720;
            c.evaluation.trust_dir = trust_dir;
            c.evaluation.centre_code = evaluation::HOST_CENTRE.into();
            c.evaluation.centre_name = "示范市公共资源交易中心".into();
        },
    )
    .await?;
    println!(
        "     serving on {} ({}, clock ×{})",
        sandbox.base,
        sandbox.services.db.backend().as_str(),
        args.speed
    );
    let mut d = Demo {
        sandbox: &sandbox,
        clock: &clock,
        speed: args.speed,
        dir,
        steps: 1,
    };
    let r = story(&mut d, args, &partner_keys).await;
    sandbox.stop().await;
    r
}

async fn story(
    d: &mut Demo<'_>,
    args: &DemoArgs,
    partner_keys: &std::collections::BTreeMap<&'static str, ed25519_dalek::SigningKey>,
) -> anyhow::Result<()> {
    let cast = cast::assemble(d).await?;
    let tender = tender::publish(d, &cast).await?;
    let bids = bidding::run(d, &cast, &tender).await?;
    opening::run(d, &cast, &tender, &bids).await?;
    let result = evaluation::run(d, &cast, &tender.sid, partner_keys).await?;
    transcript(d, args, &tender.sid, &result).await
}

/// The last act: the transcript, exported and checked by `kaibiao verify`.
async fn transcript(
    d: &mut Demo<'_>,
    args: &DemoArgs,
    sid: &str,
    result: &Value,
) -> anyhow::Result<()> {
    d.step("the transcript is exported and verified offline");
    let transcript: Value = d
        .anonymous()
        .get(&format!("/api/public/sections/{sid}/transcript"))
        .await?;
    let path = args
        .transcript
        .clone()
        .unwrap_or_else(|| d.dir.join("transcript.json"));
    std::fs::write(&path, serde_json::to_vec_pretty(&transcript)?)?;
    let summary = super::verify::verify_file(&path)?;
    let o = summary
        .opening
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("the transcript has no opening"))?;
    d.check(
        summary.accepted == 3 && summary.late_attempts == 1,
        &format!("kaibiao verify accepts {}", path.display()),
    )?;
    d.check(
        o.key_releases == 3
            && o.decrypted == 3
            && o.confirmations == 3
            && o.objections == 1
            && o.closed
            && o.countersigned,
        "…re-deriving every key from the released ones, re-decrypting every summary, checking every signature",
    )?;
    let e = summary
        .evaluation
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("the transcript has no evaluation"))?;
    d.check(
        e.committee == 7
            && e.skipped_for_conflict == 1
            && e.dissents == 1
            && e.awarded.as_deref() == result["ranking"][0]["bidder"].as_str(),
        "…recomputing the draw from the revealed seed and the pool snapshot, every score and the ranking, checking every pass and signature",
    )?;
    Ok(())
}

/// `s` padded to `width` terminal columns (a CJK character takes two).
fn pad(s: &str, width: usize) -> String {
    let cols: usize = s.chars().map(|c| if c.is_ascii() { 1 } else { 2 }).sum();
    format!("{s}{}", " ".repeat(width.saturating_sub(cols)))
}

/// The first characters of a hash, for the narration.
fn short(h: &str) -> String {
    h.chars().take(16).collect::<String>() + "…"
}

/// Waits (in real time) until the accelerated clock shows `t`.
async fn wait_until(clock: &dyn Clock, t: Timestamp) {
    while clock.now() < t {
        let d = clock.real_duration_until(t).unwrap_or_default();
        tokio::time::sleep(
            d.min(std::time::Duration::from_millis(200))
                .max(std::time::Duration::from_millis(5)),
        )
        .await;
    }
}
