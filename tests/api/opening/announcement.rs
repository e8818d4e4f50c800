//! Custodians' mode: the deadline seals the section and opens the window;
//! the threshold of custodians' keys opens every bid, and every price
//! reaches everyone at once, in the announcement (唱标) — not a frame
//! before. The staff see who acted; the public never see a user.

use serde_json::Value;

use super::PRICES;
use crate::fixture::{event_kinds, events_until, kind, Fixture, Phase};

#[actix_web::test]
async fn the_deadline_seals_the_section_and_starts_the_opening_with_every_bid() {
    let fx = Fixture::new()
        .min_bidders(3)
        .prices(&PRICES)
        .at(Phase::Bidding)
        .await;
    let mut public = fx.watch(None, 0).await;
    let staff = fx.watch(Some(&fx.w.host.token), 0).await;
    let bidder0 = fx.watch(Some(&fx.w.bidders[0].token), 0).await;
    assert_eq!(public.hello["view"], "public");
    assert_eq!(staff.hello["view"], "staff");
    assert_eq!(bidder0.hello["me"]["role"], "bidder");
    let snap = public.next().await.unwrap().unwrap();
    assert_eq!(snap["type"], "snapshot");
    assert_eq!(snap["state"]["phase"], "published");

    // Before the deadline a custodian cannot release.
    let early = fx.release(0).await.unwrap_err();
    assert_eq!(early.code(), Some("invalid_transition"), "{early}");

    fx.pass_deadline().await;
    let frames = events_until(&mut public, "opening.started").await;
    let kinds = event_kinds(&frames);
    assert!(
        kinds.contains(&"section.sealed".to_string())
            && kinds.contains(&"section.manifest".to_string()),
        "{kinds:?}"
    );
    let started = frames.last().unwrap();
    assert_eq!(started["data"]["bids"].as_array().unwrap().len(), 3);
    fx.app.stop().await;
}

#[actix_web::test]
async fn the_threshold_of_keys_opens_every_bid_and_no_price_is_sent_before_the_announcement() {
    let fx = Fixture::new()
        .min_bidders(3)
        .prices(&PRICES)
        .at(Phase::Decrypting)
        .await;
    let mut public = fx.watch(None, 0).await;
    let mut staff = fx.watch(Some(&fx.w.host.token), 0).await;
    // Three of five custodians release; the third triggers the decryption.
    for i in 0..3 {
        let v = fx.release(i).await.unwrap();
        assert_eq!(v["released"], i + 1);
    }
    let frames = events_until(&mut public, "opening.confirming").await;
    let kinds = event_kinds(&frames);
    assert_eq!(
        kinds.iter().filter(|k| *k == "opening.bid_settled").count(),
        3,
        "{kinds:?}"
    );
    // No price reaches anyone before the announcement, and then all at once.
    let announced_at = frames
        .iter()
        .position(|f| kind(f) == "opening.announced")
        .unwrap();
    for f in &frames[..announced_at] {
        let t = f.to_string();
        assert!(
            !t.contains("9876543.21") && !t.contains("8800000.50"),
            "{t}"
        );
    }
    let record = &frames[announced_at]["data"]["record"];
    let prices: Vec<&str> = record["bids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["summary"]["price"].as_str().unwrap())
        .collect();
    for p in PRICES.iter().flatten() {
        assert!(prices.contains(p), "{prices:?}");
    }
    // Staff frames name who acted; public frames never carry a user.
    let public_text: String = frames.iter().map(|f| f.to_string()).collect();
    assert!(!public_text.contains("\"actor\"") && !public_text.contains("\"staff\""));
    let staff_frames = events_until(&mut staff, "opening.confirming").await;
    let released: Vec<&Value> = staff_frames
        .iter()
        .filter(|f| kind(f) == "opening.key_released")
        .collect();
    assert_eq!(released[0]["actor"], fx.w.custodians[0].person.id.as_str());
    assert_eq!(
        released[0]["data"]["staff"]["custodian"],
        fx.w.custodians[0].person.id.as_str()
    );
    fx.app.stop().await;
}
