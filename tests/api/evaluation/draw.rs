//! The draw (抽取): bad requests are refused and call nobody; a good one
//! commits to its seed, calls five clean experts — none in conflict with a
//! party, none unavailable — and tells the host only how many.

use serde_json::json;

use super::{calls, draw_body, pool_csv, Panel, Stage};

#[actix_web::test]
async fn bad_draw_requests_are_refused_and_call_nobody() {
    let p = Panel::at(Stage::Evaluating).await;
    let app = p.app();
    p.import(pool_csv(app, &p.fx.w).await).await;
    let e = p
        .draw(draw_body(4, 1))
        .await
        .expect_error(422, "validation_failed");
    assert!(e.to_string().contains("at least 5"), "{e}");
    let e = p
        .draw(draw_body(6, 1))
        .await
        .expect_error(422, "validation_failed");
    assert!(e.to_string().contains("odd number"), "{e}");
    let mut unknown = draw_body(5, 2);
    unknown["centres"] = json!(["GZ-GGZY", "XX-NOWHERE"]);
    let e = p.draw(unknown).await.expect_error(422, "validation_failed");
    assert!(e.to_string().contains("XX-NOWHERE"), "{e}");
    let e = p
        .draw(draw_body(9, 3))
        .await
        .expect_error(422, "validation_failed");
    assert!(
        e.to_string()
            .contains("\\\"civil\\\" needs 9 members and 3 reserves"),
        "{e}"
    );
    let path = p.path("draw");
    for who in [&p.fx.w.bidders[0].token, &p.fx.w.host_b.token] {
        app.post(&path, Some(who), draw_body(5, 2))
            .await
            .expect_error(403, "forbidden");
    }
    p.draw(json!({"requirements": "five"}))
        .await
        .expect_error(422, "validation_failed");
    app.raw(
        "POST",
        &path,
        Some(p.host()),
        "application/json",
        b"{\"requirements\": [".to_vec(),
    )
    .await
    .expect_error(400, "malformed_json");
    assert!(calls(p.mails()).is_empty());
    // Nothing was drawn: a good request is the first.
    p.draw(draw_body(5, 2)).await.expect(200);
    p.stop().await;
}

#[actix_web::test]
async fn the_draw_calls_five_clean_experts_once_and_keeps_the_committee_from_the_host() {
    let p = Panel::at(Stage::Evaluating).await;
    p.import(pool_csv(p.app(), &p.fx.w).await).await;
    let drawn = p.draw(draw_body(5, 2)).await.expect(200);
    assert_eq!(drawn["committee_size"], 5);
    assert_eq!(drawn["seats"]["civil"]["called"], 5);
    assert_eq!(drawn["seats"]["civil"]["standby"], 2);
    assert_eq!(drawn["seed_commitment"].as_str().unwrap().len(), 64);
    p.draw(draw_body(5, 2))
        .await
        .expect_error(409, "invalid_transition");
    // Nobody learns who was drawn from the host's view.
    let status = p.status().await;
    for i in 0..9 {
        assert!(!status.to_string().contains(&format!("x{i}@")), "{status}");
    }
    // Five call mails; nobody in conflict or unavailable among them.
    let called = p.calls(5).await;
    assert!(
        called.iter().all(|(id, _)| id.starts_with('X')),
        "{called:?}"
    );
    p.stop().await;
}
