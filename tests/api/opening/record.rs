//! The signed opening record (开标记录): countersigned by the section's own
//! supervisor with its registered key only, then served as JSON with every
//! signature and as a printable page.

use kaibiao::crypto::opening::Closing;
use kaibiao::crypto::sign;

use super::PRICES;
use crate::fixture::{event_kinds, events_until, Fixture, Phase};

#[actix_web::test]
async fn only_the_sections_supervisor_countersigns_and_with_its_registered_key() {
    let fx = Fixture::new().at(Phase::Confirming).await;
    let s = &fx.section;
    let mut bidder0 = fx.watch(Some(&fx.w.bidders[0].token), 0).await;
    fx.confirm_object_and_close().await;
    let wrong = fx
        .client(&fx.w.supervisor)
        .countersign(s, &sign::generate())
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Some("proof_invalid"));
    let other = fx
        .client(&fx.w.supervisor_b)
        .countersign(s, &fx.supervisor_key)
        .await
        .unwrap_err();
    assert_eq!(other.code(), Some("forbidden"));
    fx.client(&fx.w.supervisor)
        .countersign(s, &fx.supervisor_key)
        .await
        .unwrap();
    let frames = events_until(&mut bidder0, "opening.countersigned").await;
    assert!(event_kinds(&frames).contains(&"opening.objection".to_string()));
    fx.wait_phase("evaluating").await;
    fx.app.stop().await;
}

#[actix_web::test]
async fn the_record_carries_every_signature_and_prints() {
    let fx = Fixture::new()
        .min_bidders(3)
        .prices(&PRICES)
        .at(Phase::Evaluating)
        .await;
    let s = &fx.section;
    let r = fx.bidder(0).opening_record(s).await.unwrap();
    let platform = fx.bidder(0).platform_key().await.unwrap();
    let closing: Closing = serde_json::from_value(r["closing"].clone()).unwrap();
    assert!(closing.verify_platform(&platform, r["platform_signature"].as_str().unwrap()));
    assert!(closing.verify_countersignature(
        r["supervisor_key"].as_str().unwrap(),
        r["countersignature"].as_str().unwrap()
    ));
    let page = fx
        .app
        .get(
            &format!("/api/public/sections/{s}/opening-record.html"),
            None,
        )
        .await;
    assert_eq!(page.status, 200);
    let html = page.text();
    assert!(
        html.contains("开标记录")
            && html.contains("9876543.21")
            && html.contains("投标企业0有限公司")
    );
    fx.app.stop().await;
}
