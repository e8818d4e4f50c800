//! Remote expert evaluation over real HTTP: the pool, the draw right after the
//! opening, experts declining (a reserve is called), passes from trusted
//! centres, qualification by majority, signed scores, and the result — with
//! the bad inputs at every step.

use std::collections::BTreeMap;

use ed25519_dalek::SigningKey;
use kaibiao::crypto::sign;
use kaibiao::evaluation::pass::{self, Centre, Pass, PassBody};
use kaibiao::evaluation::scoring;
use kaibiao::service::evaluation::{
    sign_statement, ReportStatement, ScoreStatement, VoteStatement, REPORT_LABEL, SCORE_LABEL,
    VOTE_LABEL,
};
use serde_json::{json, Value};

use crate::helpers::{credit_code, decode_mail, TestStore};
use crate::opening::{events_until, fixture, Fx};
use crate::smtp::SmtpServer;

const CENTRES: [&str; 3] = ["GZ-GGZY", "SZ-GGZY", "ZH-GGZY"];

struct Panel {
    fx: Fx,
    centre_keys: BTreeMap<&'static str, SigningKey>,
    _trust: tempfile::TempDir,
}

async fn org_code(fx: &Fx, org: &str) -> String {
    let db = fx.app.db.clone();
    let org = org.to_string();
    tokio::task::spawn_blocking(move || {
        let mut c = db.get_blocking().unwrap();
        kaibiao::db::identity::find_org(&mut c, &kaibiao::domain::ids::OrgId::from_db(org))
            .unwrap()
            .unwrap()
            .credit_code
    })
    .await
    .unwrap()
}

/// A section whose opening closed (three bids announced, countersigned), on a
/// platform trusting three partner centres.
async fn evaluating(store: TestStore) -> Panel {
    evaluating_with(store, |_| {}).await
}

async fn evaluating_with(
    store: TestStore,
    tweak: impl FnOnce(&mut kaibiao::config::Config) + 'static,
) -> Panel {
    let trust = tempfile::tempdir().unwrap();
    let mut centre_keys = BTreeMap::new();
    for code in CENTRES {
        let k = sign::generate();
        let c = Centre::new(code, &format!("{code} 交易中心"), &k.verifying_key());
        std::fs::write(
            trust.path().join(format!("{code}.json")),
            serde_json::to_string(&c).unwrap(),
        )
        .unwrap();
        centre_keys.insert(code, k);
    }
    let dir = trust.path().to_path_buf();
    let fx = fixture(
        store,
        "custodians",
        2,
        &[Some("1000000.00"), Some("980000.00"), Some("1050000.00")],
        move |c| {
            c.evaluation.trust_dir = dir;
            tweak(c);
        },
    )
    .await;
    fx.pass_deadline().await;
    fx.wait_phase("decrypting").await;
    for i in 0..3 {
        fx.release(i).await.unwrap();
    }
    fx.wait_phase("confirming").await;
    fx.host().close_opening(&fx.section).await.unwrap();
    fx.client(&fx.w.supervisor)
        .countersign(&fx.section, &fx.supervisor_key)
        .await
        .unwrap();
    fx.wait_phase("evaluating").await;
    Panel {
        fx,
        centre_keys,
        _trust: trust,
    }
}

/// Nine clean civil engineers over three centres, and three in conflict.
async fn pool_csv(p: &Panel) -> String {
    let fx = &p.fx;
    let bidder0 = org_code(fx, &fx.org(0)).await;
    let tenderer = org_code(fx, &fx.w.tenderer_org).await;
    let mut csv = String::from(
        "id,centre,name,email,specialties,employer,related_orgs,related_people,available\n",
    );
    for i in 0..9 {
        csv.push_str(&format!(
            "X{i},{},专家{i},x{i}@experts.example.cn,civil;cost,{},,,yes\n",
            CENTRES[i % 3],
            credit_code(900 + i as u32)
        ));
    }
    csv.push_str(&format!(
        "C-BIDDER,GZ-GGZY,冲突甲,cb@experts.example.cn,civil,{bidder0},,,yes\n"
    ));
    csv.push_str(&format!(
        "C-TENDERER,SZ-GGZY,冲突乙,ct@experts.example.cn,civil,{tenderer},,,yes\n"
    ));
    csv.push_str(&format!(
        "C-PERSON,ZH-GGZY,冲突丙,cp@experts.example.cn,civil,{},,{},yes\n",
        credit_code(999),
        fx.w.bidders[1].email
    ));
    csv.push_str(&format!(
        "AWAY,ZH-GGZY,不可用,away@experts.example.cn,civil,{},,,no\n",
        credit_code(998)
    ));
    csv
}

fn draw_body(count: u32, reserves: u32) -> Value {
    json!({"requirements": [{"specialty": "civil", "count": count, "reserves": reserves}],
           "centres": CENTRES})
}

fn token_in(mail: &str) -> String {
    let i = mail.find("kbx_").expect("a token in the mail");
    mail[i..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect()
}

/// (expert id, e-mail) of every call mail, once `n` have been delivered.
async fn calls_n(fx: &Fx, n: usize) -> Vec<(String, String)> {
    calls_in(fx, n, &|| fx.app.mails()).await
}

/// The call mails once `n` have arrived, from any mailbox.
async fn calls_in(fx: &Fx, n: usize, mails: &dyn Fn() -> Vec<String>) -> Vec<(String, String)> {
    fx.app
        .eventually(&format!("{n} call mails"), || {
            let ok = calls(mails()).len() >= n;
            async move { ok }
        })
        .await;
    let v = calls(mails());
    assert_eq!(v.len(), n, "{v:?}");
    v
}

/// (expert id, e-mail) of every call mail among `mails`.
fn calls(mails: Vec<String>) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = mails
        .into_iter()
        .filter(|m| m.contains("@experts.example.cn") && m.contains("kbx_"))
        .map(|m| {
            let to = m
                .lines()
                .find_map(|l| l.strip_prefix("To: "))
                .unwrap()
                .trim()
                .to_string();
            let id = to.split('@').next().unwrap().to_uppercase();
            (id, m)
        })
        .collect();
    v.sort();
    v
}

fn issue(
    key: &SigningKey,
    centre: &str,
    expert: &str,
    ek: &SigningKey,
    section: &str,
    now: i64,
) -> Pass {
    pass::issue(
        key,
        PassBody {
            format: pass::PASS_FORMAT.into(),
            centre: centre.into(),
            expert_id: expert.into(),
            expert_key: hex::encode(ek.verifying_key().as_bytes()),
            section_id: section.into(),
            issued_at_ms: now,
            expires_at_ms: now + 3_600_000,
        },
    )
}

fn centre_of(id: &str) -> &'static str {
    let n: usize = id[1..].parse().unwrap();
    CENTRES[n % 3]
}

