//! Confirmations (确认) of the announced record: each bidder signs the
//! record's hash after checking its own line; an objection (异议) holds the
//! objecting bidder and the close until the host answers it, once; the
//! bidder who says nothing is taken as accepting when the host closes.

use kaibiao::crypto::opening::Closing;
use serde_json::{json, Value};

use crate::fixture::{Fixture, Phase};

#[actix_web::test]
async fn a_bidder_confirms_its_own_line_once_and_never_a_stale_record_or_someone_elses() {
    let fx = Fixture::new().at(Phase::Confirming).await;
    let s = &fx.section;
    let stale = fx
        .bidder(0)
        .post::<Value>(
            &format!("/api/sections/{s}/opening/confirmations"),
            &json!({"record_hash": "00".repeat(32), "signature": "00".repeat(64)}),
        )
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Some("conflict"), "{stale}");
    fx.confirm(0, true).await.unwrap();
    // Someone else's line as ours: the client refuses to confirm.
    let refused = fx
        .bidder(0)
        .confirm(s, &fx.org(0), &fx.keys[0].signing, Some(&fx.own_line(1)))
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("differently"), "{refused}");
    let again = fx.confirm(0, false).await.unwrap_err();
    assert_eq!(again.code(), Some("conflict"));
    fx.app.stop().await;
}

#[actix_web::test]
async fn an_objection_holds_the_close_until_the_host_answers_it_once() {
    let fx = Fixture::new().at(Phase::Confirming).await;
    let s = &fx.section;
    let obj = fx
        .bidder(1)
        .object(s, "我公司报价应为 5100000.00 元，请核实。")
        .await
        .unwrap();
    let obj_id = obj["id"].as_str().unwrap().to_string();
    let early_close = fx.host().close_opening(s).await.unwrap_err();
    assert_eq!(early_close.code(), Some("invalid_transition"));
    let waiting = fx.confirm(1, false).await.unwrap_err();
    assert_eq!(waiting.code(), Some("invalid_transition"));
    // A bidder cannot answer; the host answers once.
    let not_host = fx
        .bidder(0)
        .post::<Value>(
            &format!("/api/sections/{s}/opening/objections/{obj_id}/answer"),
            &json!({"text": "x"}),
        )
        .await
        .unwrap_err();
    assert_eq!(not_host.code(), Some("forbidden"));
    fx.host()
        .answer(
            s,
            &obj_id,
            "经核对解密结果，报价为 5100000.00 元，与记录一致。",
        )
        .await
        .unwrap();
    let twice = fx.host().answer(s, &obj_id, "again").await.unwrap_err();
    assert_eq!(twice.code(), Some("conflict"));
    fx.confirm(1, true).await.unwrap();
    fx.app.stop().await;
}

#[actix_web::test]
async fn the_close_takes_a_silent_bidder_as_accepting_and_ends_the_confirmations() {
    let fx = Fixture::new().at(Phase::Confirming).await;
    let closed = fx.confirm_object_and_close().await;
    let closing: Closing = serde_json::from_value(closed["closing"].clone()).unwrap();
    assert_eq!(closing.no_response, vec![fx.org(2)]);
    assert_eq!(closing.confirmations.len(), 2);
    assert_eq!(closing.objections.len(), 1);
    let late = fx.confirm(2, false).await.unwrap_err();
    assert_eq!(late.code(), Some("invalid_transition"));
    fx.app.stop().await;
}
