//! The evaluation report (评标报告): every member signs its hash, a dissent
//! needs its reasons; the result is published once everyone signed or the
//! signing time ended — silence then counts as agreement — and the
//! committee becomes public.

use super::{Panel, Stage, TOP};

#[actix_web::test]
async fn members_sign_the_reports_hash_once_and_a_dissent_needs_its_reasons() {
    let p = Panel::at(Stage::Signing).await;
    let hash = p.report_hash();
    assert_eq!(
        hash,
        kaibiao::crypto::sha256_hex(
            &kaibiao::crypto::jcs::canonicalize(&p.finished["report"]).unwrap()
        )
    );
    let m0 = &p.members[0];
    p.post(
        "report/signatures",
        p.report(m0, &"0".repeat(64), true, None),
    )
    .await
    .expect_error(422, "validation_failed");
    p.post("report/signatures", p.report(m0, &hash, false, None))
        .await
        .expect_error(422, "validation_failed");
    p.sign_report(4).await;
    p.post("report/signatures", p.report(m0, &hash, true, None))
        .await
        .expect_error(409, "conflict");
    p.stop().await;
}

#[actix_web::test]
async fn the_result_is_published_when_the_signing_time_ends_and_silence_counts_as_agreement() {
    let p = Panel::at(Stage::Signing).await;
    p.sign_report(4).await;
    // The fifth member stays silent: no publication before the signing time ends…
    let e = p
        .host_post("publish")
        .await
        .expect_error(409, "invalid_transition");
    let msg = e["message"].as_str().unwrap();
    assert!(msg.contains("1 expert(s) have not signed"), "{e}");
    assert_eq!(p.result().await.status, 404);
    // …and when it has, the silence is recorded as agreement.
    p.app().advance(chrono::Duration::minutes(61));
    let silent = &p.members[4];
    p.post(
        "report/signatures",
        p.report(silent, &p.report_hash(), true, None),
    )
    .await
    .expect_error(409, "invalid_transition");
    let published = p.host_post("publish").await.expect(200);
    assert_eq!(published["phase"], "publicity");
    assert_eq!(published["candidates"][0]["bid"], p.bids[TOP]);
    let result = p.result().await.expect(200);
    let sigs = result["signatures"].as_array().unwrap();
    assert_eq!(sigs.len(), 5);
    assert!(sigs
        .iter()
        .any(|x| x["expert_id"] == *silent && x["deemed"] == true && x["agree"] == true));
    assert!(sigs.iter().any(|x| x["expert_id"] == p.members[1]
        && x["agree"] == false
        && x["dissent"].as_str().is_some()));
    // The committee is public now, names included.
    assert_eq!(result["committee"].as_array().unwrap().len(), 5);
    assert!(result["committee"].to_string().contains("专家"));
    p.stop().await;
}
