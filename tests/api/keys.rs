//! Key registration with proof of possession, rotation, and custodians'
//! per-section keys.

use kaibiao::crypto::keyproof::{SectionKeyStatement, Statement};
use kaibiao::crypto::{sign, x25519};
use serde_json::json;

use crate::helpers::{spawn, TestStore};
use crate::world::{register_ed25519, register_x25519, World};

#[actix_web::test]
async fn a_bidder_registers_and_rotates_its_keys_with_proofs() {
    let store = TestStore::new();
    let app = spawn(&store).start().await;
    let w = World::build(&app).await;
    let b = &w.bidders[0];
    let k1 = sign::generate();
    let first = register_ed25519(&app, b, "bidder_signing", &k1).await;
    assert_eq!(
        first["owner"],
        b.org_id.clone().unwrap(),
        "bidder keys belong to the organisation"
    );
    assert_eq!(first["active"], true);
    let enc = x25519::SecretKey::generate();
    let e = register_x25519(&app, b, &enc).await;
    assert_eq!(e["algorithm"], "x25519");

    // Rotation keeps the history.
    let k2 = sign::generate();
    let second = register_ed25519(&app, b, "bidder_signing", &k2).await;
    let keys = app.get("/api/keys", Some(&b.token)).await.expect(200);
    let signing: Vec<_> = keys
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["purpose"] == "bidder_signing")
        .collect();
    assert_eq!(signing.len(), 2);
    let old = signing.iter().find(|k| k["id"] == first["id"]).unwrap();
    assert_eq!(old["active"], false);
    assert!(old["retired_at"].is_string());
    assert_eq!(
        signing.iter().find(|k| k["id"] == second["id"]).unwrap()["active"],
        true
    );
    app.stop().await;
}

#[actix_web::test]
async fn bad_proofs_replays_expiry_weak_keys_and_wrong_roles_are_refused() {
    let store = TestStore::new();
    let app = spawn(&store).start().await;
    let w = World::build(&app).await;
    let b = &w.bidders[0];
    let key = sign::generate();
    let pk = hex::encode(key.verifying_key().to_bytes());
    let challenge = || async {
        app.post(
            "/api/keys/challenges",
            Some(&b.token),
            json!({"purpose": "bidder_signing"}),
        )
        .await
        .expect(201)
    };

    // A proof by another key.
    let ch = challenge().await;
    let st = Statement {
        challenge: ch["nonce"].as_str().unwrap(),
        challenge_id: ch["id"].as_str().unwrap(),
        owner: ch["owner"].as_str().unwrap(),
        public_key: &pk,
        purpose: "bidder_signing",
    };
    let forged = st.sign_ed25519(&sign::generate());
    app.post(
        "/api/keys",
        Some(&b.token),
        json!({"challenge_id": ch["id"], "public_key": pk, "proof": forged}),
    )
    .await
    .expect_error(422, "proof_invalid");
    // A proof for another purpose does not count either.
    let wrong_purpose = Statement {
        purpose: "expert_identity",
        ..st
    };
    let p2 = wrong_purpose.sign_ed25519(&key);
    app.post(
        "/api/keys",
        Some(&b.token),
        json!({"challenge_id": ch["id"], "public_key": pk, "proof": p2}),
    )
    .await
    .expect_error(422, "proof_invalid");
    // The right proof works once; the challenge cannot be replayed.
    let good = Statement {
        challenge: ch["nonce"].as_str().unwrap(),
        challenge_id: ch["id"].as_str().unwrap(),
        owner: ch["owner"].as_str().unwrap(),
        public_key: &pk,
        purpose: "bidder_signing",
    }
    .sign_ed25519(&key);
    app.post(
        "/api/keys",
        Some(&b.token),
        json!({"challenge_id": ch["id"], "public_key": pk, "proof": good}),
    )
    .await
    .expect(201);
    app.post(
        "/api/keys",
        Some(&b.token),
        json!({"challenge_id": ch["id"], "public_key": pk, "proof": good}),
    )
    .await
    .expect_error(422, "challenge_invalid");

    // Another organisation cannot use this challenge or register the same key.
    let other = &w.bidders[1];
    let ch2 = app
        .post(
            "/api/keys/challenges",
            Some(&other.token),
            json!({"purpose": "bidder_signing"}),
        )
        .await
        .expect(201);
    let st2 = Statement {
        challenge: ch2["nonce"].as_str().unwrap(),
        challenge_id: ch2["id"].as_str().unwrap(),
        owner: ch2["owner"].as_str().unwrap(),
        public_key: &pk,
        purpose: "bidder_signing",
    };
    app.post(
        "/api/keys",
        Some(&b.token),
        json!({"challenge_id": ch2["id"], "public_key": pk, "proof": st2.sign_ed25519(&key)}),
    )
    .await
    .expect_error(422, "challenge_invalid");
    app.post(
        "/api/keys",
        Some(&other.token),
        json!({"challenge_id": ch2["id"], "public_key": pk, "proof": st2.sign_ed25519(&key)}),
    )
    .await
    .expect_error(422, "key_rejected");

    // Expired challenges.
    let ch3 = challenge().await;
    app.advance(chrono::Duration::minutes(6));
    let k3 = sign::generate();
    let pk3 = hex::encode(k3.verifying_key().to_bytes());
    let st3 = Statement {
        challenge: ch3["nonce"].as_str().unwrap(),
        challenge_id: ch3["id"].as_str().unwrap(),
        owner: ch3["owner"].as_str().unwrap(),
        public_key: &pk3,
        purpose: "bidder_signing",
    };
    app.post(
        "/api/keys",
        Some(&b.token),
        json!({"challenge_id": ch3["id"], "public_key": pk3, "proof": st3.sign_ed25519(&k3)}),
    )
    .await
    .expect_error(422, "challenge_invalid");

    // A good key and proof, with the key in upper-case hex: one spelling
    // only (PROTOCOL §1).
    let ch6 = challenge().await;
    let k6 = sign::generate();
    let pk6 = hex::encode(k6.verifying_key().to_bytes());
    let upper = pk6.to_uppercase();
    let st6 = Statement {
        challenge: ch6["nonce"].as_str().unwrap(),
        challenge_id: ch6["id"].as_str().unwrap(),
        owner: ch6["owner"].as_str().unwrap(),
        public_key: &upper,
        purpose: "bidder_signing",
    };
    let e = app
        .post(
            "/api/keys",
            Some(&b.token),
            json!({"challenge_id": ch6["id"], "public_key": upper, "proof": st6.sign_ed25519(&k6)}),
        )
        .await
        .expect_error(422, "key_rejected");
    assert!(
        e["message"].as_str().unwrap().contains("lower-case hex"),
        "{e}"
    );

    // Weak Ed25519 key (a small-order point) and a low-order X25519 key.
    let ch4 = challenge().await;
    let mut weak = [0u8; 32];
    weak[0] = 1;
    app.post(
        "/api/keys",
        Some(&b.token),
        json!({"challenge_id": ch4["id"], "public_key": hex::encode(weak), "proof": "00"}),
    )
    .await
    .expect_error(422, "key_rejected");
    let ch5 = app
        .post(
            "/api/keys/challenges",
            Some(&b.token),
            json!({"purpose": "bidder_encryption"}),
        )
        .await
        .expect(201);
    app.post(
        "/api/keys",
        Some(&b.token),
        json!({"challenge_id": ch5["id"], "public_key": hex::encode([0u8; 32]), "proof": "00"}),
    )
    .await
    .expect_error(422, "key_rejected");

    // Wrong role for the purpose.
    app.post(
        "/api/keys/challenges",
        Some(&w.host.token),
        json!({"purpose": "bidder_signing"}),
    )
    .await
    .expect_error(403, "forbidden");
    app.post(
        "/api/keys/challenges",
        Some(&b.token),
        json!({"purpose": "custodian_identity"}),
    )
    .await
    .expect_error(403, "forbidden");

    // Only the one good key was registered.
    let keys = app.get("/api/keys", Some(&b.token)).await.expect(200);
    assert_eq!(keys.as_array().unwrap().len(), 1, "{keys}");
    app.stop().await;
}

