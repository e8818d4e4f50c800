//! The evaluation in the transcript: `kaibiao verify` recomputes the draw
//! from the revealed seed and the pool snapshot, every score and the
//! ranking, and checks every pass and signature; any alteration is caught
//! and named, and withholding the evaluation is too.

use std::collections::BTreeMap;

use ed25519_dalek::SigningKey;
use kaibiao::crypto::sign;
use kaibiao::evaluation::pass::Centre;
use kaibiao::evaluation::scoring::EvalOutcome;
use kaibiao::evaluation::statements::{REPORT_LABEL, SCORE_LABEL, VOTE_LABEL};
use kaibiao::evaluation::{pass, seed};
use kaibiao::transcript::evaluation::{EvaluationExtract, SignedText};
use serde_json::{json, Value};

use super::{Panel, Stage};
use crate::helpers::credit_code;

#[actix_web::test]
async fn the_transcript_recomputes_the_evaluation_and_names_any_alteration() {
    let p = Panel::at(Stage::Awarded).await;
    let tr = p.transcript().await;
    let outcome: EvalOutcome =
        serde_json::from_value(p.finished["report"]["outcome"].clone()).unwrap();
    let e = kaibiao::transcript::verify(&tr)
        .unwrap()
        .evaluation
        .expect("the evaluation is verified");
    assert_eq!(e.committee, 5);
    assert_eq!(e.candidates, outcome.candidates);
    assert_eq!((e.dissents, e.deemed_agreed), (1, 1));
    assert_eq!(
        e.awarded.as_deref(),
        Some(outcome.ranking[0].bidder.as_str())
    );
    let broken = |f: &dyn Fn(&mut EvaluationExtract)| {
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
    // Another seed, another pool, another draw.
    let err = broken(&|x| x.seed = "00".repeat(32));
    assert!(err.contains("not the mix"), "{err}");
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
        x.centres.retain(|c| c.centre.code != home);
    });
    assert!(
        err.contains("took part in the draw but its registration is not in the transcript"),
        "{err}"
    );
    // A reserve on standby claimed as declined, a pass put on a reserve:
    // the seats' logged history says otherwise.
    let err = broken(&|x| {
        let s = x.seats.iter_mut().find(|s| s.status == "standby").unwrap();
        s.status = "declined".into();
    });
    assert!(err.contains("the log's history leaves it standby"), "{err}");
    let err = broken(&|x| {
        let p = x.seats.iter().find_map(|s| s.pass.clone());
        x.seats
            .iter_mut()
            .find(|s| s.status == "standby")
            .unwrap()
            .pass = p;
    });
    assert!(
        err.contains("differs from the one its admission logged"),
        "{err}"
    );
    // Every list is written one way: an entry listed twice is refused.
    let err = broken(&|x| x.scores.push(x.scores[0].clone()));
    assert!(
        err.contains("scores:") && err.contains("listed twice"),
        "{err}"
    );
    let err = broken(&|x| x.votes.push(x.votes[0].clone()));
    assert!(
        err.contains("reviews:") && err.contains("listed twice"),
        "{err}"
    );
    let err = broken(&|x| x.seats.push(x.seats[0].clone()));
    assert!(
        err.contains("seats:") && err.contains("listed twice"),
        "{err}"
    );
    let err = broken(&|x| x.centres.push(x.centres[0].clone()));
    assert!(
        err.contains("centres:") && err.contains("listed twice"),
        "{err}"
    );
    // Hex has one spelling: the seed in upper case is not the seed.
    let err = broken(&|x| x.platform_seed = x.platform_seed.to_uppercase());
    assert!(err.contains("not 32 bytes of lower-case hex"), "{err}");
    let err = broken(&|x| x.seed = x.seed.to_uppercase());
    assert!(err.contains("not the mix"), "{err}");
    // The evaluation withheld although the log publishes a result.
    let mut t = tr.clone();
    t.evaluation = None;
    assert!(kaibiao::transcript::verify(&t)
        .unwrap_err()
        .contains("omits the evaluation"));
    p.stop().await;
}

