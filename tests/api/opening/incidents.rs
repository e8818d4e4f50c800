//! Platform faults (平台故障): the host declares one naming the bidders it
//! affected, the window stops, the supervisor countersigns the ruling; the
//! affected bid is withdrawn (撤回) without fault in bidders' mode, or
//! opened by the custodians' escrow quorum in escrow mode.

use std::time::Duration;

use kaibiao::crypto::opening::{IncidentRuling, INCIDENT_FORMAT};
use kaibiao::crypto::sign;
use serde_json::{json, Value};

use crate::fixture::{events_until, kind, Fixture, Phase};

#[actix_web::test]
async fn a_countersigned_platform_fault_withdraws_the_bid_in_bidders_mode() {
    let fx = Fixture::new().mode("bidders").at(Phase::Decrypting).await;
    let s = &fx.section;
    for i in 0..2 {
        fx.decrypt_own(i).await.unwrap();
    }
    // The host declares a fault affecting bidder 2: the clock stops.
    let bad_bidder = fx
        .host()
        .declare_incident(s, "CA 证书服务中断", &["org_nobody".to_string()])
        .await
        .unwrap_err();
    assert_eq!(bad_bidder.code(), Some("validation_failed"));
    let not_host = fx
        .bidder(0)
        .post::<Value>(
            &format!("/api/sections/{s}/opening/incidents"),
            &json!({"reason": "x"}),
        )
        .await
        .unwrap_err();
    assert_eq!(not_host.code(), Some("forbidden"));
    let inc = fx
        .host()
        .declare_incident(s, "CA 证书服务中断，投标人无法解密", &[fx.org(2)])
        .await
        .unwrap();
    let ruling: IncidentRuling = serde_json::from_value(inc["ruling"].clone()).unwrap();
    assert_eq!(ruling.format, INCIDENT_FORMAT);
    let paused = fx.state(None).await;
    assert!(paused["state"]["window"]["paused_since_ms"].is_i64());
    // While paused the window does not close, however long.
    fx.app.advance(chrono::Duration::hours(2));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(fx.phase().await, "decrypting");
    // A countersignature by the wrong key, then by the supervisor's.
    let wrong = fx
        .client(&fx.w.supervisor)
        .countersign_incident(s, &ruling, &sign::generate())
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Some("proof_invalid"));
    fx.client(&fx.w.supervisor)
        .countersign_incident(s, &ruling, &fx.supervisor_key)
        .await
        .unwrap();
    // Resumed, the window gets back the paused time; it then runs out.
    let resumed = fx.host().resume(s).await.unwrap();
    let ends = resumed["window_ends_at_ms"].as_i64().unwrap();
    assert!(ends > fx.app.now().millis() + 20 * 60_000, "{resumed}");
    fx.app.advance(chrono::Duration::minutes(31));
    fx.wait_phase("confirming").await;
    let r = fx.bidder(0).opening_record(s).await.unwrap();
    let b2 = r["record"]["bids"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["bidder"] == fx.org(2).as_str())
        .unwrap()
        .clone();
    assert_eq!(b2["status"], "withdrawn", "{b2}");
    assert_eq!(b2["fault"], "platform");
    fx.app.stop().await;
}

#[actix_web::test]
async fn in_escrow_mode_the_custodians_open_what_a_platform_fault_left_undecrypted() {
    let fx = Fixture::new()
        .mode("bidders_with_escrow")
        .min_bidders(3)
        .at(Phase::Decrypting)
        .await;
    let s = &fx.section;
    // No fault recorded yet: custodian keys are not wanted.
    let early = fx.release(0).await.unwrap_err();
    assert_eq!(early.code(), Some("invalid_transition"));
    for i in 0..2 {
        fx.decrypt_own(i).await.unwrap();
    }
    let inc = fx
        .host()
        .declare_incident(s, "平台解密服务故障", &[fx.org(2)])
        .await
        .unwrap();
    let ruling: IncidentRuling = serde_json::from_value(inc["ruling"].clone()).unwrap();
    fx.client(&fx.w.supervisor)
        .countersign_incident(s, &ruling, &fx.supervisor_key)
        .await
        .unwrap();
    fx.host().resume(s).await.unwrap();
    fx.app.advance(chrono::Duration::minutes(31));
    // The window closed; bidder 2's bid waits for the custodians.
    let mut public = fx.watch(None, 0).await;
    events_until(&mut public, "opening.window_closed").await;
    assert_eq!(fx.phase().await, "decrypting");
    for i in [1, 3, 4] {
        fx.release(i).await.unwrap();
    }
    let frames = events_until(&mut public, "opening.announced").await;
    let settled = frames
        .iter()
        .find(|f| kind(f) == "opening.bid_settled" && f["data"]["bidder"] == fx.org(2).as_str())
        .unwrap();
    assert_eq!(settled["data"]["status"], "decrypted");
    assert_eq!(settled["data"]["via"], "escrow");
    fx.wait_phase("confirming").await;
    // Two bids opened by their bidders, one by the custodians' keys: the
    // transcript re-derives all three, and the closing statement lists the
    // upheld incident with the time the log gave it.
    fx.confirm_object_and_close().await;
    let (t, summary) = fx.verified().await;
    let o = summary.opening.unwrap();
    assert_eq!(
        (o.decrypted, o.key_releases, o.closed),
        (3, 3, true),
        "{o:?}"
    );
    let closing = t.opening.as_ref().unwrap().closing.as_ref().unwrap();
    assert_eq!(closing.incidents.len(), 1);
    assert!(closing.incidents[0].countersigned);
    assert_eq!(closing.no_response, vec![fx.org(2).to_string()]);
    // Not one of its leaves can be dropped unnoticed.
    let kinds = crate::completeness::every_omission_is_rejected(&t);
    for k in [
        "opening.incident",
        "opening.incident_countersigned",
        "opening.resumed",
        "opening.window_closed",
        "opening.bid_settled",
        "opening.confirmed",
        "opening.objection",
        "opening.answered",
        "opening.closed",
    ] {
        assert!(kinds.contains(k), "no {k} leaf was tried: {kinds:?}");
    }
    fx.app.stop().await;
}
