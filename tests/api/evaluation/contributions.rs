//! The draw's seed nobody steers (PROTOCOL §14.2): the supervisor of record
//! and every partner centre commit to a value before the host asks for the
//! draw, reveal it after, and the committee is drawn from the mix of the
//! platform's committed seed and every value — the last value in draws it,
//! or the end of the time to reveal, a withheld value logged and counted as
//! zero. Bad commitments and reveals are refused and change nothing.

use kaibiao::crypto::sign;
use kaibiao::domain::time::Timestamp;
use kaibiao::evaluation::seed::{self, ContributionStatement, CONTRIBUTION_LABEL};
use kaibiao::transcript::verify;
use serde_json::{json, Value};

use super::{calls, draw_body, pool_csv, signed, Panel, Stage, CENTRES};

const SUPERVISOR: &str = "supervisor";

fn parties() -> Vec<String> {
    std::iter::once(SUPERVISOR.to_string())
        .chain(CENTRES.iter().map(|c| seed::centre_party(c)))
        .collect()
}

/// The draw's seed as the host follows it.
async fn view(p: &Panel) -> Value {
    p.app()
        .get(&p.path("draw"), Some(p.host()))
        .await
        .expect(200)
}

fn states(v: &Value) -> Vec<(String, String)> {
    v["committed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["party"].as_str().unwrap().to_string(),
                c["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn call_mails(p: &Panel) -> usize {
    calls(p.mails()).len()
}

async fn pooled() -> Panel {
    let p = Panel::at(Stage::Evaluating).await;
    p.import(pool_csv(p.app(), &p.fx.w).await).await;
    p
}

#[actix_web::test]
async fn the_draw_waits_for_every_commitment_and_the_last_value_draws_it() {
    let p = pooled().await;
    // Nobody committed: the host cannot ask for the draw.
    let e = p
        .request_draw(draw_body(5, 2))
        .await
        .expect_error(409, "invalid_transition");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .ends_with("waiting for: supervisor, centre:GZ-GGZY, centre:SZ-GGZY, centre:ZH-GGZY"),
        "{e}"
    );
    p.commit(SUPERVISOR).await.expect(200);
    p.commit("centre:GZ-GGZY").await.expect(200);
    let e = p
        .request_draw(draw_body(5, 2))
        .await
        .expect_error(409, "invalid_transition");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .ends_with("waiting for: centre:SZ-GGZY, centre:ZH-GGZY"),
        "{e}"
    );
    p.commit("centre:SZ-GGZY").await.expect(200);
    p.commit("centre:ZH-GGZY").await.expect(200);
    // A repeat is recognised, not taken twice.
    assert_eq!(p.commit(SUPERVISOR).await.expect(200)["repeat"], true);

    let now = p.app().now().millis();
    let req = p.request_draw(draw_body(5, 2)).await.expect(200);
    assert_eq!(req["contributors"], json!(parties()));
    assert_eq!(req["reveals_due_at_ms"], now + 30 * 60_000);
    assert_eq!(req["seed_commitment"].as_str().unwrap().len(), 64);
    // Nobody is called until the last value is in.
    let mut waiting = parties();
    for party in &parties()[..3] {
        let r = p.reveal(party).await.expect(200);
        waiting.retain(|w| w != party);
        assert_eq!(r["waiting_for"], json!(waiting));
        assert!(r["drawn"].is_null());
    }
    assert_eq!(call_mails(&p), 0, "nobody is called before the draw");
    assert_eq!(
        states(&view(&p).await)
            .iter()
            .filter(|(_, s)| s == "revealed")
            .count(),
        3
    );
    let last = p.reveal("centre:ZH-GGZY").await.expect(200);
    assert_eq!(last["drawn"]["committee_size"], 5);
    assert_eq!(last["drawn"]["withheld"], json!([]));
    assert_eq!(p.calls(5).await.len(), 5);
    // A repeated reveal is recognised; the draw happened once.
    assert_eq!(p.reveal(SUPERVISOR).await.expect(200)["repeat"], true);
    let v = view(&p).await;
    assert_eq!(v["drawn"], true);
    assert!(states(&v).iter().all(|(_, s)| s == "revealed"));
    // The supervisor follows it too; a bidder may not.
    p.app()
        .get(&p.path("draw"), Some(&p.fx.w.supervisor.token))
        .await
        .expect(200);
    p.app()
        .get(&p.path("draw"), Some(&p.fx.w.bidders[0].token))
        .await
        .expect_error(403, "forbidden");
    p.stop().await;
}