/// The panel's own record — a recusal, an outlier confirmation, a question
/// answered and one not — is in the transcript whole, each statement signed
/// and held by the log; `kaibiao verify` re-checks them, and names any one
/// altered, dropped or missing.
#[actix_web::test]
async fn the_panels_record_is_in_the_transcript_and_re_checked() {
    let mut p = Panel::at(Stage::Reviewing).await;
    let (m0, m1) = (p.members[0].clone(), p.members[1].clone());
    let unanswered = p.post("clarifications", p.ask(&m0, 10)).await.expect(200);
    let asked = p.post("clarifications", p.ask(&m1, 10)).await.expect(200);
    let id = asked["id"].as_str().unwrap().to_string();
    p.send_answer(0, &id, p.clarify(0, &id, "按省定额计取。"))
        .await
        .expect(200);
    // A member recuses before reviewing; the reserve takes the seat.
    let gone = p.members[4].clone();
    p.recuse(&gone, "与投标人存在利害关系").await;
    p.members.retain(|m| *m != gone);
    p.keys.remove(&gone);
    p.qualify_all().await;
    // Member 0 scores bid 0 far below the others, and confirms it.
    for m in p.members.clone() {
        for (i, b) in p.bids.clone().iter().enumerate() {
            let tech = if m == m0 && i == 0 { "10" } else { "40" };
            p.post("scores", p.sheet(&m, b, tech)).await.expect(200);
        }
    }
    assert_eq!(p.host_post("finish").await.expect(200)["phase"], "scoring");
    p.post(
        "outliers",
        p.confirm_outlier(&m0, "技术方案未响应主要参数。"),
    )
    .await
    .expect(200);
    let done = p.host_post("finish").await.expect(200);
    assert_eq!(done["phase"], "signing", "{done}");
    let hash = done["report_hash"].as_str().unwrap().to_string();
    for m in p.members.clone() {
        p.post("report/signatures", p.report(&m, &hash, true, None))
            .await
            .expect(200);
    }
    p.host_post("publish").await.expect(200);

    let tr = p.transcript().await;
    let e = kaibiao::transcript::verify(&tr)
        .unwrap()
        .evaluation
        .unwrap();
    assert_eq!(
        (e.recusals, e.outlier_confirmations, e.clarifications),
        (1, 1, 2)
    );
    let x = tr.evaluation.as_ref().unwrap();
    assert!(x
        .clarifications
        .iter()
        .any(|c| c.id == unanswered["id"].as_str().unwrap() && c.answer.is_none()));
    // Not one of the panel's leaves can be dropped unnoticed.
    let kinds = crate::completeness::every_omission_is_rejected(&tr);
    for k in [
        "evaluation.expert_confirmed",
        "evaluation.expert_admitted",
        "evaluation.expert_recused",
        "evaluation.outlier_confirmed",
        "evaluation.clarification_asked",
        "evaluation.clarification_answered",
    ] {
        assert!(kinds.contains(k), "no {k} leaf was tried: {kinds:?}");
    }
    let broken = |f: &dyn Fn(&mut EvaluationExtract)| {
        let mut t = tr.clone();
        f(t.evaluation.as_mut().unwrap());
        kaibiao::transcript::verify(&t).unwrap_err()
    };
    let reworded = |text: &str, key: &str, to: &str| {
        let mut v: Value = serde_json::from_str(text).unwrap();
        v[key] = json!(to);
        String::from_utf8(kaibiao::crypto::jcs::canonicalize(&v).unwrap()).unwrap()
    };
    // A recusal's reason rewritten, or the recusal dropped.
    let err = broken(&|x| {
        x.recusals[0].statement = reworded(&x.recusals[0].statement, "reason", "个人原因")
    });
    assert!(
        err.contains("recusal 0") && err.contains("signature"),
        "{err}"
    );
    let err = broken(&|x| x.recusals.clear());
    assert!(err.contains("the log records 1 recusals"), "{err}");
    // The outlier's confirmation reworded, or dropped.
    let err = broken(&|x| {
        let o = &mut x.outlier_confirmations[0];
        o.statement = reworded(&o.statement, "reason", "无");
    });
    assert!(err.contains("outlier confirmation 0"), "{err}");
    let err = broken(&|x| x.outlier_confirmations.clear());
    assert!(err.contains("outlier confirmations"), "{err}");
    // A question or an answer altered, an answer withheld.
    let err = broken(&|x| {
        let c = &mut x.clarifications[0];
        c.question.statement = reworded(&c.question.statement, "question", "别的问题");
    });
    assert!(
        err.contains("clarification") && err.contains("signature"),
        "{err}"
    );
    let err = broken(&|x| {
        let c = x
            .clarifications
            .iter_mut()
            .find(|c| c.answer.is_some())
            .unwrap();
        let a = c.answer.as_mut().unwrap();
        a.statement = reworded(&a.statement, "answer", "不按定额计取。");
    });
    assert!(err.contains("not signed by the bidder"), "{err}");
    let err = broken(&|x| {
        for c in &mut x.clarifications {
            c.answer = None;
        }
    });
    assert!(err.contains("disagree on the clarifications"), "{err}");
    p.stop().await;
}

