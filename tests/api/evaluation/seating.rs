//! Seating the committee: an expert who declines — or does not answer in
//! time — is replaced by the next reserve, and its link dies.

use super::{calls, draw_body, pool_csv, token_in, Panel, Stage};

#[actix_web::test]
async fn a_declining_expert_is_replaced_by_a_reserve_and_its_link_dies() {
    let p = Panel::at(Stage::Drawn).await;
    let called = p.calls(5).await;
    let (decliner, mail) = called[0].clone();
    let r = p.answer(&token_in(&mail), false).await.expect(200);
    assert_eq!(r["reserve_called"], true);
    p.answer(&token_in(&mail), true)
        .await
        .expect_error(422, "token_invalid");
    p.answer("kbx_forged", true)
        .await
        .expect_error(422, "token_invalid");
    let called = p.calls(6).await;
    for (id, mail) in &called {
        if *id != decliner {
            p.answer(&token_in(mail), true).await.expect(200);
        }
    }
    let status = p.status().await;
    assert_eq!(status["seats_missing"], 0);
    assert_eq!(status["phase"], "seating");
    p.stop().await;
}

/// A drawn expert who does not answer in time counts as declining: the
/// chronograph calls the next reserve, and the late answer is refused.
#[actix_web::test]
async fn a_no_show_is_replaced_by_the_next_reserve() {
    let p = Panel::at(Stage::Evaluating).await;
    let app = p.app();
    p.import(pool_csv(app, &p.fx.w).await).await;
    p.draw(draw_body(5, 1)).await.expect(200);
    let called = p.calls(5).await;
    for (_, mail) in &called[1..] {
        p.answer(&token_in(mail), true).await.expect(200);
    }
    // One millisecond before the time ends nothing happens…
    app.advance(chrono::Duration::hours(24) - chrono::Duration::milliseconds(1));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(calls(p.mails()).len(), 5);
    // …at its end the silent expert is replaced.
    app.advance(chrono::Duration::milliseconds(1));
    let now_called = p.calls(6).await;
    let status = p.status().await;
    assert_eq!(status["seats"]["civil"]["declined"], 1, "{status}");
    assert_eq!(status["seats"]["civil"]["called"], 1, "{status}");
    p.answer(&token_in(&called[0].1), true)
        .await
        .expect_error(422, "token_invalid");
    let reserve = now_called
        .iter()
        .find(|(id, _)| !called.iter().any(|(c, _)| c == id))
        .unwrap();
    p.answer(&token_in(&reserve.1), true).await.expect(200);
    assert_eq!(p.status().await["seats_missing"], 0);
    p.stop().await;
}