#[actix_web::test]
async fn a_committee_is_drawn_seated_and_scores_the_bids() {
    let p = evaluating(TestStore::new()).await;
    let fx = &p.fx;
    let app = &fx.app;
    let s = fx.section.clone();
    let admin = fx.w.admin.token.as_str();
    let host = fx.w.host.token.as_str();

    // The pool: a broken file changes nothing and says what is wrong.
    let bad = "id,centre,name,email,specialties,employer,related_orgs,related_people,available\n\
               X1,gz,n,not-mail,,123,,,maybe\n";
    let e = app
        .raw(
            "PUT",
            "/api/experts.csv",
            Some(admin),
            "text/csv",
            bad.into(),
        )
        .await
        .expect_error(422, "validation_failed");
    let fields: Vec<&str> = e["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    for f in [
        "row 2.centre",
        "row 2.email",
        "row 2.specialties",
        "row 2.employer",
        "row 2.available",
    ] {
        assert!(fields.contains(&f), "{fields:?}");
    }
    app.raw(
        "PUT",
        "/api/experts.csv",
        Some(host),
        "text/csv",
        bad.into(),
    )
    .await
    .expect_error(403, "forbidden");
    let csv = pool_csv(&p).await;
    app.raw(
        "PUT",
        "/api/experts.csv",
        Some(admin),
        "text/csv",
        csv.clone().into(),
    )
    .await
    .expect(200);
    // Export → import is a fixed point; people appear only as digests.
    let exported = app.get("/api/experts.csv", Some(admin)).await;
    assert_eq!(exported.status, 200);
    let text = exported.text();
    assert!(
        !text.contains(&fx.w.bidders[1].email),
        "a person's identifier leaked"
    );
    assert!(text.contains("sha256:"));
    app.raw(
        "PUT",
        "/api/experts.csv",
        Some(admin),
        "text/csv",
        text.clone().into(),
    )
    .await
    .expect(200);
    assert_eq!(app.get("/api/experts.csv", Some(admin)).await.text(), text);

    // The draw: bad requests are refused and change nothing.
    let draw = format!("/api/sections/{s}/evaluation/draw");
    let e = app
        .post(&draw, Some(host), draw_body(4, 1))
        .await
        .expect_error(422, "validation_failed");
    assert!(e.to_string().contains("at least 5"), "{e}");
    let e = app
        .post(&draw, Some(host), draw_body(6, 1))
        .await
        .expect_error(422, "validation_failed");
    assert!(e.to_string().contains("odd number"), "{e}");
    let mut unknown = draw_body(5, 2);
    unknown["centres"] = json!(["GZ-GGZY", "XX-NOWHERE"]);
    let e = app
        .post(&draw, Some(host), unknown)
        .await
        .expect_error(422, "validation_failed");
    assert!(e.to_string().contains("XX-NOWHERE"), "{e}");
    let e = app
        .post(&draw, Some(host), draw_body(9, 3))
        .await
        .expect_error(422, "validation_failed");
    assert!(
        e.to_string()
            .contains("\\\"civil\\\" needs 9 members and 3 reserves"),
        "{e}"
    );
    app.post(&draw, Some(&fx.w.bidders[0].token), draw_body(5, 2))
        .await
        .expect_error(403, "forbidden");
    app.post(&draw, Some(&fx.w.host_b.token), draw_body(5, 2))
        .await
        .expect_error(403, "forbidden");
    app.post(&draw, Some(host), json!({"requirements": "five"}))
        .await
        .expect_error(422, "validation_failed");
    app.raw(
        "POST",
        &draw,
        Some(host),
        "application/json",
        b"{\"requirements\": [".to_vec(),
    )
    .await
    .expect_error(400, "malformed_json");
    assert!(calls(app.mails()).is_empty());

    let drawn = app
        .post(&draw, Some(host), draw_body(5, 2))
        .await
        .expect(200);
    assert_eq!(drawn["committee_size"], 5);
    assert_eq!(drawn["seats"]["civil"]["called"], 5);
    assert_eq!(drawn["seats"]["civil"]["standby"], 2);
    assert_eq!(drawn["seed_commitment"].as_str().unwrap().len(), 64);
    app.post(&draw, Some(host), draw_body(5, 2))
        .await
        .expect_error(409, "invalid_transition");
    // Nobody learns who was drawn from the host's view.
    let status = app
        .get(&format!("/api/sections/{s}/evaluation"), Some(host))
        .await
        .expect(200);
    for i in 0..9 {
        assert!(!status.to_string().contains(&format!("x{i}@")), "{status}");
    }

    // Five call mails; nobody in conflict or unavailable among them.
    let mut called = calls_n(fx, 5).await;
    assert!(
        called.iter().all(|(id, _)| id.starts_with('X')),
        "{called:?}"
    );

    // One declines: a reserve is called; the used link is dead.
    let (decliner, mail) = called[0].clone();
    let answer = |token: &str, accept: bool| {
        app.post(
            "/api/evaluation/answer",
            None,
            json!({"token": token, "accept": accept}),
        )
    };
    let r = answer(&token_in(&mail), false).await.expect(200);
    assert_eq!(r["reserve_called"], true);
    answer(&token_in(&mail), true)
        .await
        .expect_error(422, "token_invalid");
    answer("kbx_forged", true)
        .await
        .expect_error(422, "token_invalid");
    called = calls_n(fx, 6).await;
    for (id, mail) in &called {
        if *id != decliner {
            answer(&token_in(mail), true).await.expect(200);
        }
    }
    let members: Vec<String> = called
        .iter()
        .map(|(id, _)| id.clone())
        .filter(|id| *id != decliner)
        .collect();
    let status = app
        .get(&format!("/api/sections/{s}/evaluation"), Some(host))
        .await
        .expect(200);
    assert_eq!(status["seats_missing"], 0);
    assert_eq!(status["phase"], "seating");

    // Passes: every kind of bad pass is refused.
    let now = app.now().millis();
    let admit = format!("/api/sections/{s}/evaluation/admit");
    let first = &members[0];
    let ek = sign::generate();
    let stranger = sign::generate();
    let untrusted = issue(&stranger, "XX-NOWHERE", first, &ek, &s, now);
    let e = app
        .post(&admit, None, json!(untrusted))
        .await
        .expect_error(422, "pass_rejected");
    assert!(
        e["message"].as_str().unwrap().contains("does not trust"),
        "{e}"
    );
    let forged = issue(&stranger, centre_of(first), first, &ek, &s, now);
    app.post(&admit, None, json!(forged))
        .await
        .expect_error(422, "pass_rejected");
    let k = &p.centre_keys[centre_of(first)];
    let expired = issue(k, centre_of(first), first, &ek, &s, now - 3_600_000);
    let e = app
        .post(&admit, None, json!(expired))
        .await
        .expect_error(422, "pass_rejected");
    assert!(e["message"].as_str().unwrap().contains("expired"), "{e}");
    let other = issue(k, centre_of(first), first, &ek, "sec_other", now);
    let e = app
        .post(&admit, None, json!(other))
        .await
        .expect_error(422, "pass_rejected");
    assert!(
        e["message"].as_str().unwrap().contains("another section"),
        "{e}"
    );
    let declined = issue(
        &p.centre_keys[centre_of(&decliner)],
        centre_of(&decliner),
        &decliner,
        &ek,
        &s,
        now,
    );
    app.post(&admit, None, json!(declined))
        .await
        .expect_error(422, "pass_rejected");
    // A trusted centre vouching for another centre's expert.
    let wrong_home = CENTRES.iter().find(|c| **c != centre_of(first)).unwrap();
    let e = app
        .post(
            &admit,
            None,
            json!(issue(
                &p.centre_keys[wrong_home],
                wrong_home,
                first,
                &ek,
                &s,
                now
            )),
        )
        .await
        .expect_error(422, "pass_rejected");
    assert!(
        e["message"].as_str().unwrap().contains("home centre"),
        "{e}"
    );

    let mut keys = BTreeMap::new();
    for m in &members {
        let ek = sign::generate();
        let c = centre_of(m);
        app.post(
            &admit,
            None,
            json!(issue(&p.centre_keys[c], c, m, &ek, &s, now)),
        )
        .await
        .expect(200);
        keys.insert(m.clone(), ek);
    }
    let status = app
        .get(&format!("/api/sections/{s}/evaluation"), Some(host))
        .await
        .expect(200);
    assert_eq!(status["phase"], "reviewing");

    // Qualification: bid 2 fails with three of five.
    let record = app
        .get(&format!("/api/public/sections/{s}/opening-record"), None)
        .await
        .expect(200);
    let bids: Vec<String> = record["record"]["bids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["envelope_hash"].as_str().unwrap().to_string())
        .collect();
    let price_of = |i: usize| {
        record["record"]["bids"][i]["summary"]["price"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let rejected = (0..3).find(|&i| price_of(i) == "1050000.00").unwrap();
    let votes = format!("/api/sections/{s}/evaluation/votes");
    let vote = |m: &str, bid: &str, pass: bool| {
        let st = VoteStatement {
            section_id: s.clone(),
            expert_id: m.into(),
            bid: bid.into(),
            pass,
            reason: (!pass).then(|| "项目经理资格不符合招标文件要求".to_string()),
        };
        let sig = sign_statement(&keys[m], VOTE_LABEL, &st);
        json!({"statement": st, "signature": sig})
    };
    // A signature by another key, a fail without a reason, a bidder's vote.
    let mut bad = vote(&members[0], &bids[0], true);
    bad["signature"] = json!(sign_statement(&stranger, VOTE_LABEL, &bad["statement"]));
    app.post(&votes, None, bad)
        .await
        .expect_error(422, "proof_invalid");
    let mut silent = vote(&members[0], &bids[0], false);
    silent["statement"]["reason"] = Value::Null;
    let st: VoteStatement = serde_json::from_value(silent["statement"].clone()).unwrap();
    silent["signature"] = json!(sign_statement(&keys[&members[0]], VOTE_LABEL, &st));
    app.post(&votes, None, silent)
        .await
        .expect_error(422, "validation_failed");
    let bidder_vote = {
        let st = VoteStatement {
            section_id: s.clone(),
            expert_id: fx.org(0),
            bid: bids[0].clone(),
            pass: true,
            reason: None,
        };
        json!({"statement": st, "signature": sign_statement(&keys[&members[0]], VOTE_LABEL, &st)})
    };
    app.post(&votes, None, bidder_vote)
        .await
        .expect_error(422, "pass_rejected");
    // Scores before qualification is decided are refused.
    let scores = format!("/api/sections/{s}/evaluation/scores");
    let score = |m: &str, bid: &str, item: &str, points: &str| {
        let st = ScoreStatement {
            section_id: s.clone(),
            expert_id: m.into(),
            bid: bid.into(),
            item: item.into(),
            points: kaibiao::domain::decimal::Points::parse(points).unwrap(),
        };
        json!({"statement": st, "signature": sign_statement(&keys[m], SCORE_LABEL, &st)})
    };
    app.post(&scores, None, score(&members[0], &bids[0], "tech", "40"))
        .await
        .expect_error(409, "invalid_transition");
    for (i, m) in members.iter().enumerate() {
        for (j, b) in bids.iter().enumerate() {
            let pass = j != rejected || i < 2;
            app.post(&votes, None, vote(m, b, pass)).await.expect(200);
        }
    }
    // The same review again is a repeat; a changed one is refused.
    let again = app
        .post(&votes, None, vote(&members[0], &bids[0], true))
        .await
        .expect(200);
    assert_eq!(again["repeat"], true);
    app.post(&votes, None, vote(&members[0], &bids[0], false))
        .await
        .expect_error(409, "conflict");
    let status = app
        .get(&format!("/api/sections/{s}/evaluation"), Some(host))
        .await
        .expect(200);
    assert_eq!(status["phase"], "scoring");

    // Scores: out of range, the computed price item, a rejected bid, a repeat.
    app.post(&scores, None, score(&members[0], &bids[0], "tech", "50.01"))
        .await
        .expect_error(422, "validation_failed");
    app.post(&scores, None, score(&members[0], &bids[0], "price", "10"))
        .await
        .expect_error(422, "validation_failed");
    app.post(
        &scores,
        None,
        score(&members[0], &bids[rejected], "tech", "10"),
    )
    .await
    .expect_error(422, "validation_failed");
    let finish = format!("/api/sections/{s}/evaluation/finish");
    let tech = ["40", "42", "44", "41", "43"];
    let top = (0..3).find(|j| *j != rejected).unwrap();
    let other_bid = (0..3).find(|j| *j != top && *j != rejected).unwrap();
    // A sheet (a bid's scores in one request) is all or nothing.
    let sheet = |cells: Vec<Value>| json!({"scores": cells});
    let e = app
        .post(
            &scores,
            None,
            sheet(vec![
                score(&members[0], &bids[top], "tech", "40"),
                score(&members[0], &bids[top], "credit", "10.01"),
            ]),
        )
        .await
        .expect_error(422, "validation_failed");
    assert!(e["message"].as_str().unwrap().contains("scores[1]"), "{e}");
    app.post(&scores, None, sheet(vec![]))
        .await
        .expect_error(422, "validation_failed");
    let twice = score(&members[0], &bids[top], "tech", "40");
    app.post(&scores, None, sheet(vec![twice.clone(), twice]))
        .await
        .expect_error(422, "validation_failed");
    for (i, m) in members.iter().enumerate() {
        for (j, b) in bids.iter().enumerate().filter(|(j, _)| *j != rejected) {
            let t = if j == top { tech[i] } else { "30" };
            if i == 0 {
                let r = app
                    .post(
                        &scores,
                        None,
                        sheet(vec![score(m, b, "tech", t), score(m, b, "credit", "8")]),
                    )
                    .await
                    .expect(200);
                assert_eq!(
                    r["new"], 2,
                    "nothing of the refused sheets was written: {r}"
                );
                continue;
            }
            app.post(&scores, None, score(m, b, "tech", t))
                .await
                .expect(200);
            if !(i == 4 && j == other_bid) {
                app.post(&scores, None, score(m, b, "credit", "8"))
                    .await
                    .expect(200);
            }
        }
    }
    // A sheet with one cell already scored otherwise writes none of its cells.
    app.post(
        &scores,
        None,
        sheet(vec![
            score(&members[4], &bids[other_bid], "credit", "8"),
            score(&members[4], &bids[other_bid], "tech", "31"),
        ]),
    )
    .await
    .expect_error(409, "conflict");
    // Not finished while a score is missing; the message says which.
    let e = app
        .post(&finish, Some(host), json!({}))
        .await
        .expect_error(409, "invalid_transition");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("has not scored credit"),
        "{e}"
    );
    app.post(
        &scores,
        None,
        score(&members[4], &bids[other_bid], "credit", "8"),
    )
    .await
    .expect(200);
    let again = app
        .post(
            &scores,
            None,
            score(&members[4], &bids[other_bid], "credit", "8"),
        )
        .await
        .expect(200);
    assert_eq!(again["repeats"], 1);
    app.post(
        &scores,
        None,
        score(&members[4], &bids[other_bid], "credit", "9"),
    )
    .await
    .expect_error(409, "conflict");
    app.post(&finish, Some(&fx.w.bidders[0].token), json!({}))
        .await
        .expect_error(403, "forbidden");

    let done = app.post(&finish, Some(host), json!({})).await.expect(200);
    let outcome: scoring::EvalOutcome =
        serde_json::from_value(done["report"]["outcome"].clone()).unwrap();
    assert_eq!(outcome.ranking.len(), 2);
    assert!(
        !outcome
            .qualification
            .iter()
            .find(|q| q.bid == bids[rejected])
            .unwrap()
            .qualified
    );
    // The result is exactly what the pure computation gives from the record.
    let db = app.db.clone();
    let sid = kaibiao::domain::ids::SectionId::from_db(s.clone());
    let input = tokio::task::spawn_blocking(move || {
        let mut c = db.get_blocking().unwrap();
        kaibiao::service::evaluation::eval_input(&mut c, &sid).unwrap()
    })
    .await
    .unwrap();
    assert_eq!(scoring::evaluate(&input).unwrap(), outcome);
    // The K coefficient is one of the declared candidates.
    assert!(["0.9500", "0.9700", "1.0000"].contains(&input.k.unwrap().to_string().as_str()));
    // Bid 0: totals 48 50 52 49 51 → trimmed mean of 49 50 51 = 50.00 (+ price score).
    let first = outcome.ranking.iter().find(|r| r.bid == bids[top]).unwrap();
    assert_eq!(first.panel_score.to_string(), "50.00");
    app.post(&finish, Some(host), json!({}))
        .await
        .expect_error(409, "invalid_transition");
    app.post(&scores, None, score(&members[0], &bids[top], "credit", "1"))
        .await
        .expect_error(409, "invalid_transition");

    // The report: every expert signs its hash; dissent needs its reasons.
    let report_hash = done["report_hash"].as_str().unwrap().to_string();
    assert_eq!(
        report_hash,
        kaibiao::crypto::sha256_hex(&kaibiao::crypto::jcs::canonicalize(&done["report"]).unwrap())
    );
    let signatures = format!("/api/sections/{s}/evaluation/report/signatures");
    let report = |m: &str, hash: &str, agree: bool, dissent: Option<&str>| {
        let st = ReportStatement {
            section_id: s.clone(),
            expert_id: m.into(),
            report_hash: hash.into(),
            agree,
            dissent: dissent.map(str::to_string),
        };
        json!({"statement": st, "signature": sign_statement(&keys[m], REPORT_LABEL, &st)})
    };
    app.post(
        &signatures,
        None,
        report(&members[0], &"0".repeat(64), true, None),
    )
    .await
    .expect_error(422, "validation_failed");
    app.post(
        &signatures,
        None,
        report(&members[0], &report_hash, false, None),
    )
    .await
    .expect_error(422, "validation_failed");
    let publish = format!("/api/sections/{s}/evaluation/publish");
    for (i, m) in members.iter().enumerate().take(4) {
        let dissent = (i == 1).then_some("技术评分中施工组织设计一项评分偏高，本人保留意见。");
        app.post(&signatures, None, report(m, &report_hash, i != 1, dissent))
            .await
            .expect(200);
    }
    app.post(
        &signatures,
        None,
        report(&members[0], &report_hash, true, None),
    )
    .await
    .expect_error(409, "conflict");
    // The fifth expert stays silent: no publication before the signing time ends…
    let e = app
        .post(&publish, Some(host), json!({}))
        .await
        .expect_error(409, "invalid_transition");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("1 expert(s) have not signed"),
        "{e}"
    );
    assert_eq!(
        app.get(&format!("/api/public/sections/{s}/result"), None)
            .await
            .status,
        404
    );
    // …and when it has, the silence is recorded as agreement.
    app.advance(chrono::Duration::minutes(61));
    app.post(
        &signatures,
        None,
        report(&members[4], &report_hash, true, None),
    )
    .await
    .expect_error(409, "invalid_transition");
    let published = app.post(&publish, Some(host), json!({})).await.expect(200);
    assert_eq!(published["phase"], "publicity");
    assert_eq!(published["candidates"][0]["bid"], bids[top]);
    let result = app
        .get(&format!("/api/public/sections/{s}/result"), None)
        .await
        .expect(200);
    let sigs = result["signatures"].as_array().unwrap();
    assert_eq!(sigs.len(), 5);
    assert!(sigs
        .iter()
        .any(|x| x["expert_id"] == members[4] && x["deemed"] == true && x["agree"] == true));
    assert!(sigs.iter().any(|x| x["expert_id"] == members[1]
        && x["agree"] == false
        && x["dissent"].as_str().is_some()));
    // The committee is public now, names included.
    assert_eq!(result["committee"].as_array().unwrap().len(), 5);
    assert!(result["committee"].to_string().contains("专家"));

    // Publicity: a bidder objects (the clock stops), the tenderer answers.
    let objections = format!("/api/sections/{s}/publicity/objections");
    let tenderer = fx.w.tenderer.token.as_str();
    app.post(&objections, Some(host), json!({"text": "x"}))
        .await
        .expect_error(403, "forbidden");
    let objection = app
        .post(
            &objections,
            Some(&fx.w.bidders[2].token),
            json!({"text": "我公司资格审查被否决的理由不成立，请复核。"}),
        )
        .await
        .expect(200);
    let oid = objection["id"].as_str().unwrap().to_string();
    // Paused: even past the original end, nothing is awarded.
    app.advance(chrono::Duration::days(4));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        app.get(&format!("/api/public/sections/{s}/result"), None)
            .await
            .expect(200)["phase"],
        "publicity"
    );
    let answer = format!("/api/sections/{s}/publicity/objections/{oid}/answer");
    app.post(&answer, Some(&fx.w.bidders[0].token), json!({"text": "x"}))
        .await
        .expect_error(403, "forbidden");
    let answered = app
        .post(
            &answer,
            Some(tenderer),
            json!({"text": "经复核，项目经理注册证书已过期，否决理由成立。"}),
        )
        .await
        .expect(200);
    assert_eq!(answered["publicity"], "running");
    assert_eq!(
        answered["late"], true,
        "answered after the 3 days the tenderer had"
    );
    app.post(&answer, Some(tenderer), json!({"text": "again"}))
        .await
        .expect_error(409, "conflict");
    // The remaining publicity (3 days less the hour before the objection) runs on.
    let paused_end = answered["publicity_ends_at_ms"].as_i64().unwrap();
    assert!(
        paused_end > app.now().millis() + 2 * 86_400_000,
        "{answered}"
    );
    app.advance(chrono::Duration::days(3));
    app.eventually("the section is awarded", || async {
        app.get(&format!("/api/public/sections/{s}/result"), None)
            .await
            .json()["phase"]
            == "awarded"
    })
    .await;
    app.post(
        &objections,
        Some(&fx.w.bidders[2].token),
        json!({"text": "太晚了"}),
    )
    .await
    .expect_error(409, "invalid_transition");
    // The award notice to the winner, result notices to the others.
    let winner = outcome.ranking[0].bidder.clone();
    let winner_i = (0..3).find(|i| fx.org(*i) == winner).unwrap();
    let award = app
        .wait_for_mail(&fx.w.bidders[winner_i].email, "贵单位为以下标段的中标人")
        .await;
    assert!(
        award.contains(&outcome.ranking[0].price.to_string()),
        "{award}"
    );
    for i in (0..3).filter(|i| *i != winner_i) {
        let m = app
            .wait_for_mail(&fx.w.bidders[i].email, "已确定中标人")
            .await;
        assert!(!m.contains("贵单位为以下标段的中标人"), "{m}");
    }
    // The transcript: `kaibiao verify` recomputes the draw and the result
    // and checks every signature; any alteration is caught and named.
    let tr: kaibiao::transcript::Transcript = serde_json::from_value(
        app.get(&format!("/api/public/sections/{s}/transcript"), None)
            .await
            .expect(200),
    )
    .unwrap();
    let summary = kaibiao::transcript::verify(&tr).unwrap();
    let e = summary.evaluation.expect("the evaluation is verified");
    assert_eq!(e.committee, 5);
    assert_eq!(e.candidates, outcome.candidates);
    assert_eq!((e.dissents, e.deemed_agreed), (1, 1));
    assert_eq!(e.awarded.as_deref(), Some(winner.as_str()));
    let broken = |f: &dyn Fn(&mut kaibiao::transcript::evaluation::EvaluationExtract)| {
        let mut t = tr.clone();
        f(t.evaluation.as_mut().unwrap());
        kaibiao::transcript::verify(&t).unwrap_err()
    };
    // A score altered after signing.
    let err = broken(&|x| {
        let mut v: Value = serde_json::from_str(&x.scores[3].statement).unwrap();
        v["points"] = json!("1.00");
        x.scores[3].statement =
            String::from_utf8(kaibiao::crypto::jcs::canonicalize(&v).unwrap()).unwrap();
    });
    assert!(err.contains("signature"), "{err}");
    // A score dropped: the result no longer recomputes.
    let err = broken(&|x| {
        x.scores.remove(0);
    });
    assert!(err.contains("does not recompute"), "{err}");
    // Another seed, another pool, another request.
    let err = broken(&|x| x.seed = "00".repeat(32));
    assert!(err.contains("commitment"), "{err}");
    let err = broken(&|x| x.snapshot.experts[0].employer = credit_code(4242));
    assert!(err.contains("snapshot"), "{err}");
    let err = broken(&|x| x.draw.members.swap(0, 1));
    assert!(err.contains("draw recomputed"), "{err}");
    // A report signature altered, or claimed silent.
    let err = broken(&|x| {
        let r = x.report_signatures.iter_mut().find(|r| !r.deemed).unwrap();
        r.signature = Some("00".repeat(64));
    });
    assert!(err.contains("report signature"), "{err}");
    let err = broken(&|x| {
        let r = x.report_signatures.iter_mut().find(|r| !r.agree).unwrap();
        r.agree = true;
    });
    assert!(err.contains("signs something else"), "{err}");
    // A pass from a centre nobody trusted.
    let err = broken(&|x| {
        let home = x
            .seats
            .iter()
            .find_map(|s| s.pass.as_ref())
            .unwrap()
            .pass
            .centre
            .clone();
        x.centres.retain(|c| c.code != home);
    });
    assert!(err.contains("does not trust"), "{err}");
    // The evaluation withheld although the log publishes a result.
    let mut t = tr.clone();
    t.evaluation = None;
    assert!(kaibiao::transcript::verify(&t)
        .unwrap_err()
        .contains("omits the evaluation"));
}