#[actix_web::test]
async fn custodian_section_keys_are_signed_by_the_identity_key_and_frozen_at_publication() {
    let store = TestStore::new();
    let app = spawn(&store).start().await;
    let w = World::build(&app).await;
    let s = w.draft(&app, 30).await;
    let c = &w.custodians[0];
    let sk = x25519::SecretKey::generate();
    let pk = hex::encode(sk.public_key());
    let identity = hex::encode(c.identity.verifying_key().to_bytes());
    let statement = |section: &str| {
        SectionKeyStatement {
            custodian: &c.person.id,
            identity_key: &identity,
            public_key: &pk,
            section_id: section,
        }
        .sign(&c.identity)
    };

    // Signed for another section: refused.
    app.post(
        &format!("/api/sections/{s}/custodian-key"),
        Some(&c.person.token),
        json!({"public_key": pk, "signature": statement("sec_other")}),
    )
    .await
    .expect_error(422, "proof_invalid");
    // A custodian not named for the section does not even see it.
    let outsider = crate::world::person(
        &app,
        Some(&w.centre),
        kaibiao::domain::identity::Role::Custodian,
        "outsider",
    )
    .await;
    app.post(
        &format!("/api/sections/{s}/custodian-key"),
        Some(&outsider.token),
        json!({"public_key": pk, "signature": statement(&s)}),
    )
    .await
    .expect_error(404, "not_found");
    // The host is not a custodian.
    app.post(
        &format!("/api/sections/{s}/custodian-key"),
        Some(&w.host.token),
        json!({"public_key": pk, "signature": statement(&s)}),
    )
    .await
    .expect_error(403, "forbidden");
    app.post(
        &format!("/api/sections/{s}/custodian-key"),
        Some(&c.person.token),
        json!({"public_key": pk, "signature": statement(&s)}),
    )
    .await
    .expect(201);

    // Once published, section keys are frozen.
    w.register_section_keys(&app, &s).await;
    w.upload(&app, &s, "招标文件.pdf", b"%PDF").await;
    app.post(
        &format!("/api/sections/{s}/publish"),
        Some(&w.host.token),
        json!({}),
    )
    .await
    .expect(200);
    app.post(
        &format!("/api/sections/{s}/custodian-key"),
        Some(&c.person.token),
        json!({"public_key": pk, "signature": statement(&s)}),
    )
    .await
    .expect_error(409, "section_not_draft");
    // The published parameters carry each custodian's identity and section keys.
    let params = app
        .get(&format!("/api/public/sections/{s}/params"), None)
        .await
        .expect(200);
    let custodians = params["custodians"].as_array().unwrap();
    assert_eq!(custodians.len(), 5);
    assert!(custodians
        .iter()
        .all(|c| c["section_key"].as_str().unwrap().len() == 64));
    app.stop().await;
}
