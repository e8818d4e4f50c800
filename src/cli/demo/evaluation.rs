//! The evaluation half of `kaibiao demo`: an expert pool from three centres,
//! the verifiable draw (one expert skipped for a conflict, one declining and
//! replaced by a reserve), passes from the experts' home centres, reviews
//! and signed score sheets, the report signed by all (one dissent), the
//! publicity on an accelerated clock, and the award notices.

use std::collections::BTreeMap;
use std::path::Path;

use ed25519_dalek::SigningKey;
use serde_json::{json, Value};

use super::cast::Cast;
use super::Demo;
use crate::cli::sandbox::Sandbox;
use crate::client::Client;
use crate::clock::Clock;
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
        let c = Centre::signed(code, name, &k);
        std::fs::write(
            trust_dir.join(format!("{code}.json")),
            serde_json::to_vec_pretty(&c)?,
        )?;
        keys.insert(code, k);
    }
    Ok(keys)
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

fn expert_id(email: &str) -> String {
    email.split('@').next().unwrap_or_default().to_uppercase()
}

/// The evaluation of section `sid`; returns its published result.
pub async fn run(
    d: &mut Demo<'_>,
    cast: &Cast,
    sid: &str,
    partner_keys: &BTreeMap<&'static str, SigningKey>,
) -> anyhow::Result<Value> {
    let s = d.sandbox;
    let host = &cast.host.client;

    d.step("the expert pool: 12 experts of 3 centres, imported as CSV by an administrator");
    let (_, admin_name) = s.user(None, Role::Admin, "demo-admin").await?;
    let admin = s.signin(&admin_name).await?;
    let conflicted = credit_code(s, &cast.bidders[0].org_id).await?;
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
    d.check(
        imported["imported"] == 12,
        "12 experts imported; E03 works for a bidder",
    )?;

    d.step("the supervisor and both partner centres commit to a value for the draw's seed, each signed with its own key");
    let contributors: Vec<(String, &SigningKey)> = std::iter::once((
        crate::evaluation::seed::SUPERVISOR.to_string(),
        &cast.supervisor_key,
    ))
    .chain(PARTNERS.iter().map(|(code, _)| {
        (
            crate::evaluation::seed::centre_party(code),
            &partner_keys[code],
        )
    }))
    .collect();
    let anon = Client::new(&s.base);
    let mut committed = 0;
    for (party, key) in &contributors {
        let r: Value = anon.commit_to_draw(sid, party, key).await?;
        committed += usize::from(r["party"] == party.as_str() && r["repeat"] == false);
    }
    d.check(
        committed == 3,
        "3 commitments logged before the draw is asked for",
    )?;

    d.step("the host asks for 7 experts (4 civil, 3 water) and a reserve of each: the pool snapshot and the platform's seed are fixed");
    let requested: Value = host
        .post(
            &format!("/api/sections/{sid}/evaluation/draw"),
            &json!({"requirements": [{"specialty": "civil", "count": 4, "reserves": 1},
                                     {"specialty": "water", "count": 3, "reserves": 1}],
                    "centres": centres}),
        )
        .await?;
    println!(
        "     platform seed commitment {}…, pool snapshot {}…",
        &requested["seed_commitment"].as_str().unwrap_or_default()[..16],
        &requested["snapshot_hash"].as_str().unwrap_or_default()[..16]
    );
    d.check(
        requested["contributors"].as_array().map(Vec::len) == Some(3),
        "the supervisor and 2 partner centres contribute to the seed",
    )?;

    d.step("the contributors reveal their values; the last one draws the committee");
    let mut drawn = Value::Null;
    for (party, key) in &contributors {
        let r: Value = anon.reveal_to_draw(sid, party, key).await?;
        drawn = r["drawn"].clone();
    }
    d.check(
        drawn["committee_size"] == 7 && drawn["skipped_for_conflict"] == 1,
        "a committee of 7; the expert employed by a bidder was skipped (回避)",
    )?;
    let called = s.wait_expert_calls(7).await?;
    d.check(
        called.iter().all(|(m, _)| !m.starts_with("e03@")),
        "7 drawn experts e-mailed; the committee stays confidential",
    )?;

    d.step("one expert declines; the next reserve of the specialty is called; the others confirm");
    let (decliner, token) = called[0].clone();
    let r: Value = anon
        .post(
            "/api/evaluation/answer",
            &json!({"token": token, "accept": false, "reason": "出差"}),
        )
        .await?;
    d.check(
        r["reserve_called"] == true,
        &format!("{} declined; a reserve was called", expert_id(&decliner)),
    )?;
    let called = s.wait_expert_calls(8).await?;
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
    d.check(members.len() == 7, "7 experts confirmed")?;

    d.step("each expert signs in at the home centre and gets a pass; the room admits trusted centres only");
    let now = d.clock.now().millis();
    let mut keys = BTreeMap::new();
    for m in &members {
        let i: usize = m[1..].parse().unwrap_or_default();
        let centre = centres[i % 3];
        let centre_key = match centre {
            HOST_CENTRE => s.services.centre_key.as_ref().clone(),
            other => partner_keys[other].clone(),
        };
        let ek = sign::generate();
        let key = hex::encode(ek.verifying_key().as_bytes());
        let p = pass::issue(
            &centre_key,
            PassBody::new(centre, m, &key, sid, now, 8 * 60),
        );
        let _: Value = anon
            .post(&format!("/api/sections/{sid}/evaluation/admit"), &p)
            .await?;
        keys.insert(m.clone(), ek);
    }
    let stranger = sign::generate();
    let stranger_key = hex::encode(stranger.verifying_key().as_bytes());
    let forged = pass::issue(
        &stranger,
        PassBody::new("XX-GGZY", &members[0], &stranger_key, sid, now, 60),
    );
    let refused = anon
        .post::<Value>(&format!("/api/sections/{sid}/evaluation/admit"), &forged)
        .await;
    d.check(
        refused.is_err(),
        "7 passes from 3 centres admitted; a pass from an untrusted centre refused",
    )?;

    d.step("qualification review (资格审查): every expert reviews every bid, signed");
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
    d.check(
        true,
        &format!(
            "{} reviews; every bid qualified by majority",
            keys.len() * bids.len()
        ),
    )?;

    d.step("scoring: each expert signs a sheet per bid (technical, commercial); the price score is computed");
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
    let done: Value = host
        .post(
            &format!("/api/sections/{sid}/evaluation/finish"),
            &json!({}),
        )
        .await?;
    let hash = done["report_hash"].as_str().unwrap_or_default().to_string();
    d.check(
        !hash.is_empty(),
        &format!(
            "the result computed; report {}…",
            &hash[..16.min(hash.len())]
        ),
    )?;

    d.step("every expert signs the report's hash; one records a dissent");
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
    let published: Value = host
        .post(
            &format!("/api/sections/{sid}/evaluation/publish"),
            &json!({}),
        )
        .await?;
    d.check(
        published["phase"] == "publicity",
        "the candidates are publicised (公示) for 3 days; the seed is revealed",
    )?;

    d.step(
        "the clock jumps to the end of publicity; the section is awarded and the notices go out",
    );
    let ends = crate::domain::time::Timestamp::from_millis(
        published["publicity_ends_at_ms"].as_i64().unwrap_or(0),
    );
    d.clock
        .set(ends.minus(chrono::Duration::seconds(2)), d.speed);
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
    d.check(result["phase"] == "awarded", "awarded (中标)")?;
    println!("     rank  bidder          price (yuan)     price pts  panel   total");
    for r in result["ranking"].as_array().into_iter().flatten() {
        let name = cast.bidder_named(&r["bidder"]);
        println!(
            "     {:>4}  {} {:>16} {:>10} {:>7} {:>7}",
            r["rank"],
            super::pad(name, 14),
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
    d.check(
        awards >= 1 && results >= 2,
        &format!("{awards} award notice(s) to the winner, {results} result notices to the others (file outbox)"),
    )?;
    Ok(result)
}
