//! Bidders' mode (投标人自行解密): each bidder decrypts its own bid with its
//! own key within the window, to the millisecond; a bid not decrypted in
//! time is revoked (撤销) as the bidder's fault, and its price never shown.

use kaibiao::domain::time::Timestamp;
use serde_json::{json, Value};

use crate::fixture::{events_until, kind, Fixture, Phase};

#[actix_web::test]
async fn wrong_keys_and_other_bidders_bids_are_refused_and_change_nothing() {
    let fx = Fixture::new().mode("bidders").at(Phase::Decrypting).await;
    let s = &fx.section;
    // No custodian key is needed (or accepted) in this mode.
    let refused = fx.release(0).await.unwrap_err();
    assert_eq!(refused.code(), Some("invalid_transition"), "{refused}");
    let hash1 = kaibiao::crypto::envelope::parse_signed(
        &serde_json::from_slice(
            &std::fs::read(fx.dirs[1].as_ref().unwrap().join("envelope.json")).unwrap(),
        )
        .unwrap(),
    )
    .unwrap()
    .1;
    let path = format!("/api/sections/{s}/opening/decryptions");
    let attempt = |i: usize, bmk: String| {
        let (c, path, hash1) = (fx.bidder(i), path.clone(), hash1.clone());
        async move {
            c.post::<Value>(&path, &json!({"envelope_hash": hash1, "bmk": bmk}))
                .await
                .unwrap_err()
        }
    };
    let other = attempt(0, "11".repeat(32)).await;
    assert_eq!(other.code(), Some("forbidden"), "{other}");
    let wrong = attempt(1, "11".repeat(32)).await;
    assert_eq!(wrong.code(), Some("key_rejected"), "{wrong}");
    let malformed = attempt(1, "xyz".into()).await;
    assert_eq!(malformed.code(), Some("validation_failed"));
    let st = fx.state(None).await;
    assert!(st["state"]["bids"]
        .as_array()
        .unwrap()
        .iter()
        .all(|b| b["status"] == "pending"));
    fx.app.stop().await;
}

#[actix_web::test]
async fn each_bidder_decrypts_its_own_bid_until_the_window_ends_and_a_late_one_is_revoked() {
    let fx = Fixture::new().mode("bidders").at(Phase::Decrypting).await;
    let mut public = fx.watch(None, 0).await;
    // Bidder 0 decrypts at once, bidder 1 a millisecond before the window
    // closes; bidder 2 comes exactly at its end, with the right key: late.
    let ends = fx.window_ends().await;
    assert_eq!(fx.decrypt_own(0).await.unwrap()["status"], "decrypted");
    fx.app.fixed_clock().set(Timestamp::from_millis(ends - 1));
    assert_eq!(fx.decrypt_own(1).await.unwrap()["status"], "decrypted");
    let again = fx.decrypt_own(0).await.unwrap_err();
    assert_eq!(again.code(), Some("conflict"));
    assert_eq!(
        fx.phase().await,
        "decrypting",
        "no price before the window closes"
    );
    fx.app.fixed_clock().set(Timestamp::from_millis(ends));
    let late = fx.decrypt_own(2).await.unwrap_err();
    assert_eq!(
        late.code(),
        Some("invalid_transition"),
        "late by 0 ms: {late}"
    );
    let frames = events_until(&mut public, "opening.announced").await;
    let settled: Vec<&Value> = frames
        .iter()
        .filter(|f| kind(f) == "opening.bid_settled")
        .collect();
    let last = settled.last().unwrap();
    assert_eq!(last["data"]["bidder"], fx.org(2).as_str());
    assert_eq!(last["data"]["status"], "revoked");
    assert_eq!(last["data"]["fault"], "bidder");
    let record = &frames.last().unwrap()["data"]["record"];
    let b2 = record["bids"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["bidder"] == fx.org(2).as_str())
        .unwrap();
    assert_eq!(
        b2["summary"],
        Value::Null,
        "a revoked bid's price is never shown"
    );
    fx.wait_phase("confirming").await;
    // The bidders' keys are published with the prices: the transcript
    // re-derives both results, and the revoked bid has none to show.
    let o = fx.verified().await.1.opening.unwrap();
    assert_eq!((o.decrypted, o.revoked, o.key_releases), (2, 1, 0));
    fx.app.stop().await;
}