#[actix_web::test]
async fn bad_commitments_and_reveals_are_refused_and_change_nothing() {
    let p = pooled().await;
    let good = p.commitment(SUPERVISOR);
    let st: ContributionStatement = serde_json::from_value(good["statement"].clone()).unwrap();
    let post = |body: Value| p.post("draw/commitments", body);
    // Signed by a key that is not the supervisor's of record.
    let fresh = sign::generate();
    post(signed(&fresh, CONTRIBUTION_LABEL, &st))
        .await
        .expect_error(422, "proof_invalid");
    // Signed by a centre for the supervisor, or under another label.
    post(signed(&p.centre_keys["GZ-GGZY"], CONTRIBUTION_LABEL, &st))
        .await
        .expect_error(422, "proof_invalid");
    post(signed(
        &p.fx.supervisor_key,
        "kaibiao/evaluation-vote/v1",
        &st,
    ))
    .await
    .expect_error(422, "proof_invalid");
    // Altered after signing.
    let mut altered = good.clone();
    altered["statement"]["commitment"] = json!("0".repeat(64));
    post(altered).await.expect_error(422, "proof_invalid");
    // Another section, upper-case hex, parties that do not contribute.
    let as_supervisor = |f: &dyn Fn(&mut ContributionStatement)| {
        let mut s = st.clone();
        f(&mut s);
        signed(&p.fx.supervisor_key, CONTRIBUTION_LABEL, &s)
    };
    for (bad, field) in [
        (
            as_supervisor(&|s| s.section_id = "sec_other".into()),
            "statement.section_id",
        ),
        (
            as_supervisor(&|s| s.commitment = s.commitment.to_uppercase()),
            "statement.commitment",
        ),
        (
            as_supervisor(&|s| s.commitment = "ab".into()),
            "statement.commitment",
        ),
        (
            as_supervisor(&|s| s.party = "nobody".into()),
            "statement.party",
        ),
        (
            as_supervisor(&|s| s.party = "centre:HOST".into()),
            "statement.party",
        ),
        (
            as_supervisor(&|s| s.party = "centre:XX-GGZY".into()),
            "statement.party",
        ),
    ] {
        let e = post(bad).await.expect_error(422, "validation_failed");
        assert_eq!(e["details"][0]["field"], field, "{e}");
    }
    // Unknown fields and malformed JSON.
    let mut extra = good.clone();
    extra["statement"]["note"] = json!("x");
    post(extra).await.expect_error(422, "validation_failed");
    p.app()
        .raw(
            "POST",
            &p.path("draw/commitments"),
            None,
            "application/json",
            b"{\"statement\":".to_vec(),
        )
        .await
        .expect_error(400, "malformed_json");
    assert!(view(&p).await["committed"].as_array().unwrap().is_empty());

    // A reveal before the draw is asked for.
    post(good.clone()).await.expect(200);
    let e = p
        .reveal(SUPERVISOR)
        .await
        .expect_error(409, "invalid_transition");
    assert!(e["message"]
        .as_str()
        .unwrap()
        .contains("no draw has been asked for"));
    // A second, different commitment for the same party.
    let other = as_supervisor(&|s| s.commitment = seed::value_commitment(&[7u8; 32]));
    post(other).await.expect_error(409, "conflict");

    // A draw from two centres: ZH does not contribute, and commits too late.
    p.commit("centre:GZ-GGZY").await.expect(200);
    p.commit("centre:SZ-GGZY").await.expect(200);
    let body = json!({"requirements": [{"specialty": "civil", "count": 5, "reserves": 1}],
                      "centres": ["GZ-GGZY", "SZ-GGZY"]});
    let req = p.request_draw(body).await.expect(200);
    assert_eq!(
        req["contributors"],
        json!(["supervisor", "centre:GZ-GGZY", "centre:SZ-GGZY"])
    );
    let e = p
        .commit("centre:ZH-GGZY")
        .await
        .expect_error(409, "invalid_transition");
    assert!(e["message"].as_str().unwrap().contains("due before"));
    let reveal = |party: &str, value: String| {
        p.post("draw/reveals", json!({"party": party, "value": value}))
    };
    let e = reveal("centre:ZH-GGZY", hex::encode(p.value_of("centre:ZH-GGZY")))
        .await
        .expect_error(422, "validation_failed");
    assert_eq!(e["details"][0]["field"], "party");
    // A value that is not the committed one, upper case, too short, extra fields.
    reveal(SUPERVISOR, hex::encode([7u8; 32]))
        .await
        .expect_error(422, "proof_invalid");
    reveal(
        SUPERVISOR,
        hex::encode(p.value_of(SUPERVISOR)).to_uppercase(),
    )
    .await
    .expect_error(422, "validation_failed");
    reveal(SUPERVISOR, "abcd".into())
        .await
        .expect_error(422, "validation_failed");
    p.post(
        "draw/reveals",
        json!({"party": SUPERVISOR, "value": hex::encode(p.value_of(SUPERVISOR)), "x": 1}),
    )
    .await
    .expect_error(422, "validation_failed");
    // Nothing changed: all three still committed, nobody called.
    assert!(states(&view(&p).await)
        .iter()
        .all(|(_, s)| s == "committed"));
    assert_eq!(call_mails(&p), 0);

    // In time by one millisecond, and late by one.
    let due = req["reveals_due_at_ms"].as_i64().unwrap();
    p.app().fixed_clock().set(Timestamp::from_millis(due - 1));
    p.reveal(SUPERVISOR).await.expect(200);
    p.app().fixed_clock().set(Timestamp::from_millis(due));
    let e = p
        .reveal("centre:GZ-GGZY")
        .await
        .expect_error(409, "deadline_passed");
    assert!(e["message"].as_str().unwrap().contains("withheld"));
    p.stop().await;
}