/// The whole life on a real SMTP conversation: the experts' calls and then
/// the award and result notices arrive at a small SMTP server.
#[actix_web::test]
async fn award_notices_arrive_over_smtp() {
    let smtp = SmtpServer::start(0).await;
    let port = smtp.port;
    let p = evaluating_with(TestStore::new(), move |c| {
        c.mail.transport = kaibiao::config::MailTransport::Smtp;
        c.mail.smtp.host = "127.0.0.1".into();
        c.mail.smtp.port = port;
        c.mail.smtp.tls = kaibiao::config::SmtpTls::None;
    })
    .await;
    let fx = &p.fx;
    let app = &fx.app;
    let s = fx.section.clone();
    let host = fx.w.host.token.as_str();
    let mails = || -> Vec<String> {
        smtp.received()
            .iter()
            .map(|r| {
                format!(
                    "To: {}\n{}",
                    r.to.join(", "),
                    decode_mail(r.data.as_bytes())
                )
            })
            .collect()
    };
    let csv = pool_csv(&p).await;
    import(fx, csv).await;
    app.post(
        &format!("/api/sections/{s}/evaluation/draw"),
        Some(host),
        draw_body(5, 0),
    )
    .await
    .expect(200);
    let called = calls_in(fx, 5, &mails).await;
    let mut keys = BTreeMap::new();
    let now = app.now().millis();
    for (id, mail) in &called {
        app.post(
            "/api/evaluation/answer",
            None,
            json!({"token": token_in(mail), "accept": true}),
        )
        .await
        .expect(200);
        let ek = sign::generate();
        let c = centre_of(id);
        app.post(
            &format!("/api/sections/{s}/evaluation/admit"),
            None,
            json!(issue(&p.centre_keys[c], c, id, &ek, &s, now)),
        )
        .await
        .expect(200);
        keys.insert(id.clone(), ek);
    }
    let record = app
        .get(&format!("/api/public/sections/{s}/opening-record"), None)
        .await
        .expect(200);
    let bids: Vec<String> = record["record"]["bids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["envelope_hash"].as_str().unwrap().to_string())
        .collect();
    for (id, k) in &keys {
        for b in &bids {
            let st = VoteStatement {
                section_id: s.clone(),
                expert_id: id.clone(),
                bid: b.clone(),
                pass: true,
                reason: None,
            };
            let body = json!({"statement": st, "signature": sign_statement(k, VOTE_LABEL, &st)});
            app.post(&format!("/api/sections/{s}/evaluation/votes"), None, body)
                .await
                .expect(200);
        }
    }
    for (id, k) in &keys {
        for (j, b) in bids.iter().enumerate() {
            let sheet: Vec<Value> = [
                ("tech", format!("{}", 30 + j * 5)),
                ("credit", "8".to_string()),
            ]
            .iter()
            .map(|(item, pts)| {
                let st = ScoreStatement {
                    section_id: s.clone(),
                    expert_id: id.clone(),
                    bid: b.clone(),
                    item: item.to_string(),
                    points: kaibiao::domain::decimal::Points::parse(pts).unwrap(),
                };
                json!({"statement": st, "signature": sign_statement(k, SCORE_LABEL, &st)})
            })
            .collect();
            app.post(
                &format!("/api/sections/{s}/evaluation/scores"),
                None,
                json!({"scores": sheet}),
            )
            .await
            .expect(200);
        }
    }
    let done = app
        .post(
            &format!("/api/sections/{s}/evaluation/finish"),
            Some(host),
            json!({}),
        )
        .await
        .expect(200);
    let hash = done["report_hash"].as_str().unwrap();
    for (id, k) in &keys {
        let st = ReportStatement {
            section_id: s.clone(),
            expert_id: id.clone(),
            report_hash: hash.into(),
            agree: true,
            dissent: None,
        };
        app.post(
            &format!("/api/sections/{s}/evaluation/report/signatures"),
            None,
            json!({"statement": st, "signature": sign_statement(k, REPORT_LABEL, &st)}),
        )
        .await
        .expect(200);
    }
    app.post(
        &format!("/api/sections/{s}/evaluation/publish"),
        Some(host),
        json!({}),
    )
    .await
    .expect(200);
    app.advance(chrono::Duration::days(3) + chrono::Duration::seconds(1));
    app.eventually("the award and result notices arrived over SMTP", || {
        let got = mails();
        let ok = (0..3).all(|i| {
            got.iter().any(|m| {
                m.contains(&format!("To: {}", fx.w.bidders[i].email))
                    && (m.contains("贵单位为以下标段的中标人") || m.contains("已确定中标人"))
            })
        });
        async move { ok }
    })
    .await;
    // The award notice goes to the first of the published ranking only.
    let result = app
        .get(&format!("/api/public/sections/{s}/result"), None)
        .await
        .expect(200);
    let winner = result["ranking"][0]["bidder"].as_str().unwrap().to_string();
    let winner_i = (0..3).find(|i| fx.org(*i) == winner).unwrap();
    let got = mails();
    let awards: Vec<&String> = got
        .iter()
        .filter(|m| m.contains("贵单位为以下标段的中标人"))
        .collect();
    assert_eq!(awards.len(), 1);
    assert!(
        awards[0].starts_with(&format!("To: {}", fx.w.bidders[winner_i].email)),
        "{}",
        awards[0]
    );
    assert!(
        awards[0].contains(result["ranking"][0]["price"].as_str().unwrap()),
        "{}",
        awards[0]
    );
    assert_eq!(got.iter().filter(|m| m.contains("已确定中标人")).count(), 2);
    let r = app
        .get(&format!("/api/public/sections/{s}/result"), None)
        .await
        .expect(200);
    assert_eq!(r["phase"], "awarded");
}

/// Draws `count` members and `reserves` reserves of "civil"; every called
/// expert accepts and is admitted. Returns the members' signing keys.
async fn seated(p: &Panel, count: u32, reserves: u32) -> BTreeMap<String, SigningKey> {
    let fx = &p.fx;
    let app = &fx.app;
    let s = &fx.section;
    import(fx, pool_csv(p).await).await;
    app.post(
        &format!("/api/sections/{s}/evaluation/draw"),
        Some(fx.w.host.token.as_str()),
        draw_body(count, reserves),
    )
    .await
    .expect(200);
    let mut keys = BTreeMap::new();
    for (id, mail) in calls_n(fx, count as usize).await {
        keys.insert(id.clone(), admit_one(p, &id, &mail).await);
    }
    keys
}

/// The expert accepts the call in `mail` and is admitted with a new key.
async fn admit_one(p: &Panel, id: &str, mail: &str) -> SigningKey {
    let app = &p.fx.app;
    let s = &p.fx.section;
    app.post(
        "/api/evaluation/answer",
        None,
        json!({"token": token_in(mail), "accept": true}),
    )
    .await
    .expect(200);
    let ek = sign::generate();
    let c = centre_of(id);
    let now = app.now().millis();
    app.post(
        &format!("/api/sections/{s}/evaluation/admit"),
        None,
        json!(issue(&p.centre_keys[c], c, id, &ek, s, now)),
    )
    .await
    .expect(200);
    ek
}

fn signed<T: serde::Serialize>(k: &SigningKey, label: &str, st: &T) -> Value {
    json!({"statement": st, "signature": sign_statement(k, label, st)})
}

#[actix_web::test]
async fn clarifications_recusal_and_outliers() {
    use kaibiao::service::evaluation::{
        ClarificationAnswerStatement, ClarificationStatement, OutlierStatement, RecusalStatement,
        CLARIFICATION_ANSWER_LABEL, CLARIFICATION_LABEL, OUTLIER_LABEL, RECUSAL_LABEL,
    };
    let p = evaluating(TestStore::new()).await;
    let fx = &p.fx;
    let app = &fx.app;
    let s = fx.section.clone();
    let host = fx.w.host.token.as_str();
    let mut keys = seated(&p, 5, 2).await;
    let record = app
        .get(&format!("/api/public/sections/{s}/opening-record"), None)
        .await
        .expect(200);
    let bid_of = |i: usize| -> String {
        record["record"]["bids"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["bidder"] == fx.org(i).as_str())
            .unwrap()["envelope_hash"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let members: Vec<String> = keys.keys().cloned().collect();
    let votes = format!("/api/sections/{s}/evaluation/votes");
    let pass_vote = |m: &str, k: &SigningKey, i: usize| {
        let st = VoteStatement {
            section_id: s.clone(),
            expert_id: m.into(),
            bid: bid_of(i),
            pass: true,
            reason: None,
        };
        signed(k, VOTE_LABEL, &st)
    };

    // Clarification (澄清): asked by an expert, answered by the bidder,
    // signed, once, before the time limit — late by one millisecond is late.
    let ask = |m: &str, minutes: u32| {
        let st = ClarificationStatement {
            section_id: s.clone(),
            expert_id: m.into(),
            bid: bid_of(0),
            question: "请说明投标报价中安全文明施工费的计取依据。".into(),
            minutes,
        };
        signed(&keys[m], CLARIFICATION_LABEL, &st)
    };
    let clar = format!("/api/sections/{s}/evaluation/clarifications");
    let mut bad = ask(&members[0], 0);
    app.post(&clar, None, bad.clone())
        .await
        .expect_error(422, "validation_failed");
    bad = ask(&members[0], 10);
    bad["statement"]["minutes"] = json!(11);
    app.post(&clar, None, bad)
        .await
        .expect_error(422, "proof_invalid");
    let first = app
        .post(&clar, None, ask(&members[0], 10))
        .await
        .expect(200);
    let first_id = first["id"].as_str().unwrap().to_string();
    let mail = app.wait_for_mail(&fx.w.bidders[0].email, &first_id).await;
    assert!(mail.contains("安全文明施工费"), "{mail}");
    let answer_body = |i: usize, id: &str, text: &str| {
        let st = ClarificationAnswerStatement {
            section_id: s.clone(),
            clarification_id: id.into(),
            bid: bid_of(0),
            answer: text.into(),
        };
        json!({"answer": text, "signature": sign_statement(&fx.keys[i].signing, CLARIFICATION_ANSWER_LABEL, &st)})
    };
    let answer_path = |id: &str| format!("/api/sections/{s}/clarifications/{id}/answer");
    app.post(
        &answer_path(&first_id),
        Some(&fx.w.bidders[1].token),
        answer_body(1, &first_id, "x"),
    )
    .await
    .expect_error(403, "forbidden");
    app.post(
        &answer_path(&first_id),
        Some(&fx.w.bidders[0].token),
        answer_body(1, &first_id, "按省定额计取。"),
    )
    .await
    .expect_error(422, "proof_invalid");
    app.advance(chrono::Duration::minutes(10));
    app.post(
        &answer_path(&first_id),
        Some(&fx.w.bidders[0].token),
        answer_body(0, &first_id, "按省定额计取。"),
    )
    .await
    .expect_error(409, "deadline_passed");
    let second = app
        .post(&clar, None, ask(&members[1], 10))
        .await
        .expect(200);
    let second_id = second["id"].as_str().unwrap().to_string();
    app.advance(chrono::Duration::minutes(10) - chrono::Duration::milliseconds(1));
    app.post(
        &answer_path(&second_id),
        Some(&fx.w.bidders[0].token),
        answer_body(0, &second_id, "按省定额计取。"),
    )
    .await
    .expect(200);
    app.post(
        &answer_path(&second_id),
        Some(&fx.w.bidders[0].token),
        answer_body(0, &second_id, "再答"),
    )
    .await
    .expect_error(409, "conflict");

    // Recusal (回避) mid-session: the reserve is called and takes the seat.
    let recused = members[2].clone();
    let st = RecusalStatement {
        section_id: s.clone(),
        expert_id: recused.clone(),
        reason: "发现与投标人项目经理曾为同事".into(),
    };
    let r = app
        .post(
            &format!("/api/sections/{s}/evaluation/recusals"),
            None,
            signed(&keys[&recused], RECUSAL_LABEL, &st),
        )
        .await
        .expect(200);
    assert_eq!(r["reserve_called"], true);
    let calls = calls_n(fx, 6).await;
    let (reserve, mail) = calls
        .iter()
        .find(|(id, _)| !keys.contains_key(id))
        .unwrap()
        .clone();
    let k = admit_one(&p, &reserve, &mail).await;
    let recused_key = keys.remove(&recused).unwrap();
    keys.insert(reserve.clone(), k);
    // The recused member can no longer act.
    let st = VoteStatement {
        section_id: s.clone(),
        expert_id: recused.clone(),
        bid: bid_of(0),
        pass: true,
        reason: None,
    };
    app.post(
        &format!("/api/sections/{s}/evaluation/votes"),
        None,
        signed(&recused_key, VOTE_LABEL, &st),
    )
    .await
    .expect_error(422, "pass_rejected");
    for (m, k) in &keys {
        for i in 0..3 {
            app.post(&votes, None, pass_vote(m, k, i)).await.expect(200);
        }
    }
    let status = app
        .get(&format!("/api/sections/{s}/evaluation"), Some(host))
        .await
        .expect(200);
    assert_eq!(status["phase"], "scoring");

    // Outliers: one expert's total for bid 0 is 30 points under the median.
    let outlier = keys.keys().next().unwrap().clone();
    let sheet = |m: &str, k: &SigningKey, i: usize, tech: &str| {
        let cells: Vec<Value> = [("tech", tech), ("credit", "8")]
            .iter()
            .map(|(item, pts)| {
                let st = ScoreStatement {
                    section_id: s.clone(),
                    expert_id: m.into(),
                    bid: bid_of(i),
                    item: item.to_string(),
                    points: kaibiao::domain::decimal::Points::parse(pts).unwrap(),
                };
                signed(k, SCORE_LABEL, &st)
            })
            .collect();
        json!({ "scores": cells })
    };
    let scores = format!("/api/sections/{s}/evaluation/scores");
    for (m, k) in &keys {
        for i in 0..3 {
            let tech = if *m == outlier && i == 0 { "10" } else { "40" };
            app.post(&scores, None, sheet(m, k, i, tech))
                .await
                .expect(200);
        }
    }
    // A second member recuses after scoring: the last reserve takes the
    // seat, reviews and scores everything; the recused member's signed work
    // is kept but no longer counts.
    let second = keys
        .keys()
        .find(|m| **m != outlier && **m != reserve)
        .unwrap()
        .clone();
    let st = RecusalStatement {
        section_id: s.clone(),
        expert_id: second.clone(),
        reason: "评分中发现曾参与该投标人的项目咨询".into(),
    };
    app.post(
        &format!("/api/sections/{s}/evaluation/recusals"),
        None,
        signed(&keys[&second], RECUSAL_LABEL, &st),
    )
    .await
    .expect(200);
    let second_key = keys.remove(&second).unwrap();
    app.post(&scores, None, sheet(&second, &second_key, 0, "40"))
        .await
        .expect_error(422, "pass_rejected");
    let calls = calls_n(fx, 7).await;
    let (last, mail) = calls
        .iter()
        .find(|(id, _)| !keys.contains_key(id) && *id != recused && *id != second)
        .unwrap()
        .clone();
    let k = admit_one(&p, &last, &mail).await;
    for i in 0..3 {
        app.post(&votes, None, pass_vote(&last, &k, i))
            .await
            .expect(200);
        app.post(&scores, None, sheet(&last, &k, i, "40"))
            .await
            .expect(200);
    }
    keys.insert(last.clone(), k);
    let finish = format!("/api/sections/{s}/evaluation/finish");
    let flagged = app.post(&finish, Some(host), json!({})).await.expect(200);
    assert_eq!(flagged["phase"], "scoring", "{flagged}");
    let flags = flagged["flags"].as_array().unwrap();
    assert_eq!(flags.len(), 1, "{flagged}");
    assert_eq!(flags[0]["expert_id"], outlier.as_str());
    // The supervisor sees the flag in the room's staff view.
    let mut supervisor = fx.watch(Some(&fx.w.supervisor.token), 0).await;
    let frames = events_until(&mut supervisor, "evaluation.outlier_flagged").await;
    assert_eq!(
        frames.last().unwrap()["data"]["expert_id"],
        outlier.as_str()
    );
    assert_eq!(
        (flags[0]["total"].as_str(), flags[0]["median"].as_str()),
        (Some("18.00"), Some("48.00"))
    );
    app.wait_for_mail(
        &format!("{}@experts.example.cn", outlier.to_lowercase()),
        "18.00",
    )
    .await;
    let confirm = |m: &str, reason: &str| {
        let st = OutlierStatement {
            section_id: s.clone(),
            expert_id: m.into(),
            bid: bid_of(0),
            reason: reason.into(),
        };
        signed(&keys[m], OUTLIER_LABEL, &st)
    };
    let outliers = format!("/api/sections/{s}/evaluation/outliers");
    app.post(&outliers, None, confirm(&outlier, "  "))
        .await
        .expect_error(422, "validation_failed");
    let other = keys.keys().find(|m| **m != outlier).unwrap().clone();
    app.post(&outliers, None, confirm(&other, "x"))
        .await
        .expect_error(422, "validation_failed");
    app.post(
        &outliers,
        None,
        confirm(&outlier, "该投标技术方案未响应主要技术参数，故评分较低。"),
    )
    .await
    .expect(200);
    app.post(&outliers, None, confirm(&outlier, "again"))
        .await
        .expect_error(409, "conflict");
    let done = app.post(&finish, Some(host), json!({})).await.expect(200);
    assert_eq!(done["phase"], "signing");
    // The panel is the reserve's, not the recused member's.
    let panel: Vec<String> = serde_json::from_value(done["report"]["panel"].clone()).unwrap();
    assert!(
        panel.contains(&reserve)
            && panel.contains(&last)
            && !panel.contains(&recused)
            && !panel.contains(&second),
        "{panel:?}"
    );
    assert_eq!(
        done["report"]["outcome"]["outliers"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Everyone sitting signs; the result is published and the transcript
    // verifies with both recusals in it.
    let hash = done["report_hash"].as_str().unwrap().to_string();
    for (m, k) in &keys {
        let st = ReportStatement {
            section_id: s.clone(),
            expert_id: m.clone(),
            report_hash: hash.clone(),
            agree: true,
            dissent: None,
        };
        app.post(
            &format!("/api/sections/{s}/evaluation/report/signatures"),
            None,
            signed(k, REPORT_LABEL, &st),
        )
        .await
        .expect(200);
    }
    let st = ReportStatement {
        section_id: s.clone(),
        expert_id: second.clone(),
        report_hash: hash.clone(),
        agree: true,
        dissent: None,
    };
    app.post(
        &format!("/api/sections/{s}/evaluation/report/signatures"),
        None,
        signed(&second_key, REPORT_LABEL, &st),
    )
    .await
    .expect_error(422, "pass_rejected");
    app.post(
        &format!("/api/sections/{s}/evaluation/publish"),
        Some(host),
        json!({}),
    )
    .await
    .expect(200);
    let tr: kaibiao::transcript::Transcript = serde_json::from_value(
        app.get(&format!("/api/public/sections/{s}/transcript"), None)
            .await
            .expect(200),
    )
    .unwrap();
    let x = tr.evaluation.as_ref().unwrap();
    assert!(
        x.scores.iter().any(|v| v.statement.contains(&second)),
        "the recused member's work is kept"
    );
    let e = kaibiao::transcript::verify(&tr)
        .unwrap()
        .evaluation
        .unwrap();
    assert_eq!(e.committee, 5);
}

/// A drawn expert who does not answer in time counts as declining: the
/// chronograph calls the next reserve, and the late answer is refused.
#[actix_web::test]
async fn a_no_show_is_replaced_by_the_next_reserve() {
    let p = evaluating(TestStore::new()).await;
    let fx = &p.fx;
    let app = &fx.app;
    let s = &fx.section;
    import(fx, pool_csv(&p).await).await;
    app.post(
        &format!("/api/sections/{s}/evaluation/draw"),
        Some(fx.w.host.token.as_str()),
        draw_body(5, 1),
    )
    .await
    .expect(200);
    let called = calls_n(fx, 5).await;
    for (_, mail) in &called[1..] {
        app.post(
            "/api/evaluation/answer",
            None,
            json!({"token": token_in(mail), "accept": true}),
        )
        .await
        .expect(200);
    }
    // One millisecond before the time ends nothing happens…
    app.advance(chrono::Duration::hours(24) - chrono::Duration::milliseconds(1));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(calls(app.mails()).len(), 5);
    // …at its end the silent expert is replaced.
    app.advance(chrono::Duration::milliseconds(1));
    let now_called = calls_n(fx, 6).await;
    let status = app
        .get(
            &format!("/api/sections/{s}/evaluation"),
            Some(fx.w.host.token.as_str()),
        )
        .await
        .expect(200);
    assert_eq!(status["seats"]["civil"]["declined"], 1, "{status}");
    assert_eq!(status["seats"]["civil"]["called"], 1, "{status}");
    app.post(
        "/api/evaluation/answer",
        None,
        json!({"token": token_in(&called[0].1), "accept": true}),
    )
    .await
    .expect_error(422, "token_invalid");
    let reserve = now_called
        .iter()
        .find(|(id, _)| !called.iter().any(|(c, _)| c == id))
        .unwrap();
    app.post(
        "/api/evaluation/answer",
        None,
        json!({"token": token_in(&reserve.1), "accept": true}),
    )
    .await
    .expect(200);
    let status = app
        .get(
            &format!("/api/sections/{s}/evaluation"),
            Some(fx.w.host.token.as_str()),
        )
        .await
        .expect(200);
    assert_eq!(status["seats_missing"], 0, "{status}");
}

/// This centre's own experts sign in here and get their pass from it.
#[actix_web::test]
async fn the_home_centre_issues_passes_to_its_own_experts() {
    let p = evaluating(TestStore::new()).await;
    let fx = &p.fx;
    let app = &fx.app;
    let s = &fx.section;
    let expert = &fx.w.expert;
    let mut csv = pool_csv(&p).await;
    csv.push_str(&format!(
        "H1,HOST,本地专家,{},audit,{},,,yes\n",
        expert.email,
        credit_code(777)
    ));
    import(fx, csv).await;
    let mut body = json!({"requirements": [{"specialty": "civil", "count": 4, "reserves": 0},
                                           {"specialty": "audit", "count": 1, "reserves": 0}],
                          "centres": CENTRES});
    body["centres"].as_array_mut().unwrap().push(json!("HOST"));
    app.post(
        &format!("/api/sections/{s}/evaluation/draw"),
        Some(fx.w.host.token.as_str()),
        body,
    )
    .await
    .expect(200);
    let pass_path = format!("/api/sections/{s}/evaluation/pass");
    let ek = sign::generate();
    let key_hex = hex::encode(ek.verifying_key().as_bytes());
    // Not before the expert has confirmed the seat; never for another role.
    app.post(
        &pass_path,
        Some(&expert.token),
        json!({"expert_key": key_hex}),
    )
    .await
    .expect_error(422, "pass_rejected");
    app.post(
        &pass_path,
        Some(&fx.w.host.token),
        json!({"expert_key": key_hex}),
    )
    .await
    .expect_error(403, "forbidden");
    let mail = app.wait_for_mail(&expert.email, "kbx_").await;
    app.post(
        "/api/evaluation/answer",
        None,
        json!({"token": token_in(&mail), "accept": true}),
    )
    .await
    .expect(200);
    app.post(&pass_path, Some(&expert.token), json!({"expert_key": "zz"}))
        .await
        .expect_error(422, "validation_failed");
    app.post(
        &pass_path,
        Some(&expert.token),
        json!({"expert_key": key_hex, "minutes": 721}),
    )
    .await
    .expect_error(422, "validation_failed");
    let pass = app
        .post(
            &pass_path,
            Some(&expert.token),
            json!({"expert_key": key_hex}),
        )
        .await
        .expect(200);
    assert_eq!(pass["pass"]["centre"], "HOST");
    assert_eq!(pass["pass"]["expert_id"], "H1");
    app.post(&format!("/api/sections/{s}/evaluation/admit"), None, pass)
        .await
        .expect(200);
}

/// The administrator imports `csv` as the pool.
async fn import(fx: &Fx, csv: String) {
    fx.app
        .raw(
            "PUT",
            "/api/experts.csv",
            Some(fx.w.admin.token.as_str()),
            "text/csv",
            csv.into(),
        )
        .await
        .expect(200);
}
