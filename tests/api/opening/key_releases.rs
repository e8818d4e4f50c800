//! Custodians' key releases: every bad release is refused and changes
//! nothing; a repeat with its idempotency key answers the first result; a
//! released key is sealed at rest until the announcement; a release at the
//! window's end, to the millisecond, is late.

use kaibiao::crypto::opening::SignedKeyRelease;
use kaibiao::crypto::sign;
use kaibiao::domain::time::Timestamp;
use serde_json::{json, Value};

use super::release_with;
use crate::fixture::{Fixture, Fx, Phase};
use crate::helpers::rows_of;

fn path(fx: &Fx) -> String {
    format!("/api/sections/{}/opening/key-releases", fx.section)
}

async fn releases(fx: &Fx) -> usize {
    fx.state(None).await["state"]["releases"]
        .as_array()
        .unwrap()
        .len()
}

#[actix_web::test]
async fn forged_tampered_misplaced_and_malformed_releases_are_refused_and_change_nothing() {
    let fx = Fixture::new().at(Phase::Decrypting).await;
    let now = fx.app.now().millis();
    let c0 = fx.client(&fx.w.custodians[0].person);
    let code = |r: SignedKeyRelease| {
        let (c0, path) = (c0.clone(), path(&fx));
        async move {
            let e = c0.post::<Value>(&path, &r).await.unwrap_err();
            e.code().map(str::to_string)
        }
    };
    let key_rejected = Some("key_rejected".to_string());
    // Another custodian's secret under my public key.
    assert_eq!(
        code(release_with(&fx, 0, &fx.custodian_keys[1], now)).await,
        key_rejected
    );
    // Tampered after signing.
    let mut t = release_with(&fx, 0, &fx.custodian_keys[0], now);
    t.release.released_at_ms += 1;
    assert_eq!(code(t).await, key_rejected);
    // Signed by another identity.
    let mut forged = release_with(&fx, 0, &fx.custodian_keys[0], now);
    forged.signature = SignedKeyRelease::sign(forged.release.clone(), &sign::generate()).signature;
    assert_eq!(code(forged).await, key_rejected);
    // Claiming another custodian's position.
    let theirs = release_with(&fx, 1, &fx.custodian_keys[1], now);
    assert_eq!(code(theirs.clone()).await, key_rejected);
    // Not a custodian of this section at all.
    let e = fx
        .bidder(0)
        .post::<Value>(&path(&fx), &theirs)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("forbidden"));
    // Malformed JSON and unknown fields.
    fx.app
        .raw(
            "POST",
            &path(&fx),
            Some(&fx.w.custodians[0].person.token),
            "application/json",
            b"{\"release\":".to_vec(),
        )
        .await
        .expect_error(400, "malformed_json");
    let mut extra = serde_json::to_value(release_with(&fx, 0, &fx.custodian_keys[0], now)).unwrap();
    extra["release"]["note"] = json!("x");
    let e = c0.post::<Value>(&path(&fx), &extra).await.unwrap_err();
    assert_eq!(e.code(), Some("validation_failed"));
    assert_eq!(releases(&fx).await, 0);
    fx.app.stop().await;
}

#[actix_web::test]
async fn a_release_repeated_with_its_idempotency_key_counts_once_and_is_sealed_at_rest() {
    let fx = Fixture::new().at(Phase::Decrypting).await;
    let now = fx.app.now().millis();
    let c0 = fx.client(&fx.w.custodians[0].person);
    let good = release_with(&fx, 0, &fx.custodian_keys[0], now);
    let a: Value = c0
        .post_once(&path(&fx), &good, "release-0-once")
        .await
        .unwrap();
    let b: Value = c0
        .post_once(&path(&fx), &good, "release-0-once")
        .await
        .unwrap();
    assert_eq!(a, b);
    // Without the key, a second release is a conflict.
    let e = c0.post::<Value>(&path(&fx), &good).await.unwrap_err();
    assert_eq!(e.code(), Some("conflict"));
    assert_eq!(releases(&fx).await, 1);
    let rows = rows_of(&fx.app, "key_releases").await;
    assert!(
        !rows.contains(&hex::encode(*fx.custodian_keys[0].to_bytes())),
        "a released key is sealed at rest until the announcement"
    );
    fx.app.stop().await;
}

#[actix_web::test]
async fn a_good_release_at_the_windows_end_to_the_millisecond_is_late() {
    let fx = Fixture::new().at(Phase::Decrypting).await;
    let ends = fx.window_ends().await;
    fx.app.fixed_clock().set(Timestamp::from_millis(ends));
    let late = fx
        .client(&fx.w.custodians[1].person)
        .post::<Value>(
            &path(&fx),
            &release_with(&fx, 1, &fx.custodian_keys[1], ends),
        )
        .await
        .unwrap_err();
    assert_eq!(late.code(), Some("invalid_transition"), "{late}");
    assert_eq!(releases(&fx).await, 0);
    fx.app.stop().await;
}
