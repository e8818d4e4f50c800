//! Passes (通行证): an expert is admitted to the room only with a pass its
//! home centre signed, for this section, still valid, for a confirmed
//! member; this centre issues passes to its own experts itself.

use kaibiao::crypto::sign;
use serde_json::json;

use super::{centre_of, issue, pool_csv, token_in, Panel, Stage, CENTRES};
use crate::helpers::credit_code;

#[actix_web::test]
async fn every_kind_of_bad_pass_is_refused_and_good_ones_open_the_review() {
    let p = Panel::at(Stage::Drawn).await;
    let s = p.fx.section.clone();
    // One member declines; the reserve and the others confirm.
    let (decliner, mail) = p.calls(5).await[0].clone();
    p.answer(&token_in(&mail), false).await.expect(200);
    let mut members = Vec::new();
    for (id, mail) in p.calls(6).await {
        if id != decliner {
            p.answer(&token_in(&mail), true).await.expect(200);
            members.push(id);
        }
    }
    let now = p.app().now().millis();
    let first = &members[0];
    let ek = sign::generate();
    let stranger = sign::generate();
    let refused = |pass: kaibiao::evaluation::pass::Pass| {
        let p = &p;
        async move {
            let e = p
                .post("admit", json!(pass))
                .await
                .expect_error(422, "pass_rejected");
            e["message"].as_str().unwrap().to_string()
        }
    };
    let untrusted = issue(&stranger, "XX-NOWHERE", first, &ek, &s, now);
    assert!(refused(untrusted).await.contains("does not trust"));
    let forged = issue(&stranger, centre_of(first), first, &ek, &s, now);
    refused(forged).await;
    let k = &p.centre_keys[centre_of(first)];
    let expired = issue(k, centre_of(first), first, &ek, &s, now - 3_600_000);
    assert!(refused(expired).await.contains("expired"));
    let other = issue(k, centre_of(first), first, &ek, "sec_other", now);
    assert!(refused(other).await.contains("another section"));
    let c = centre_of(&decliner);
    refused(issue(&p.centre_keys[c], c, &decliner, &ek, &s, now)).await;
    // A trusted centre vouching for another centre's expert.
    let wrong_home = CENTRES.iter().find(|c| **c != centre_of(first)).unwrap();
    let m = refused(issue(
        &p.centre_keys[wrong_home],
        wrong_home,
        first,
        &ek,
        &s,
        now,
    ))
    .await;
    assert!(m.contains("home centre"), "{m}");

    for m in &members {
        p.post("admit", json!(p.pass(m, &sign::generate())))
            .await
            .expect(200);
    }
    assert_eq!(p.status().await["phase"], "reviewing");
    p.stop().await;
}

/// This centre's own experts sign in here and get their pass from it.
#[actix_web::test]
async fn the_home_centre_issues_passes_to_its_own_experts() {
    let p = Panel::at(Stage::Evaluating).await;
    let app = p.app();
    let expert = &p.fx.w.expert;
    let mut csv = pool_csv(app, &p.fx.w).await;
    csv.push_str(&format!(
        "H1,HOST,本地专家,{},audit,{},,,yes\n",
        expert.email,
        credit_code(777)
    ));
    p.import(csv).await;
    let mut body = json!({"requirements": [{"specialty": "civil", "count": 4, "reserves": 0},
                                           {"specialty": "audit", "count": 1, "reserves": 0}],
                          "centres": CENTRES});
    body["centres"].as_array_mut().unwrap().push(json!("HOST"));
    p.draw(body).await.expect(200);
    let pass_path = p.path("pass");
    let ek = sign::generate();
    let key_hex = hex::encode(ek.verifying_key().as_bytes());
    // Not before the expert has confirmed the seat; never for another role.
    app.post(
        &pass_path,
        Some(&expert.token),
        json!({"expert_key": key_hex}),
    )
    .await
    .expect_error(422, "pass_rejected");
    app.post(&pass_path, Some(p.host()), json!({"expert_key": key_hex}))
        .await
        .expect_error(403, "forbidden");
    let mail = app.wait_for_mail(&expert.email, "kbx_").await;
    p.answer(&token_in(&mail), true).await.expect(200);
    app.post(&pass_path, Some(&expert.token), json!({"expert_key": "zz"}))
        .await
        .expect_error(422, "validation_failed");
    app.post(
        &pass_path,
        Some(&expert.token),
        json!({"expert_key": key_hex, "minutes": 721}),
    )
    .await
    .expect_error(422, "validation_failed");
    let pass = app
        .post(
            &pass_path,
            Some(&expert.token),
            json!({"expert_key": key_hex}),
        )
        .await
        .expect(200);
    assert_eq!(pass["pass"]["centre"], "HOST");
    assert_eq!(pass["pass"]["expert_id"], "H1");
    p.post("admit", pass).await.expect(200);
    p.stop().await;
}
