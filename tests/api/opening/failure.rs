//! Too few bids (流标): fewer bids than `min_bidders` at the deadline fail
//! the section without an opening, and the registered bidders are told.

use serde_json::json;

use crate::fixture::{event_kinds, events_until, Fixture, Phase};

#[actix_web::test]
async fn fewer_bids_than_min_bidders_fail_the_section_and_registered_bidders_are_told() {
    let fx = Fixture::new()
        .min_bidders(3)
        .prices(&[Some("5000000.00"), Some("5100000.00")])
        .at(Phase::Bidding)
        .await;
    // Bidder 0 registered for the section (获取招标文件) and gets the notice.
    fx.app
        .post(
            &format!("/api/sections/{}/registration", fx.section),
            Some(&fx.w.bidders[0].token),
            json!({}),
        )
        .await
        .expect(200);
    let mut public = fx.watch(None, 0).await;
    fx.pass_deadline().await;
    let frames = events_until(&mut public, "section.failed").await;
    let failed = frames.last().unwrap();
    assert_eq!(failed["data"]["reason"], "too_few_bids");
    assert_eq!(failed["data"]["bids"], 2);
    assert!(!event_kinds(&frames).contains(&"opening.started".to_string()));
    fx.wait_phase("failed").await;
    fx.app.wait_for_mail(&fx.w.bidders[0].email, "流标").await;
    let refused = fx.release(0).await.unwrap_err();
    assert_eq!(refused.code(), Some("invalid_transition"));
    fx.app.stop().await;
}
