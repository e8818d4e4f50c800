//! The evaluation half of `kaibiao demo`: an expert pool from three centres,
//! the verifiable draw (one expert skipped for a conflict, one declining and
//! replaced by a reserve), passes from the experts' home centres, reviews
//! and signed score sheets, the report signed by all (one dissent), the
//! publicity on an accelerated clock, and the award notices.

use std::collections::BTreeMap;
use std::path::Path;

use ed25519_dalek::SigningKey;
use serde_json::{json, Value};

use super::sandbox::Sandbox;
use crate::client::Client;
use crate::clock::{AcceleratedClock, Clock};
use crate::crypto::sign;
use crate::domain::decimal::Points;
use crate::domain::identity::{OrgKind, Role};
use crate::evaluation::pass::{self, Centre, PassBody};
use crate::service::evaluation::{
    sign_statement, ReportStatement, ScoreStatement, VoteStatement, REPORT_LABEL, SCORE_LABEL,
    VOTE_LABEL,
};

/// This centre and its two partner centres.
pub const HOST_CENTRE: &str = "SF-GGZY";
pub const PARTNERS: [(&str, &str); 2] = [
    ("LS-GGZY", "邻市公共资源交易中心"),
    ("YS-GGZY", "远市公共资源交易中心"),
];

/// The partner centres' keys, made before the platform starts; their public
/// files go into `trust_dir`.
pub fn partner_keys(trust_dir: &Path) -> anyhow::Result<BTreeMap<&'static str, SigningKey>> {
    std::fs::create_dir_all(trust_dir)?;
    let mut keys = BTreeMap::new();
    for (code, name) in PARTNERS {
        let k = sign::generate();
        let c = Centre::new(code, name, &k.verifying_key());
        std::fs::write(
            trust_dir.join(format!("{code}.json")),
            serde_json::to_vec_pretty(&c)?,
        )?;
        keys.insert(code, k);
    }
    Ok(keys)
}

pub struct Ctx<'a> {
    pub sandbox: &'a Sandbox,
    pub clock: &'a AcceleratedClock,
    pub speed: f64,
    pub sid: &'a str,
    pub host: &'a Client,
    /// (name, org id, client) of every bidder that bid.
    pub bidders: Vec<(&'a str, String, &'a Client)>,
    pub partner_keys: &'a BTreeMap<&'static str, SigningKey>,
}

async fn credit_code(s: &Sandbox, org: &str) -> anyhow::Result<String> {
    let org = org.to_string();
    s.services
        .db
        .run(move |c| {
            Ok(
                crate::db::identity::find_org(c, &crate::domain::ids::OrgId::from_db(org))?
                    .map(|o| o.credit_code)
                    .unwrap_or_default(),
            )
        })
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))
}