/// Everything signed again as a platform holding none of the real keys
/// would: fresh centre keys in the transcript's list, every pass re-issued
/// with them to fresh expert keys, every statement signed again with those.
fn re_signed(
    tr: &kaibiao::transcript::Transcript,
    centre_keys: Option<&BTreeMap<&str, SigningKey>>,
) -> kaibiao::transcript::Transcript {
    let mut t = tr.clone();
    let x = t.evaluation.as_mut().unwrap();
    let mut fresh_centres: BTreeMap<String, SigningKey> = BTreeMap::new();
    for e in &mut x.centres {
        let code = e.centre.code.clone();
        let k = match centre_keys {
            Some(real) if real.contains_key(code.as_str()) => real[code.as_str()].clone(),
            _ => sign::generate(),
        };
        e.centre = Centre::signed(&code, &e.centre.name, &k);
        fresh_centres.insert(code, k);
    }
    let mut experts: BTreeMap<String, SigningKey> = BTreeMap::new();
    for s in &mut x.seats {
        if let Some(p) = &mut s.pass {
            let ek = sign::generate();
            let mut body = p.pass.clone();
            body.expert_key = hex::encode(ek.verifying_key().as_bytes());
            *p = pass::issue(&fresh_centres[&body.centre], body);
            experts.insert(s.expert_id.clone(), ek);
        }
    }
    let resign = |st: &mut SignedText, label: &str| {
        let v: Value = serde_json::from_str(&st.statement).unwrap();
        let k = &experts[v["expert_id"].as_str().unwrap()];
        st.signature = hex::encode(sign::sign(k, label, st.statement.as_bytes()));
    };
    x.votes.iter_mut().for_each(|v| resign(v, VOTE_LABEL));
    x.scores.iter_mut().for_each(|v| resign(v, SCORE_LABEL));
    for r in &mut x.report_signatures {
        if let (Some(st), Some(sig)) = (&r.statement, &mut r.signature) {
            *sig = hex::encode(sign::sign(
                &experts[&r.expert_id],
                REPORT_LABEL,
                st.as_bytes(),
            ));
        }
    }
    for c in &mut x.contributions {
        if let Some(code) = seed::party_centre(&c.party) {
            let k = &fresh_centres[code];
            c.key = hex::encode(k.verifying_key().as_bytes());
            c.commitment.signature = hex::encode(sign::sign(
                k,
                seed::CONTRIBUTION_LABEL,
                c.commitment.statement.as_bytes(),
            ));
        }
    }
    t
}

