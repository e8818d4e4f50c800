//! Signed scores (评分): each cell once, within its item's range, never for
//! the computed price item or a rejected bid; a sheet (a bid's scores in
//! one request) is all or nothing; the result waits for every score and is
//! exactly the pure computation of the record.

use kaibiao::evaluation::scoring;
use serde_json::{json, Value};

use super::{Panel, Stage, OTHER, REJECTED, TECH, TOP};

#[actix_web::test]
async fn scores_out_of_range_for_the_price_item_or_for_a_rejected_bid_are_refused() {
    let p = Panel::at(Stage::Scoring).await;
    let (m0, b) = (&p.members[0], &p.bids);
    for bad in [
        p.score(m0, &b[TOP], "tech", "50.01"),
        p.score(m0, &b[TOP], "price", "10"),
        p.score(m0, &b[REJECTED], "tech", "10"),
    ] {
        p.post("scores", bad)
            .await
            .expect_error(422, "validation_failed");
    }
    p.stop().await;
}

#[actix_web::test]
async fn a_sheet_is_written_whole_or_not_at_all() {
    let p = Panel::at(Stage::Scoring).await;
    let (m0, top) = (&p.members[0], &p.bids[TOP]);
    let sheet = |cells: Vec<Value>| json!({ "scores": cells });
    let e = p
        .post(
            "scores",
            sheet(vec![
                p.score(m0, top, "tech", "40"),
                p.score(m0, top, "credit", "10.01"),
            ]),
        )
        .await
        .expect_error(422, "validation_failed");
    assert!(e["message"].as_str().unwrap().contains("scores[1]"), "{e}");
    p.post("scores", sheet(vec![]))
        .await
        .expect_error(422, "validation_failed");
    let twice = p.score(m0, top, "tech", "40");
    p.post("scores", sheet(vec![twice.clone(), twice]))
        .await
        .expect_error(422, "validation_failed");
    let r = p.post("scores", p.sheet(m0, top, "40")).await.expect(200);
    assert_eq!(
        r["new"], 2,
        "nothing of the refused sheets was written: {r}"
    );
    // A sheet with one cell already scored otherwise writes none of its cells.
    let m1 = &p.members[1];
    p.post("scores", p.score(m1, top, "credit", "8"))
        .await
        .expect(200);
    p.post(
        "scores",
        sheet(vec![
            p.score(m1, top, "credit", "9"),
            p.score(m1, top, "tech", "31"),
        ]),
    )
    .await
    .expect_error(409, "conflict");
    let r = p.post("scores", p.sheet(m1, top, "31")).await.expect(200);
    assert_eq!(
        (r["new"].as_u64(), r["repeats"].as_u64()),
        (Some(1), Some(1))
    );
    p.stop().await;
}

#[actix_web::test]
async fn the_result_waits_for_every_score_and_is_the_pure_computation_of_the_record() {
    let p = Panel::at(Stage::Scoring).await;
    let (m, b) = (&p.members, &p.bids);
    for (i, member) in m.iter().enumerate() {
        p.post("scores", p.sheet(member, &b[TOP], TECH[i]))
            .await
            .expect(200);
        p.post("scores", p.score(member, &b[OTHER], "tech", "30"))
            .await
            .expect(200);
        if i != 4 {
            p.post("scores", p.score(member, &b[OTHER], "credit", "8"))
                .await
                .expect(200);
        }
    }
    // Not finished while a score is missing; the message says which.
    let e = p
        .host_post("finish")
        .await
        .expect_error(409, "invalid_transition");
    let msg = e["message"].as_str().unwrap();
    assert!(msg.contains("has not scored credit"), "{e}");
    let last = p.score(&m[4], &b[OTHER], "credit", "8");
    p.post("scores", last.clone()).await.expect(200);
    assert_eq!(p.post("scores", last).await.expect(200)["repeats"], 1);
    p.post("scores", p.score(&m[4], &b[OTHER], "credit", "9"))
        .await
        .expect_error(409, "conflict");
    p.app()
        .post(&p.path("finish"), Some(&p.fx.w.bidders[0].token), json!({}))
        .await
        .expect_error(403, "forbidden");

    let done = p.host_post("finish").await.expect(200);
    let outcome: scoring::EvalOutcome =
        serde_json::from_value(done["report"]["outcome"].clone()).unwrap();
    assert_eq!(outcome.ranking.len(), 2);
    let q = outcome.qualification.iter().find(|q| q.bid == b[REJECTED]);
    assert!(!q.unwrap().qualified);
    // The result is exactly what the pure computation gives from the record.
    let db = p.app().db.clone();
    let sid = kaibiao::domain::ids::SectionId::from_db(p.fx.section.clone());
    let input = tokio::task::spawn_blocking(move || {
        let mut c = db.get_blocking().unwrap();
        kaibiao::service::evaluation::eval_input(&mut c, &sid).unwrap()
    })
    .await
    .unwrap();
    assert_eq!(scoring::evaluate(&input).unwrap(), outcome);
    // The K coefficient is one of the declared candidates.
    let k = input.k.unwrap().to_string();
    assert!(["0.9500", "0.9700", "1.0000"].contains(&k.as_str()), "{k}");
    // The top bid: totals 48 50 52 49 51 → trimmed mean of 49 50 51 = 50.00.
    let first = outcome.ranking.iter().find(|r| r.bid == b[TOP]).unwrap();
    assert_eq!(first.panel_score.to_string(), "50.00");
    p.host_post("finish")
        .await
        .expect_error(409, "invalid_transition");
    p.post("scores", p.score(&m[0], &b[TOP], "credit", "1"))
        .await
        .expect_error(409, "invalid_transition");
    p.stop().await;
}