#[actix_web::test]
async fn a_value_withheld_past_its_time_is_logged_and_the_draw_goes_on_without_it() {
    let p = pooled().await;
    p.commit_all(&draw_body(5, 2)).await;
    let req = p.request_draw(draw_body(5, 2)).await.expect(200);
    for party in &parties()[..3] {
        p.reveal(party).await.expect(200);
    }
    // ZH-GGZY stays silent; the time ends and the chronograph draws.
    let due = req["reveals_due_at_ms"].as_i64().unwrap();
    p.app().fixed_clock().set(Timestamp::from_millis(due));
    assert_eq!(p.calls(5).await.len(), 5);
    let v = view(&p).await;
    assert_eq!(v["drawn"], true);
    let st = states(&v);
    assert!(
        st.contains(&("centre:ZH-GGZY".into(), "withheld".into())),
        "{st:?}"
    );
    p.reveal("centre:ZH-GGZY")
        .await
        .expect_error(409, "deadline_passed");
    p.stop().await;
}

/// The seed of a published transcript, recomputed here from the values the
/// parties derive from their keys and the revealed platform seed.
fn mixed(p: &Panel, platform_seed: &str, withheld: &[&str]) -> String {
    let platform: [u8; 32] = hex::decode(platform_seed).unwrap().try_into().unwrap();
    let values: Vec<Option<[u8; 32]>> = parties()
        .iter()
        .map(|party| (!withheld.contains(&party.as_str())).then(|| p.value_of(party)))
        .collect();
    hex::encode(seed::mix(&platform, &values))
}

