//! The publicity (公示) and the award (中标): a bidder's objection stops
//! the clock until the tenderer answers; when the publicity runs out the
//! section is awarded, the winner gets the award notice and the others the
//! result — by the file outbox and over a real SMTP conversation.

use serde_json::json;

use super::{Panel, Stage};
use crate::smtp::SmtpServer;

#[actix_web::test]
async fn an_objection_stops_the_publicity_until_the_tenderer_answers() {
    let p = Panel::at(Stage::Publicity).await;
    let (app, s) = (p.app(), &p.fx.section);
    let objections = format!("/api/sections/{s}/publicity/objections");
    let bidder2 = p.fx.w.bidders[2].token.as_str();
    let tenderer = p.fx.w.tenderer.token.as_str();
    app.post(&objections, Some(p.host()), json!({"text": "x"}))
        .await
        .expect_error(403, "forbidden");
    let objection = app
        .post(
            &objections,
            Some(bidder2),
            json!({"text": "我公司资格审查被否决的理由不成立，请复核。"}),
        )
        .await
        .expect(200);
    let oid = objection["id"].as_str().unwrap();
    // Paused: even past the original end, nothing is awarded.
    app.advance(chrono::Duration::days(4));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(p.result().await.expect(200)["phase"], "publicity");
    let answer = format!("/api/sections/{s}/publicity/objections/{oid}/answer");
    app.post(
        &answer,
        Some(&p.fx.w.bidders[0].token),
        json!({"text": "x"}),
    )
    .await
    .expect_error(403, "forbidden");
    let answered = app
        .post(
            &answer,
            Some(tenderer),
            json!({"text": "经复核，项目经理注册证书已过期，否决理由成立。"}),
        )
        .await
        .expect(200);
    assert_eq!(answered["publicity"], "running");
    assert_eq!(
        answered["late"], true,
        "answered after the 3 days the tenderer had"
    );
    app.post(&answer, Some(tenderer), json!({"text": "again"}))
        .await
        .expect_error(409, "conflict");
    // The remaining publicity (3 days less the hour before the objection) runs on.
    let paused_end = answered["publicity_ends_at_ms"].as_i64().unwrap();
    assert!(
        paused_end > app.now().millis() + 2 * 86_400_000,
        "{answered}"
    );
    app.advance(chrono::Duration::days(3));
    p.eventually_awarded().await;
    app.post(&objections, Some(bidder2), json!({"text": "太晚了"}))
        .await
        .expect_error(409, "invalid_transition");
    p.stop().await;
}

/// The winner (the first of the published ranking) and the bidder indexes
/// of the others.
async fn winner(p: &Panel) -> (usize, serde_json::Value) {
    let result = p.result().await.expect(200);
    assert_eq!(result["phase"], "awarded");
    let first = result["ranking"][0].clone();
    let i = (0..3).find(|i| first["bidder"] == p.fx.org(*i)).unwrap();
    (i, first)
}

#[actix_web::test]
async fn the_winner_gets_the_award_notice_and_the_others_the_result() {
    let p = Panel::at(Stage::Awarded).await;
    let (w, first) = winner(&p).await;
    let bidders = &p.fx.w.bidders;
    let award = p
        .app()
        .wait_for_mail(&bidders[w].email, "贵单位为以下标段的中标人")
        .await;
    assert!(award.contains(first["price"].as_str().unwrap()), "{award}");
    for i in (0..3).filter(|i| *i != w) {
        let m = p
            .app()
            .wait_for_mail(&bidders[i].email, "已确定中标人")
            .await;
        assert!(!m.contains("贵单位为以下标段的中标人"), "{m}");
    }
    p.stop().await;
}

/// The whole evaluation on a real SMTP conversation: the experts' calls
/// and then the award and result notices arrive at a small SMTP server.
#[actix_web::test]
async fn award_notices_arrive_over_smtp() {
    let p = Panel::over_smtp(SmtpServer::start(0).await, Stage::Awarded).await;
    let (w, first) = winner(&p).await;
    let bidders = &p.fx.w.bidders;
    p.app()
        .eventually("the award and result notices arrived over SMTP", || {
            let got = p.mails();
            let ok = (0..3).all(|i| {
                got.iter().any(|m| {
                    m.contains(&format!("To: {}", bidders[i].email))
                        && (m.contains("贵单位为以下标段的中标人") || m.contains("已确定中标人"))
                })
            });
            async move { ok }
        })
        .await;
    let got = p.mails();
    let awards: Vec<&String> = got
        .iter()
        .filter(|m| m.contains("贵单位为以下标段的中标人"))
        .collect();
    assert_eq!(awards.len(), 1);
    assert!(
        awards[0].starts_with(&format!("To: {}", bidders[w].email)),
        "{}",
        awards[0]
    );
    assert!(
        awards[0].contains(first["price"].as_str().unwrap()),
        "{}",
        awards[0]
    );
    assert_eq!(got.iter().filter(|m| m.contains("已确定中标人")).count(), 2);
    p.stop().await;
}
