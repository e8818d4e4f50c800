//! The evaluation in the transcript: `kaibiao verify` recomputes the draw
//! from the revealed seed and the pool snapshot, every score and the
//! ranking, and checks every pass and signature; any alteration is caught
//! and named, and withholding the evaluation is too.

use kaibiao::evaluation::scoring::EvalOutcome;
use kaibiao::transcript::evaluation::EvaluationExtract;
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
    let err = broken(&|x| x.seed = x.seed.to_uppercase());
    assert!(err.contains("not 32 bytes of hex"), "{err}");
    // The evaluation withheld although the log publishes a result.
    let mut t = tr.clone();
    t.evaluation = None;
    assert!(kaibiao::transcript::verify(&t)
        .unwrap_err()
        .contains("omits the evaluation"));
    p.stop().await;
}
