//! The qualification review (资格审查): every member signs a vote on every
//! bid; a bid a majority fails is rejected; a vote is given once; nothing
//! is scored before the review is decided.

use kaibiao::crypto::sign;
use kaibiao::service::evaluation::{sign_statement, VoteStatement, VOTE_LABEL};
use serde_json::{json, Value};

use super::{Panel, Stage, REJECTED};

#[actix_web::test]
async fn forged_silent_and_outsiders_votes_are_refused_and_scores_wait_for_the_review() {
    let p = Panel::at(Stage::Reviewing).await;
    let (m0, bid0) = (&p.members[0], &p.bids[0]);
    // A signature by another key.
    let mut bad = p.vote(m0, bid0, true);
    bad["signature"] = json!(sign_statement(
        &sign::generate(),
        VOTE_LABEL,
        &bad["statement"]
    ));
    p.post("votes", bad)
        .await
        .expect_error(422, "proof_invalid");
    // A fail without a reason.
    let mut silent = p.vote(m0, bid0, false);
    silent["statement"]["reason"] = Value::Null;
    let st: VoteStatement = serde_json::from_value(silent["statement"].clone()).unwrap();
    silent["signature"] = json!(sign_statement(&p.keys[m0], VOTE_LABEL, &st));
    p.post("votes", silent)
        .await
        .expect_error(422, "validation_failed");
    // A vote in a bidder's name.
    let st = VoteStatement {
        section_id: p.fx.section.clone(),
        expert_id: p.fx.org(0),
        bid: bid0.clone(),
        pass: true,
        reason: None,
    };
    let outsider =
        json!({"statement": st, "signature": sign_statement(&p.keys[m0], VOTE_LABEL, &st)});
    p.post("votes", outsider)
        .await
        .expect_error(422, "pass_rejected");
    // Scores before qualification is decided are refused.
    p.post("scores", p.score(m0, bid0, "tech", "40"))
        .await
        .expect_error(409, "invalid_transition");
    assert_eq!(p.status().await["phase"], "reviewing");
    p.stop().await;
}

#[actix_web::test]
async fn a_bid_failed_by_a_majority_is_rejected_and_a_given_vote_cannot_change() {
    let p = Panel::at(Stage::Reviewing).await;
    for (i, m) in p.members.iter().enumerate() {
        for (j, b) in p.bids.iter().enumerate() {
            let pass = j != REJECTED || i < 2;
            p.post("votes", p.vote(m, b, pass)).await.expect(200);
        }
    }
    // The same vote again is a repeat; a changed one is refused.
    let again = p
        .post("votes", p.vote(&p.members[0], &p.bids[0], true))
        .await
        .expect(200);
    assert_eq!(again["repeat"], true);
    p.post("votes", p.vote(&p.members[0], &p.bids[0], false))
        .await
        .expect_error(409, "conflict");
    assert_eq!(p.status().await["phase"], "scoring");
    // The rejected bid can no longer be scored.
    p.post(
        "scores",
        p.score(&p.members[0], &p.bids[REJECTED], "tech", "10"),
    )
    .await
    .expect_error(422, "validation_failed");
    p.stop().await;
}
