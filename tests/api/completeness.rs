//! Nothing can vanish from a transcript (ADR 8): every leaf of a section is
//! chained to the one before by a tag keyed by the section's chain key, and
//! the platform's signed head closes the chain. A transcript without any one
//! leaf — of any kind the section has — is rejected, and so is one without
//! a whole bidder that bid and withdrew, or without its last leaves.

use std::collections::BTreeSet;

use kaibiao::transcript::{verify, Transcript};

use crate::bids::{post_envelope, sealed, setup, submit};
use crate::evaluation::{Panel, Stage};

/// The transcript without log entry `i` and what points at it (its opening,
/// its late attempt), as someone hiding that leaf would write it.
fn without_entry(t: &Transcript, i: usize) -> Transcript {
    let mut x = t.clone();
    let index = x.log.entries.remove(i).index;
    x.openings.retain(|o| o.index != index);
    x.late_attempts.retain(|l| l.index != index);
    x
}

/// Every leaf of `t`, dropped in turn, is noticed; returns the kinds of
/// leaf that were tried. The tests that build the rarer leaves (incidents,
/// withheld values, recusals, clarifications) call it on theirs too.
pub fn every_omission_is_rejected(t: &Transcript) -> BTreeSet<String> {
    let mut kinds = BTreeSet::new();
    assert!(verify(t).is_ok(), "the whole transcript verifies");
    for (i, e) in t.log.entries.iter().enumerate() {
        let kind = e.leaf["type"].as_str().unwrap().to_string();
        let err = verify(&without_entry(t, i))
            .err()
            .unwrap_or_else(|| panic!("dropping the {kind} leaf at {} went unnoticed", e.index));
        assert!(!err.is_empty());
        kinds.insert(kind);
    }
    kinds
}

#[actix_web::test]
async fn a_transcript_without_any_leaf_of_its_bidding_is_rejected() {
    let t = setup(|_| {}).await;
    let (app, w, s) = (&t.app, &t.w, t.section.as_str());
    // Bidder 0 bids; bidder 1 bids and revises; bidder 2 bids and withdraws.
    let (d0, _) = t.seal(0, "10000000.00", b"docs 0").await;
    submit(app, w, &w.bidders[0], &d0).await.unwrap();
    let (d1, _) = t.seal(1, "11000000.00", b"docs 1").await;
    submit(app, w, &w.bidders[1], &d1).await.unwrap();
    let (d2, h2) = t.seal(2, "9000000.00", b"docs 2").await;
    submit(app, w, &w.bidders[2], &d2).await.unwrap();
    w.client(app, &w.bidders[2])
        .withdraw(&d2, &t.keys[2].signing, app.now().millis())
        .await
        .unwrap();
    // A late envelope, at the deadline itself.
    let d = crate::bids::deadline(app, s).await;
    app.fixed_clock().set(d);
    let (late, _) = t.seal(0, "8000000.00", b"late").await;
    post_envelope(app, &w.bidders[0].token, &late)
        .await
        .expect_error(409, "deadline_passed");
    sealed(app, s).await;
    let tr = crate::bids::transcript(app, s).await;
    let summary = verify(&tr).unwrap();
    assert_eq!((summary.accepted, summary.late_attempts), (2, 1));

    let kinds = every_omission_is_rejected(&tr);
    for k in [
        "section.published",
        "custodian.key",
        "commitment",
        "bid.late",
        "section.manifest",
        "section.failed",
    ] {
        assert!(kinds.contains(k), "no {k} leaf was tried: {kinds:?}");
    }

    // The late attempt hidden cleanly — its leaf and its line — is a gap in
    // the chain, not "another section's leaf".
    let i = tr
        .log
        .entries
        .iter()
        .position(|e| e.leaf["type"] == "bid.late")
        .unwrap();
    let e = verify(&without_entry(&tr, i)).unwrap_err();
    assert!(e.contains("the section's log is not complete"), "{e}");

    // So is the bidder that bid and withdrew, removed whole: its envelope,
    // its keys, its openings and their leaves.
    let mut x = tr.clone();
    let gone = w.bidders[2].org_id.clone().unwrap();
    let indices: BTreeSet<u64> = x
        .openings
        .iter()
        .filter(|o| o.opening.event["bidder"] == gone.as_str())
        .map(|o| o.index)
        .collect();
    assert_eq!(indices.len(), 2, "a submission and a withdrawal");
    x.openings.retain(|o| !indices.contains(&o.index));
    x.log.entries.retain(|e| !indices.contains(&e.index));
    x.bids.retain(|b| b.envelope_hash != h2);
    x.bidder_keys.retain(|k| k.bidder != gone);
    let e = verify(&x).unwrap_err();
    assert!(e.contains("the section's log is not complete"), "{e}");

    // A head the platform did not sign closes nothing.
    let mut x = tr.clone();
    x.log.head.signature = "00".repeat(64);
    let e = verify(&x).unwrap_err();
    assert!(e.contains("section head's signature"), "{e}");
    t.app.stop().await;
}

#[actix_web::test]
async fn a_transcript_without_any_leaf_of_its_opening_or_evaluation_is_rejected() {
    let p = Panel::at(Stage::Awarded).await;
    let tr = p.transcript().await;
    verify(&tr).unwrap();
    let kinds = every_omission_is_rejected(&tr);
    for k in [
        "opening.started",
        "opening.key_released",
        "opening.announced",
        "evaluation.contribution_committed",
        "evaluation.draw_requested",
        "evaluation.contribution_revealed",
        "evaluation.committee_drawn",
        "evaluation.report",
        "evaluation.published",
        "evaluation.awarded",
    ] {
        assert!(kinds.contains(k), "no {k} leaf was tried: {kinds:?}");
    }
    // The last leaves cut off: the chain that is left is whole, but shorter
    // than the head the platform signed.
    let mut x = tr.clone();
    x.log.entries.pop();
    let e = verify(&x).unwrap_err();
    assert!(e.contains("the section's log is not complete"), "{e}");
    assert!(e.contains("the signed head at leaf"), "{e}");
    // A leaf moved: the chain breaks where it no longer follows.
    let mut x = tr.clone();
    let n = x.log.entries.len();
    let (a, b) = (
        x.log.entries[n - 2].leaf.clone(),
        x.log.entries[n - 1].leaf.clone(),
    );
    x.log.entries[n - 2].leaf = b;
    x.log.entries[n - 1].leaf = a;
    assert!(verify(&x).is_err());
    // A head for another checkpoint is refused even with a good signature.
    let mut x = tr.clone();
    x.log.head.head.log_size -= 1;
    assert!(verify(&x).is_err());
    p.stop().await;
}
