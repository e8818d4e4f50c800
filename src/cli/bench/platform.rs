//! The benchmarks' fixtures, built through the platform itself: a sandbox
//! server, organisations and people bootstrapped, and every step after
//! that over HTTP as the parties would take it — the section drafted, keyed
//! and published, bids sealed and submitted, the opening run, the committee
//! drawn, seated and qualifying the bids. Nothing is written to the
//! database directly.

use std::path::Path;

use serde_json::{json, Value};

use crate::cli::sandbox::Sandbox;
use crate::client::{self, Client, SealRequest};
use crate::clock::{AcceleratedClock, SharedClock};
use crate::crypto::{sign, x25519};
use crate::domain::identity::{OrgKind, Role};
use crate::domain::time::Timestamp;

/// Parameters for sealing without a server (bench only): one custodian set
/// of 5, 3-of-5; with the custodians' secret keys, by position 1–5.
pub fn fake_params() -> (String, String, Vec<x25519::SecretKey>) {
    let secrets: Vec<x25519::SecretKey> = (0..5).map(|_| x25519::SecretKey::generate()).collect();
    let custodians: Vec<Value> = secrets
        .iter()
        .enumerate()
        .map(|(i, k)| {
            json!({"position": i + 1, "user_id": format!("usr_{}", i + 1), "identity_key": "00".repeat(32),
                   "section_key": hex::encode(k.public_key())})
        })
        .collect();
    let p = json!({
        "format": "kaibiao-section-params/1", "params_version": 1, "section_id": "sec_bench", "section_code": "B",
        "section_name": "bench", "project_id": "prj_bench", "project_code": "B", "project_name": "bench",
        "category": "construction", "centre_id": "org_c", "tenderer_id": "org_t", "published_at_ms": 0,
        "deadline_ms": 1, "grace_ms": 0, "decryption_mode": "custodians", "window_ms": 1, "threshold": 3,
        "custodians": custodians, "min_bidders": 1, "ceiling_price": null,
        "summary_fields": [{"key": "price", "label": "price", "kind": "money", "required": true}],
        "evaluation": {"method": "lowest_price", "items": [], "price": null,
                       "aggregation": {"trim_when_at_least": 7, "outlier_points": "20.00"}},
        "documents": [], "platform_key": "00".repeat(32),
    });
    let text =
        String::from_utf8(crate::crypto::jcs::canonicalize(&p).expect("json")).expect("utf-8");
    let hash = crate::crypto::sha256_hex(text.as_bytes());
    (text, hash, secrets)
}

/// A running platform with one published section and `bidders` bidders
/// whose keys are registered, signed in.
pub struct Bench {
    pub sandbox: Sandbox,
    pub section: String,
    pub host: Client,
    /// The regulator (the supervisors' organisation) of the section.
    pub regulator: String,
    /// The section's custodians, 2 of 3.
    pub custodians: Vec<Custodian>,
    pub params: (String, String),
    /// (client, organisation, signing key, encryption key) of each bidder.
    pub bidders: Vec<(Client, String, ed25519_dalek::SigningKey, x25519::SecretKey)>,
}

/// A custodian of the section, with its keys.
pub struct Custodian {
    pub client: Client,
    pub user_id: String,
    pub identity: ed25519_dalek::SigningKey,
    pub section_key: x25519::SecretKey,
}

pub async fn platform(
    dir: &Path,
    bidders: usize,
    deadline_in: chrono::Duration,
    max_bid: u64,
    clock: SharedClock,
) -> anyhow::Result<Bench> {
    platform_with(
        dir,
        bidders,
        deadline_in,
        max_bid,
        clock,
        json!({"method": "lowest_price"}),
    )
    .await
}