/// Call mails so far: (expert e-mail, answer token).
async fn calls(s: &Sandbox) -> anyhow::Result<Vec<(String, String)>> {
    let rows = s
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

async fn wait_calls(s: &Sandbox, n: usize) -> anyhow::Result<Vec<(String, String)>> {
    for _ in 0..400 {
        let c = calls(s).await?;
        if c.len() >= n {
            return Ok(c);
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    anyhow::bail!("expected {n} call mails")
}

fn expert_id(email: &str) -> String {
    email.split('@').next().unwrap_or_default().to_uppercase()
}

pub async fn run(
    x: &Ctx<'_>,
    n: &mut u32,
    step: fn(&mut u32, &str),
    check: fn(bool, &str) -> anyhow::Result<()>,
) -> anyhow::Result<Value> {
    let s = x.sandbox;
    let sid = x.sid;

    step(
        n,
        "the expert pool: 12 experts of 3 centres, imported as CSV by an administrator",
    );
    let (_, admin_name) = s.user(None, Role::Admin, "demo-admin").await?;
    let admin = s.signin(&admin_name).await?;
    let conflicted = credit_code(s, &x.bidders[0].1).await?;
    let employer = s.org(OrgKind::Agent, "示范市工程咨询有限公司").await?;
    let clean = credit_code(s, &employer).await?;
    let centres = [HOST_CENTRE, PARTNERS[0].0, PARTNERS[1].0];
    let mut csv = crate::service::evaluation::CSV_COLUMNS.join(",") + "\n";
    for i in 0..12 {
        let specialty = if i < 7 { "civil" } else { "water" };
        let employer = if i == 3 { &conflicted } else { &clean };
        csv.push_str(&format!(
            "E{i:02},{},专家{i:02},e{i:02}@experts.example.cn,{specialty},{employer},,,yes\n",
            centres[i % 3]
        ));
    }
    let imported: Value = admin.put_csv("/api/experts.csv", csv).await?;
    check(
        imported["imported"] == 12,
        "12 experts imported; E03 works for a bidder",
    )?;

    step(n, "the host draws 7 experts (4 civil, 3 water) and a reserve of each; the seed is committed first");
    let drawn: Value = x
        .host
        .post(
            &format!("/api/sections/{sid}/evaluation/draw"),
            &json!({"requirements": [{"specialty": "civil", "count": 4, "reserves": 1},
                                     {"specialty": "water", "count": 3, "reserves": 1}],
                    "centres": centres}),
        )
        .await?;
    println!(
        "     seed commitment {}…, pool snapshot {}…",
        &drawn["seed_commitment"].as_str().unwrap_or_default()[..16],
        &drawn["snapshot_hash"].as_str().unwrap_or_default()[..16]
    );
    check(
        drawn["committee_size"] == 7 && drawn["skipped_for_conflict"] == 1,
        "a committee of 7; the expert employed by a bidder was skipped (回避)",
    )?;
    let called = wait_calls(s, 7).await?;
    check(
        called.iter().all(|(m, _)| !m.starts_with("e03@")),
        "7 drawn experts e-mailed; the committee stays confidential",
    )?;

    step(
        n,
        "one expert declines; the next reserve of the specialty is called; the others confirm",
    );
    let anon = Client::new(&s.base);
    let (decliner, token) = called[0].clone();
    let r: Value = anon
        .post(
            "/api/evaluation/answer",
            &json!({"token": token, "accept": false, "reason": "出差"}),
        )
        .await?;
    check(
        r["reserve_called"] == true,
        &format!("{} declined; a reserve was called", expert_id(&decliner)),
    )?;
    let called = wait_calls(s, 8).await?;
    let mut members = Vec::new();
    for (email, token) in &called {
        if *email == decliner {
            continue;
        }
        let _: Value = anon
            .post(
                "/api/evaluation/answer",
                &json!({"token": token, "accept": true}),
            )
            .await?;
        members.push(expert_id(email));
    }
    check(members.len() == 7, "7 experts confirmed")?;

    step(n, "each expert signs in at the home centre and gets a pass; the room admits trusted centres only");
    let now = x.clock.now().millis();
    let mut keys = BTreeMap::new();
    for m in &members {
        let i: usize = m[1..].parse().unwrap_or_default();
        let centre = centres[i % 3];
        let centre_key = match centre {
            HOST_CENTRE => s.services.platform_key.as_ref().clone(),
            other => x.partner_keys[other].clone(),
        };
        let ek = sign::generate();
        let p = pass::issue(
            &centre_key,
            PassBody {
                format: pass::PASS_FORMAT.into(),
                centre: centre.into(),
                expert_id: m.clone(),
                expert_key: hex::encode(ek.verifying_key().as_bytes()),
                section_id: sid.into(),
                issued_at_ms: now,
                expires_at_ms: now + 8 * 3_600_000,
            },
        );
        let _: Value = anon
            .post(&format!("/api/sections/{sid}/evaluation/admit"), &p)
            .await?;
        keys.insert(m.clone(), ek);
    }
    let stranger = sign::generate();
    let forged = pass::issue(
        &stranger,
        PassBody {
            format: pass::PASS_FORMAT.into(),
            centre: "XX-GGZY".into(),
            expert_id: members[0].clone(),
            expert_key: hex::encode(stranger.verifying_key().as_bytes()),
            section_id: sid.into(),
            issued_at_ms: now,
            expires_at_ms: now + 3_600_000,
        },
    );
    let refused = anon
        .post::<Value>(&format!("/api/sections/{sid}/evaluation/admit"), &forged)
        .await;
    check(
        refused.is_err(),
        "7 passes from 3 centres admitted; a pass from an untrusted centre refused",
    )?;

    step(
        n,
        "qualification review (资格审查): every expert reviews every bid, signed",
    );
    let record: Value = anon
        .get(&format!("/api/public/sections/{sid}/opening-record"))
        .await?;
    let bids: Vec<(String, String)> = record["record"]["bids"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|b| b["status"] == "decrypted")
        .map(|b| {
            (
                b["envelope_hash"].as_str().unwrap_or_default().to_string(),
                b["bidder"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    for (m, k) in &keys {
        for (b, _) in &bids {
            let st = VoteStatement {
                section_id: sid.into(),
                expert_id: m.clone(),
                bid: b.clone(),
                pass: true,
                reason: None,
            };
            let _: Value = anon
                .post(
                    &format!("/api/sections/{sid}/evaluation/votes"),
                    &json!({"statement": st, "signature": sign_statement(k, VOTE_LABEL, &st)}),
                )
                .await?;
        }
    }
    check(
        true,
        &format!(
            "{} reviews; every bid qualified by majority",
            keys.len() * bids.len()
        ),
    )?;

    step(n, "scoring: each expert signs a sheet per bid (technical, commercial); the price score is computed");
    for (e, (m, k)) in keys.iter().enumerate() {
        for (j, (b, _)) in bids.iter().enumerate() {
            let tech = 30 + ((j * 4 + e) % 12) as i64;
            let biz = 10 + ((j + e) % 5) as i64;
            let sheet: Vec<Value> = [("tech", tech), ("biz", biz)]
                .iter()
                .map(|(item, p)| {
                    let st = ScoreStatement {
                        section_id: sid.into(),
                        expert_id: m.clone(),
                        bid: b.clone(),
                        item: item.to_string(),
                        points: Points::from_hundredths(p * 100),
                    };
                    json!({"statement": st, "signature": sign_statement(k, SCORE_LABEL, &st)})
                })
                .collect();
            let _: Value = anon
                .post(
                    &format!("/api/sections/{sid}/evaluation/scores"),
                    &json!({"scores": sheet}),
                )
                .await?;
        }
    }
    let done: Value = x
        .host
        .post(
            &format!("/api/sections/{sid}/evaluation/finish"),
            &json!({}),
        )
        .await?;
    let hash = done["report_hash"].as_str().unwrap_or_default().to_string();
    check(
        !hash.is_empty(),
        &format!(
            "the result computed; report {}…",
            &hash[..16.min(hash.len())]
        ),
    )?;

    step(
        n,
        "every expert signs the report's hash; one records a dissent",
    );
    for (e, (m, k)) in keys.iter().enumerate() {
        let st = ReportStatement {
            section_id: sid.into(),
            expert_id: m.clone(),
            report_hash: hash.clone(),
            agree: e != 0,
            dissent: (e == 0)
                .then(|| "商务评分标准宜更细化 / the commercial criteria should be finer".into()),
        };
        let _: Value = anon
            .post(
                &format!("/api/sections/{sid}/evaluation/report/signatures"),
                &json!({"statement": st, "signature": sign_statement(k, REPORT_LABEL, &st)}),
            )
            .await?;
    }
    let published: Value = x
        .host
        .post(
            &format!("/api/sections/{sid}/evaluation/publish"),
            &json!({}),
        )
        .await?;
    check(
        published["phase"] == "publicity",
        "the candidates are publicised (公示) for 3 days; the seed is revealed",
    )?;

    step(
        n,
        "the clock jumps to the end of publicity; the section is awarded and the notices go out",
    );
    let ends = crate::domain::time::Timestamp::from_millis(
        published["publicity_ends_at_ms"].as_i64().unwrap_or(0),
    );
    x.clock
        .set(ends.minus(chrono::Duration::seconds(2)), x.speed);
    let mut result = Value::Null;
    for _ in 0..400 {
        result = anon
            .get(&format!("/api/public/sections/{sid}/result"))
            .await?;
        if result["phase"] == "awarded" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    check(result["phase"] == "awarded", "awarded (中标)")?;
    println!("     rank  bidder          price (yuan)     price pts  panel   total");
    for r in result["ranking"].as_array().into_iter().flatten() {
        let name = x
            .bidders
            .iter()
            .find(|b| r["bidder"] == b.1.as_str())
            .map(|b| b.0)
            .unwrap_or("?");
        println!(
            "     {:>4}  {} {:>16} {:>10} {:>7} {:>7}",
            r["rank"],
            super::demo::pad(name, 14),
            r["price"].as_str().unwrap_or(""),
            r["price_score"].as_str().unwrap_or(""),
            r["panel_score"].as_str().unwrap_or(""),
            r["final_score"].as_str().unwrap_or("")
        );
    }
    let mails = s
        .services
        .db
        .run(|c| Ok(crate::db::outbox::all(c)?))
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let awards = mails.iter().filter(|m| m.kind == "award_notice").count();
    let results = mails.iter().filter(|m| m.kind == "result_notice").count();
    check(
        awards >= 1 && results >= 2,
        &format!("{awards} award notice(s) to the winner, {results} result notices to the others (file outbox)"),
    )?;
    Ok(result)
}
