//! `kaibiao demo`: a complete section on a fresh temporary platform — a
//! real server, real HTTP, the bidders' and custodians' client code — on an
//! accelerated clock. Every step is checked; any failure exits non-zero.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use serde_json::{json, Value};

use super::sandbox::Sandbox;
use crate::client::opening::Watcher;
use crate::client::{self, Client, ClientError, SealRequest};
use crate::clock::{AcceleratedClock, Clock};
use crate::crypto::{sign, x25519};
use crate::domain::identity::{OrgKind, Role};
use crate::domain::time::Timestamp;

/// How long the demo waits for an event in the room.
const ROOM_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

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

struct Party {
    name: &'static str,
    user_id: String,
    org_id: String,
    client: Client,
}

fn step(n: &mut u32, what: &str) {
    *n += 1;
    println!("\n[{n:>2}] {what}");
}

fn check(ok: bool, what: &str) -> anyhow::Result<()> {
    anyhow::ensure!(ok, "check failed: {what}");
    println!("     ✓ {what}");
    Ok(())
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
    let mut n = 0;
    step(
        &mut n,
        "a fresh platform on a temporary directory, on an accelerated clock",
    );
    let clock = AcceleratedClock::starting_now(args.speed);
    let trust_dir = dir.join("trust");
    let partner_keys = super::demo_evaluation::partner_keys(&trust_dir)?;
    let sandbox = Sandbox::start(
        dir,
        args.database_url.clone(),
        Arc::new(clock.clone()),
        |c| {
            // Weeks pass in seconds here: keep the demo's sessions for the whole run.
            c.rules.session_ttl_hours = 720;
            c.evaluation.trust_dir = trust_dir;
            c.evaluation.centre_code = super::demo_evaluation::HOST_CENTRE.into();
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
    let r = scenario(args, dir, &sandbox, &clock, &partner_keys, &mut n).await;
    sandbox.stop().await;
    r
}

async fn scenario(
    args: &DemoArgs,
    dir: &Path,
    sandbox: &Sandbox,
    clock: &AcceleratedClock,
    partner_keys: &std::collections::BTreeMap<&'static str, ed25519_dalek::SigningKey>,
    n: &mut u32,
) -> anyhow::Result<()> {
    let (base, svc) = (sandbox.base.as_str(), &sandbox.services);
    step(
        n,
        "organisations and people (bootstrap, e-mail counted as verified)",
    );
    let centre = sandbox
        .org(OrgKind::TradingCentre, "示范市公共资源交易中心")
        .await?;
    let partner = sandbox
        .org(OrgKind::TradingCentre, "邻市公共资源交易中心")
        .await?;
    let tenderer_org = sandbox
        .org(OrgKind::Tenderer, "示范市水务集团有限公司")
        .await?;
    let regulator = sandbox
        .org(OrgKind::Regulator, "示范市住房和城乡建设局")
        .await?;
    let notary = sandbox.org(OrgKind::Notary, "示范市公证处").await?;
    let party = |org: String, role: Role, username: &'static str, name: &'static str| async move {
        let (user_id, username) = sandbox.user(Some(&org), role, username).await?;
        anyhow::Ok(Party {
            name,
            user_id,
            org_id: org,
            client: sandbox.signin(&username).await?,
        })
    };
    let host = party(centre.clone(), Role::Host, "demo-host", "主持人 host").await?;
    let supervisor = party(
        regulator.clone(),
        Role::Supervisor,
        "demo-supervisor",
        "监督人 supervisor",
    )
    .await?;
    let mut custodians = Vec::new();
    for (org, username) in [
        (&centre, "custodian-centre"),
        (&tenderer_org, "custodian-tenderer"),
        (&regulator, "custodian-regulator"),
        (&notary, "custodian-notary"),
        (&partner, "custodian-partner"),
    ] {
        custodians.push(party(org.clone(), Role::Custodian, username, username).await?);
    }
    let bidder_names = [
        "华东建设集团",
        "中原路桥股份",
        "南方水利工程",
        "北方城建集团",
        "西部市政公司",
    ];
    let mut bidders = Vec::new();
    let mut bidder_orgs = Vec::new();
    for (i, name) in bidder_names.iter().enumerate() {
        let org = sandbox
            .org(OrgKind::Bidder, &format!("{name}有限公司"))
            .await?;
        let usernames = ["bidder-a", "bidder-b", "bidder-c", "bidder-d", "bidder-e"];
        bidders.push(party(org.clone(), Role::Bidder, usernames[i], name).await?);
        bidder_orgs.push(org);
    }
    println!("     2 centres, a tenderer, a regulator, a notary; a host, a supervisor, 5 custodians, 5 bidders");

    step(n, "custodians make identity keys on their own devices and register them (proof of possession)");
    let mut identities = Vec::new();
    for c in &custodians {
        let k = sign::generate();
        c.client.register_ed25519("custodian_identity", &k).await?;
        identities.push(k);
    }
    check(
        identities.len() == 5,
        "5 custodian identity keys registered",
    )?;
    let supervisor_key = sign::generate();
    supervisor
        .client
        .register_ed25519("supervisor_identity", &supervisor_key)
        .await?;

    step(
        n,
        "the host drafts a construction section: deadline 25 days out, 3-of-5 custodians",
    );
    let project: Value = host
        .client
        .post(
            "/api/projects",
            &json!({
                "code": "SF-2026-WATER-01", "name": "示范市第二水厂扩建工程", "category": "construction",
                "must_tender_by_law": true, "tenderer_org_id": tenderer_org, "regulator_org_id": regulator,
                "description": "日供水 20 万吨的扩建工程 / expansion to 200,000 m³ a day",
            }),
        )
        .await?;
    let deadline = clock.now().plus(chrono::Duration::days(25));
    let section: Value = host
        .client
        .post(
            &format!("/api/projects/{}/sections", project["id"].as_str().unwrap_or_default()),
            &json!({
                "code": "SF-01-01", "name": "第一标段 土建及安装", "description": "土建、设备安装及调试",
                "deadline": deadline.rfc3339(), "window_minutes": 60, "decryption_mode": "custodians",
                "custodians": custodians.iter().map(|c| c.user_id.clone()).collect::<Vec<_>>(), "threshold": 3,
                "min_bidders": 3, "ceiling_price": "86000000.00",
                "evaluation": {
                    "method": "comprehensive",
                    "items": [
                        {"id": "price", "name": "投标报价 / Price", "kind": "price", "max_points": "40"},
                        {"id": "tech", "name": "技术方案 / Technical", "kind": "technical", "max_points": "45"},
                        {"id": "biz", "name": "商务 / Commercial", "kind": "business", "max_points": "15"}
                    ],
                    "price": {"benchmark": "trimmed_mean", "trim": 1, "k_coefficients": ["0.95", "0.97", "1"],
                              "deduct_above_per_pct": "1", "deduct_below_per_pct": "0.5"}
                }
            }),
        )
        .await?;
    let sid = section["id"].as_str().unwrap_or_default().to_string();

    step(
        n,
        "each custodian makes this section's X25519 key on its device and registers it, signed",
    );
    let mut section_keys = Vec::new();
    for (c, id) in custodians.iter().zip(&identities) {
        let k = x25519::SecretKey::generate();
        c.client
            .register_section_key(&sid, &c.user_id, id, &k)
            .await?;
        section_keys.push(k);
    }
    check(
        section_keys.len() == 5,
        "5 section keys registered before publication",
    )?;

    step(
        n,
        "the tender documents are uploaded, and the section is published",
    );
    sandbox
        .upload(
            &host.client,
            &sid,
            "招标文件.pdf",
            b"%PDF-1.7 demo tender documents",
        )
        .await?;
    let published: Value = host
        .client
        .post(&format!("/api/sections/{sid}/publish"), &json!({}))
        .await?;
    let (_, params_hash, params_json) = Client::new(base).params(&sid).await?;
    check(
        published["params_hash"] == params_hash.as_str(),
        "published parameters fetched and checked against their hash",
    )?;
    println!("     params_hash {params_hash}");

    step(
        n,
        "bidders make and register their keys, obtain the documents, seal and submit",
    );
    let mut keys = Vec::new();
    for b in &bidders {
        let s = sign::generate();
        let e = x25519::SecretKey::generate();
        b.client.register_ed25519("bidder_signing", &s).await?;
        b.client.register_x25519(&e).await?;
        let _: Value = b
            .client
            .post(&format!("/api/sections/{sid}/registration"), &json!({}))
            .await?;
        keys.push((s, e));
    }
    let prices = [
        "79800000.00",
        "81250000.00",
        "77600000.00",
        "80400000.00",
        "76000000.00",
    ];
    let mut bid_dirs = Vec::new();
    for i in 0..4 {
        let d = seal_bid(
            dir,
            &bidders[i],
            &keys[i],
            &params_json,
            &params_hash,
            prices[i],
            None,
            clock,
        )
        .await?;
        let r = bidders[i].client.submit(&d, &mut |_, _| {}).await?;
        r.verify(&svc.platform_public_hex(), &r.receipt.envelope_hash)
            .map_err(|e| anyhow::anyhow!("receipt: {e}"))?;
        println!(
            "     {} submitted {} — receipt verified (log entry {})",
            bidders[i].name,
            short(&r.receipt.envelope_hash),
            r.receipt.log.index
        );
        bid_dirs.push(d);
    }

    step(
        n,
        "one bidder supersedes its bid with a revision; another withdraws",
    );
    let revised = seal_bid(
        dir,
        &bidders[1],
        &keys[1],
        &params_json,
        &params_hash,
        "78900000.00",
        Some(&bid_dirs[1]),
        clock,
    )
    .await?;
    let r2 = bidders[1].client.submit(&revised, &mut |_, _| {}).await?;
    check(
        r2.receipt.revision == 2,
        &format!(
            "{} revision 2 accepted, superseding revision 1",
            bidders[1].name
        ),
    )?;
    let w = bidders[3]
        .client
        .withdraw(&bid_dirs[3], &keys[3].0, clock.now().millis())
        .await?;
    check(
        w.receipt.kind == "withdrawal",
        &format!(
            "{} withdrew with a signed statement and got a receipt",
            bidders[3].name
        ),
    )?;

    step(
        n,
        "before the deadline the host sees no bidder and no count",
    );
    let view: Value = host
        .client
        .get(&format!("/api/sections/{sid}/events"))
        .await?;
    let leaked = bidder_orgs
        .iter()
        .any(|o| view.to_string().contains(o.as_str()));
    check(!leaked, "no bidder named in the section's event record")?;

    step(
        n,
        "the opening room (不见面开标): bidders and the public watch over WebSocket; bidders sign in (签到)",
    );
    let mut public = Watcher::connect(base, &sid, None, 0).await?;
    let mut watchers = Vec::new();
    for b in &bidders[..3] {
        watchers.push(Watcher::connect(base, &sid, b.client.token(), 0).await?);
    }
    host.client.open_signin(&sid).await?;
    for b in &bidders[..3] {
        b.client.sign_in(&sid).await?;
    }
    let room: Value = host.client.opening(&sid).await?;
    check(
        !room.to_string().contains(bidder_orgs[0].as_str()),
        "3 bidders signed in; before the deadline not even the host learns who",
    )?;

    step(
        n,
        "the clock jumps to a minute before the deadline; the chronograph seals the section on time",
    );
    let late_dir = seal_bid(
        dir,
        &bidders[4],
        &keys[4],
        &params_json,
        &params_hash,
        prices[4],
        None,
        clock,
    )
    .await?;
    clock.set(deadline.minus(chrono::Duration::minutes(1)), args.speed);
    wait_until(clock, deadline.plus(chrono::Duration::seconds(1))).await;
    let manifest = wait_for_manifest(base, &sid).await?;
    let late = bidders[4].client.submit(&late_dir, &mut |_, _| {}).await;
    check(
        matches!(&late, Err(ClientError::Api { code, .. }) if code == "deadline_passed"),
        &format!(
            "{}'s attempt after the deadline was refused (and recorded)",
            bidders[4].name
        ),
    )?;

    step(
        n,
        "the manifest: the accepted envelope hashes and their Merkle root, in the log",
    );
    let listed: Vec<String> = manifest["manifest"]["bids"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|b| b["envelope_hash"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    for b in manifest["manifest"]["bids"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let who = bidders
            .iter()
            .find(|p| b["bidder"] == p.org_id.as_str())
            .map(|p| p.name)
            .unwrap_or("?");
        println!(
            "     {} revision {} envelope {}",
            pad(who, 14),
            b["revision"],
            short(b["envelope_hash"].as_str().unwrap_or(""))
        );
    }
    check(
        listed.len() == 3,
        "3 bids accepted (one superseded, one withdrawn, one late)",
    )?;
    println!(
        "     root {}",
        manifest["manifest"]["root"].as_str().unwrap_or("")
    );
    for h in &listed {
        let p: Value = Client::new(base)
            .get(&format!(
                "/api/public/sections/{sid}/manifest/proof?envelope_hash={h}"
            ))
            .await?;
        let proof: Vec<crate::crypto::merkle::Hash> = p["proof"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x.as_str().and_then(crate::crypto::hex_array))
            .collect();
        crate::crypto::merkle::verify_inclusion(
            p["index"].as_u64().unwrap_or(0),
            p["size"].as_u64().unwrap_or(0),
            &crate::crypto::merkle::leaf_hash(&hex::decode(h)?),
            &proof,
            &hex::decode(manifest["manifest"]["root"].as_str().unwrap_or(""))?,
        )
        .map_err(|e| anyhow::anyhow!("inclusion proof for {h}: {e}"))?;
    }
    check(
        true,
        "every accepted bidder's inclusion proof verifies against the root",
    )?;

    step(
        n,
        "decryption: 3 of the 5 custodians release their keys; every bid opens",
    );
    let started = public
        .until(ROOM_WAIT, |f| f["kind"] == "opening.started")
        .await?;
    println!(
        "     the decryption window runs until {}",
        Timestamp::from_millis(started["data"]["window_ends_at_ms"].as_i64().unwrap_or(0))
            .shanghai_rfc3339()
    );
    for i in [0, 2, 4] {
        let v = custodians[i]
            .client
            .release_key(&sid, &identities[i], &section_keys[i])
            .await?;
        println!(
            "     {} released its key ({} of {})",
            custodians[i].name, v["released"], v["threshold"]
        );
    }
    public
        .until(ROOM_WAIT, |f| f["kind"] == "opening.announced")
        .await?;
    for w in &mut watchers {
        w.until(ROOM_WAIT, |f| f["kind"] == "opening.announced")
            .await?;
    }
    check(
        true,
        "the announcement reached the public and every bidder's socket",
    )?;

    step(n, "唱标: every result at once — the opening record");
    let record = host.client.opening_record(&sid).await?;
    let rbids = record["record"]["bids"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    println!(
        "     {:<14} {:>16} {:>10}  status",
        "bidder", "price (yuan)", "days"
    );
    for b in &rbids {
        let name = bidders
            .iter()
            .find(|p| b["bidder"] == p.org_id.as_str())
            .map(|p| p.name)
            .unwrap_or("?");
        println!(
            "     {} {:>16} {:>10}  {}",
            pad(name, 14),
            b["summary"]["price"].as_str().unwrap_or("—"),
            b["summary"]["duration_days"].as_str().unwrap_or("—"),
            b["status"].as_str().unwrap_or("")
        );
    }
    let sealed = [
        (&bidders[0], prices[0]),
        (&bidders[1], "78900000.00"),
        (&bidders[2], prices[2]),
    ];
    check(
        rbids.len() == 3
            && sealed.iter().all(|(p, price)| {
                rbids.iter().any(|b| {
                    b["bidder"] == p.org_id.as_str()
                        && b["status"] == "decrypted"
                        && b["summary"]["price"] == *price
                })
            }),
        "3 bids decrypted; each announced price is the one its bidder sealed",
    )?;

    step(
        n,
        "confirmations: bidders sign the record's hash; one objects first and the host answers on the record",
    );
    let own = [&bid_dirs[0], &revised, &bid_dirs[2]];
    for i in [0, 2] {
        let mine = client::opening::own_summary(own[i], &keys[i].1)?;
        bidders[i]
            .client
            .confirm(&sid, &bidders[i].org_id, &keys[i].0, Some(&mine))
            .await?;
        println!(
            "     {} checked its own line and confirmed",
            bidders[i].name
        );
    }
    let objection = bidders[1]
        .client
        .object(
            &sid,
            "请核实我方工期是否按投标文件宣读 / please confirm our duration was read as sealed",
        )
        .await?;
    host.client
        .answer(
            &sid,
            objection["id"].as_str().unwrap_or_default(),
            "经核对，工期按投标文件宣读为 540 日历天 / checked: 540 days, as sealed",
        )
        .await?;
    let mine = client::opening::own_summary(own[1], &keys[1].1)?;
    bidders[1]
        .client
        .confirm(&sid, &bidders[1].org_id, &keys[1].0, Some(&mine))
        .await?;
    check(
        true,
        &format!(
            "{} objected, the host answered, and it confirmed",
            bidders[1].name
        ),
    )?;

    step(
        n,
        "the host closes the record; the platform signs it and the supervisor countersigns",
    );
    host.client.close_opening(&sid).await?;
    supervisor.client.countersign(&sid, &supervisor_key).await?;
    public
        .until(ROOM_WAIT, |f| f["kind"] == "opening.countersigned")
        .await?;
    let signed = host.client.opening_record(&sid).await?;
    check(
        signed["countersignature"].is_string(),
        &format!(
            "the opening record is closed and countersigned: {base}/api/public/sections/{sid}/opening-record.html"
        ),
    )?;

    let result = super::demo_evaluation::run(
        &super::demo_evaluation::Ctx {
            sandbox,
            clock,
            speed: args.speed,
            sid: &sid,
            host: &host.client,
            bidders: bidders
                .iter()
                .map(|b| (b.name, b.org_id.clone(), &b.client))
                .collect(),
            partner_keys,
        },
        n,
        step,
        check,
    )
    .await?;

    step(n, "the transcript is exported and verified offline");
    let transcript: Value = Client::new(base)
        .get(&format!("/api/public/sections/{sid}/transcript"))
        .await?;
    let path = args
        .transcript
        .clone()
        .unwrap_or_else(|| dir.join("transcript.json"));
    std::fs::write(&path, serde_json::to_vec_pretty(&transcript)?)?;
    let summary = super::verify::verify_file(&path)?;
    let o = summary
        .opening
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("the transcript has no opening"))?;
    check(
        summary.accepted == 3 && summary.late_attempts == 1,
        &format!("kaibiao verify accepts {}", path.display()),
    )?;
    check(
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
    check(
        e.committee == 7
            && e.skipped_for_conflict == 1
            && e.dissents == 1
            && e.awarded.as_deref() == result["ranking"][0]["bidder"].as_str(),
        "…recomputing the draw from the revealed seed and the pool snapshot, every score and the ranking, checking every pass and signature",
    )?;
    Ok(())
}

/// `s` padded to `width` terminal columns (a CJK character takes two).
pub(super) fn pad(s: &str, width: usize) -> String {
    let cols: usize = s.chars().map(|c| if c.is_ascii() { 1 } else { 2 }).sum();
    format!("{s}{}", " ".repeat(width.saturating_sub(cols)))
}

fn short(h: &str) -> String {
    h.chars().take(16).collect::<String>() + "…"
}

#[allow(clippy::too_many_arguments)]
async fn seal_bid(
    dir: &Path,
    who: &Party,
    keys: &(ed25519_dalek::SigningKey, x25519::SecretKey),
    params_json: &str,
    params_hash: &str,
    price: &str,
    supersedes: Option<&Path>,
    clock: &dyn Clock,
) -> anyhow::Result<PathBuf> {
    let tag = hex::encode(crate::crypto::random_bytes::<4>());
    let docs = dir.join(format!("{}-{tag}.docs", who.user_id));
    let body = format!(
        "{} 技术标与商务标 / technical and commercial offer\n",
        who.name
    )
    .repeat(20_000);
    std::fs::write(&docs, body)?;
    let out = dir.join(format!("{}-{tag}.bid", who.user_id));
    let fields = [
        ("price".to_string(), price.to_string()),
        ("duration_days".to_string(), "540".to_string()),
        ("quality".to_string(), "合格 / pass".to_string()),
    ]
    .into();
    client::seal_to_dir(
        SealRequest {
            params_json,
            params_hash,
            bidder: &who.org_id,
            signing: &keys.0,
            encryption_public: keys.1.public_key(),
            fields,
            documents: &docs,
            supersedes,
            now_ms: clock.now().millis(),
        },
        &out,
        &mut |_| {},
    )?;
    Ok(out)
}

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

async fn wait_for_manifest(base: &str, sid: &str) -> anyhow::Result<Value> {
    let c = Client::new(base);
    for _ in 0..400 {
        match c
            .get::<Value>(&format!("/api/public/sections/{sid}/manifest"))
            .await
        {
            Ok(v) => return Ok(v),
            Err(e) if e.code() == Some("not_found") => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await
            }
            Err(e) => return Err(e.into()),
        }
    }
    anyhow::bail!("the section was not sealed in time")
}