#[actix_web::test]
async fn the_transcript_proves_the_seed_mixes_every_party_and_rejects_one_that_does_not() {
    let p = Panel::at(Stage::Publicity).await;
    let t = p.transcript().await;
    let s = verify(&t).unwrap();
    let e = s.evaluation.as_ref().unwrap();
    assert_eq!(e.contributors, parties());
    assert!(e.withheld.is_empty());
    let x = t.evaluation.as_ref().unwrap();
    assert_eq!(x.seed, mixed(&p, &x.platform_seed, &[]));
    assert_eq!(x.contributions.len(), 4);

    let rejected = |f: &dyn Fn(&mut kaibiao::transcript::evaluation::EvaluationExtract)| {
        let mut bad = t.clone();
        f(bad.evaluation.as_mut().unwrap());
        verify(&bad).expect_err("a tampered seed went unnoticed")
    };
    // The platform's seed alone, or another one.
    rejected(&|x| x.seed = x.platform_seed.clone());
    rejected(&|x| x.platform_seed = hex::encode([1u8; 32]));
    // A seed without one party's value.
    let without_zh = mixed(&p, &x.platform_seed, &["centre:ZH-GGZY"]);
    rejected(&|x| x.seed = without_zh.clone());
    // A commitment left out, or listed twice.
    rejected(&|x| {
        x.contributions.pop();
    });
    rejected(&|x| {
        let c = x.contributions[0].clone();
        x.contributions.push(c);
    });
    // Re-signed with a fresh centre key — also when the transcript's list
    // of centres is changed to match: the log names the key.
    let fresh = sign::generate();
    let resign = |x: &mut kaibiao::transcript::evaluation::EvaluationExtract, centres: bool| {
        let c = x
            .contributions
            .iter_mut()
            .find(|c| c.party == "centre:GZ-GGZY")
            .unwrap();
        c.key = hex::encode(fresh.verifying_key().as_bytes());
        c.commitment.signature = hex::encode(sign::sign(
            &fresh,
            CONTRIBUTION_LABEL,
            c.commitment.statement.as_bytes(),
        ));
        if centres {
            let k = c.key.clone();
            x.centres
                .iter_mut()
                .find(|c| c.centre.code == "GZ-GGZY")
                .unwrap()
                .centre
                .public_key = k;
        }
    };
    let err = rejected(&|x| resign(x, false));
    assert!(err.contains("centre:GZ-GGZY"), "{err}");
    rejected(&|x| resign(x, true));
    // The supervisor's commitment signed by another supervisor key.
    let other = sign::generate();
    rejected(&|x| {
        let i = x
            .contributions
            .iter()
            .position(|c| c.party == SUPERVISOR)
            .unwrap();
        let c = &mut x.contributions[i];
        c.key = hex::encode(other.verifying_key().as_bytes());
        c.commitment.signature = hex::encode(sign::sign(
            &other,
            CONTRIBUTION_LABEL,
            c.commitment.statement.as_bytes(),
        ));
    });
    p.stop().await;
}

#[actix_web::test]
async fn a_transcript_with_a_withheld_value_verifies_and_says_so() {
    let p = pooled().await;
    p.commit_all(&draw_body(5, 2)).await;
    let req = p.request_draw(draw_body(5, 2)).await.expect(200);
    for party in &parties()[1..] {
        p.reveal(party).await.expect(200);
    }
    // The supervisor withholds: the draw goes on when the time ends.
    p.app().fixed_clock().set(Timestamp::from_millis(
        req["reveals_due_at_ms"].as_i64().unwrap(),
    ));
    let p = p.drawn_by_hand(Stage::Publicity).await;
    let t = p.transcript().await;
    let s = verify(&t).unwrap();
    assert_eq!(s.evaluation.as_ref().unwrap().withheld, [SUPERVISOR]);
    let x = t.evaluation.as_ref().unwrap();
    assert_eq!(x.seed, mixed(&p, &x.platform_seed, &[SUPERVISOR]));
    // Claiming the withheld value was in is noticed.
    let mut bad = t.clone();
    bad.evaluation.as_mut().unwrap().seed = mixed(&p, &x.platform_seed, &[]);
    verify(&bad).expect_err("a seed with a withheld value went unnoticed");
    let kinds = crate::completeness::every_omission_is_rejected(&t);
    assert!(
        kinds.contains("evaluation.contribution_withheld"),
        "{kinds:?}"
    );
    p.stop().await;
}