#[actix_web::test]
async fn the_centres_keys_are_anchored_in_the_log_and_held_to_pins_from_outside() {
    let p = Panel::at(Stage::Publicity).await;
    let tr = p.transcript().await;
    let svc = p.app().services();
    let host_code = svc.config.evaluation.centre_code.clone();
    let host = svc.centre_key.verifying_key();
    // The host centre signs its passes with its own key, not the platform's.
    assert_ne!(host, svc.platform_key.verifying_key());
    let fpr = |k: &ed25519_dalek::VerifyingKey| kaibiao::crypto::sha256_hex(k.as_bytes());
    let mut pins: BTreeMap<String, String> = p
        .centre_keys
        .iter()
        .map(|(c, k)| (c.to_string(), fpr(&k.verifying_key())))
        .collect();
    let x = tr.evaluation.as_ref().unwrap();
    let n = kaibiao::transcript::check_pins(&tr, &pins).unwrap();
    assert_eq!(n, x.request.centres.len());
    // A pin for a centre the draw did not draw from is no obstacle.
    pins.insert(host_code.clone(), fpr(&host));
    kaibiao::transcript::check_pins(&tr, &pins).unwrap();
    // A transcript re-signed with fresh centre keys fails the pins.
    let err = kaibiao::transcript::check_pins(&re_signed(&tr, None), &pins).unwrap_err();
    assert!(err.contains("is not the pinned one"), "{err}");
    // Every centre the draw drew from must be pinned.
    let mut partial = pins.clone();
    partial.remove("ZH-GGZY");
    let err = kaibiao::transcript::check_pins(&tr, &partial).unwrap_err();
    assert!(
        err.contains("centre ZH-GGZY took part in the draw but no pin"),
        "{err}"
    );
    // Another key listed for the host centre than the one registered: the
    // registration is the centre's own signature, and its leaf names it.
    let host_listed = |f: &dyn Fn(&mut kaibiao::transcript::evaluation::CentreEntry)| {
        let mut bad = tr.clone();
        let e = bad
            .evaluation
            .as_mut()
            .unwrap()
            .centres
            .iter_mut()
            .find(|e| e.centre.code == host_code)
            .unwrap();
        f(e);
        kaibiao::transcript::verify(&bad).unwrap_err()
    };
    let err = host_listed(&|e| {
        e.centre.public_key = hex::encode(sign::generate().verifying_key().as_bytes());
    });
    assert!(err.contains("not signed by the centre's key"), "{err}");
    let err = host_listed(&|e| {
        e.centre = Centre::signed(&e.centre.code, &e.centre.name, &sign::generate());
    });
    assert!(
        err.contains(&format!("centre {host_code}: log entry"))
            && err.contains("is not its centre.registered leaf"),
        "{err}"
    );
    p.stop().await;
}

#[actix_web::test]
async fn a_transcript_re_signed_with_fresh_centre_and_expert_keys_is_rejected() {
    let p = Panel::at(Stage::Publicity).await;
    let tr = p.transcript().await;
    kaibiao::transcript::verify(&tr).unwrap();
    // Fresh centre keys, each registration signed again with its fresh key:
    // the log took the centres' own registrations before the draw.
    let err = kaibiao::transcript::verify(&re_signed(&tr, None)).unwrap_err();
    assert!(err.contains("is not its centre.registered leaf"), "{err}");
    // The partners' real keys, a fresh one for the host centre.
    let host_code = p.app().services().config.evaluation.centre_code.clone();
    let err = kaibiao::transcript::verify(&re_signed(&tr, Some(&p.centre_keys))).unwrap_err();
    assert!(
        err.contains(&format!("centre {host_code}: log entry"))
            && err.contains("is not its centre.registered leaf"),
        "{err}"
    );
    // Every centre's real key but fresh expert keys (passes issued again):
    // the log holds the hash of each pass the room admitted.
    let mut real = p.centre_keys.clone();
    real.insert(
        host_code.as_str(),
        p.app().services().centre_key.as_ref().clone(),
    );
    let err = kaibiao::transcript::verify(&re_signed(&tr, Some(&real))).unwrap_err();
    assert!(
        err.contains("differs from the one its admission logged"),
        "{err}"
    );
    p.stop().await;
}