/// [`platform`], with the section's evaluation criteria.
pub async fn platform_with(
    dir: &Path,
    bidders: usize,
    deadline_in: chrono::Duration,
    max_bid: u64,
    clock: SharedClock,
    evaluation: Value,
) -> anyhow::Result<Bench> {
    let sandbox = Sandbox::start(dir, None, clock.clone(), |c| {
        c.server.max_bid_bytes = max_bid;
        c.rules.min_days_other = 0;
        c.database.pool_size = 16;
        c.log.level = "warn".into();
        // The clock may jump past the deadline: keep the sessions.
        c.rules.session_ttl_hours = 720;
    })
    .await?;
    let centre = sandbox.org(OrgKind::TradingCentre, "bench centre").await?;
    let tenderer = sandbox.org(OrgKind::Tenderer, "bench tenderer").await?;
    let regulator = sandbox.org(OrgKind::Regulator, "bench regulator").await?;
    let (_, host_name) = sandbox
        .user(Some(&centre), Role::Host, "bench-host")
        .await?;
    let host = sandbox.signin(&host_name).await?;
    let project: Value = host
        .post(
            "/api/projects",
            &json!({"code": "BENCH", "name": "bench", "category": "land_use", "must_tender_by_law": false,
                    "tenderer_org_id": tenderer, "regulator_org_id": regulator}),
        )
        .await?;
    let mut custodians = Vec::new();
    for i in 0..3 {
        let (user_id, name) = sandbox
            .user(
                Some(&centre),
                Role::Custodian,
                &format!("bench-custodian-{i}"),
            )
            .await?;
        let client = sandbox.signin(&name).await?;
        let identity = sign::generate();
        client
            .register_ed25519("custodian_identity", &identity)
            .await?;
        custodians.push(Custodian {
            client,
            user_id,
            identity,
            section_key: x25519::SecretKey::generate(),
        });
    }
    let section: Value = host
        .post(
            &format!("/api/projects/{}/sections", project["id"].as_str().unwrap_or_default()),
            &json!({"code": "B-1", "name": "bench", "deadline": clock.now().plus(deadline_in).rfc3339(),
                    "custodians": custodians.iter().map(|c| c.user_id.clone()).collect::<Vec<_>>(), "threshold": 2,
                    "min_bidders": 1, "evaluation": evaluation}),
        )
        .await?;
    let sid = section["id"].as_str().unwrap_or_default().to_string();
    for c in &custodians {
        c.client
            .register_section_key(&sid, &c.user_id, &c.identity, &c.section_key)
            .await?;
    }
    sandbox
        .upload(&host, &sid, "doc.pdf", b"%PDF bench")
        .await?;
    let _: Value = host
        .post(&format!("/api/sections/{sid}/publish"), &json!({}))
        .await?;
    let (_, hash, json_text) = Client::new(&sandbox.base).params(&sid).await?;
    let mut list = Vec::new();
    for i in 0..bidders {
        let org = sandbox
            .org(OrgKind::Bidder, &format!("bench bidder {i}"))
            .await?;
        let (_, name) = sandbox
            .user(Some(&org), Role::Bidder, &format!("bench-bidder-{i}"))
            .await?;
        let c = sandbox.signin(&name).await?;
        let s = sign::generate();
        let e = x25519::SecretKey::generate();
        c.register_ed25519("bidder_signing", &s).await?;
        c.register_x25519(&e).await?;
        list.push((c, org, s, e));
    }
    Ok(Bench {
        sandbox,
        host,
        regulator,
        custodians,
        section: sid,
        params: (json_text, hash),
        bidders: list,
    })
}

pub fn seal_for(b: &Bench, i: usize, plain: &Path, out: &Path) -> anyhow::Result<String> {
    let (_, org, s, e) = &b.bidders[i];
    let (h, _) = client::seal_to_dir(
        SealRequest {
            params_json: &b.params.0,
            params_hash: &b.params.1,
            bidder: org,
            signing: s,
            encryption_public: e.public_key(),
            fields: [("price".to_string(), format!("{}.00", 1000 + i))].into(),
            documents: plain,
            supersedes: None,
            now_ms: 0,
        },
        out,
        &mut |_| {},
    )?;
    Ok(h)
}

impl Bench {
    /// The section's public state in the opening room (`published`,
    /// `decrypting`, `confirming`, `evaluating`, …).
    pub async fn phase(&self) -> anyhow::Result<String> {
        let v: Value = Client::new(&self.sandbox.base)
            .get(&format!("/api/sections/{}/opening", self.section))
            .await?;
        Ok(v["state"]["phase"].as_str().unwrap_or_default().to_string())
    }

    /// Waits until the opening reaches `phase`.
    pub async fn wait_phase(&self, phase: &str) -> anyhow::Result<()> {
        for _ in 0..1200 {
            if self.phase().await? == phase {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        anyhow::bail!("the opening never reached {phase}")
    }

    /// Runs the opening of the submitted bids as its parties would: the
    /// clock past the deadline, two custodians' keys released, the record
    /// closed by the host and countersigned by a supervisor, until the
    /// section is `evaluating`. Returns the supervisor's identity key.
    pub async fn open(
        &self,
        clock: &AcceleratedClock,
    ) -> anyhow::Result<ed25519_dalek::SigningKey> {
        let s = &self.section;
        let v: Value = Client::new(&self.sandbox.base)
            .get(&format!("/api/public/sections/{s}"))
            .await?;
        let deadline = Timestamp::parse_rfc3339(v["deadline"].as_str().unwrap_or_default())
            .ok_or_else(|| anyhow::anyhow!("no deadline"))?;
        clock.set(deadline.plus(chrono::Duration::milliseconds(1)), 1.0);
        self.wait_phase("decrypting").await?;
        for c in &self.custodians[..2] {
            c.client.release_key(s, &c.identity, &c.section_key).await?;
        }
        self.wait_phase("confirming").await?;
        self.host.close_opening(s).await?;
        let (_, name) = self
            .sandbox
            .user(Some(&self.regulator), Role::Supervisor, "bench-supervisor")
            .await?;
        let supervisor = self.sandbox.signin(&name).await?;
        let key = sign::generate();
        supervisor
            .register_ed25519("supervisor_identity", &key)
            .await?;
        supervisor.countersign(s, &key).await?;
        self.wait_phase("evaluating").await?;
        Ok(key)
    }
}
