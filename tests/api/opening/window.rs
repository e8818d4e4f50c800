//! The decryption window: the host extends it only with a reason and a
//! sensible length, the new end is exact to the millisecond, and a closed
//! window cannot be extended.

use kaibiao::domain::time::Timestamp;

use crate::fixture::{events_until, Fixture, Phase};

#[actix_web::test]
async fn the_host_extends_the_window_with_a_reason_and_its_new_end_is_exact() {
    let fx = Fixture::new().mode("bidders").at(Phase::Decrypting).await;
    let s = &fx.section;
    let mut public = fx.watch(None, 0).await;
    let ends = fx.window_ends().await;

    // No reason, no minutes, too many minutes: refused, nothing moves.
    for (minutes, reason) in [(10, ""), (0, "网络波动"), (24 * 60, "网络波动")] {
        let e = fx
            .host()
            .extend_window(s, minutes, reason)
            .await
            .unwrap_err();
        assert_eq!(
            e.code(),
            Some("validation_failed"),
            "{minutes} {reason:?}: {e}"
        );
    }
    assert_eq!(fx.window_ends().await, ends, "unchanged");

    let v = fx.host().extend_window(s, 10, "网络波动").await.unwrap();
    let new_end = ends + 10 * 60_000;
    assert_eq!(v["window_ends_at_ms"], new_end);
    let frames = events_until(&mut public, "opening.window_extended").await;
    let ev = frames.last().unwrap();
    assert_eq!(ev["data"]["reason"], "网络波动");
    assert_eq!(ev["data"]["window_ends_at_ms"], new_end);

    // The old end no longer counts; the new one does, to the millisecond.
    fx.app.fixed_clock().set(Timestamp::from_millis(ends));
    assert_eq!(fx.decrypt_own(0).await.unwrap()["status"], "decrypted");
    fx.app
        .fixed_clock()
        .set(Timestamp::from_millis(new_end - 1));
    assert_eq!(fx.decrypt_own(1).await.unwrap()["status"], "decrypted");
    fx.app.fixed_clock().set(Timestamp::from_millis(new_end));
    let late = fx.decrypt_own(2).await.unwrap_err();
    assert_eq!(late.code(), Some("invalid_transition"), "{late}");
    // Nor can a closed window be extended.
    let closed = fx.host().extend_window(s, 10, "再延长").await.unwrap_err();
    assert_eq!(closed.code(), Some("invalid_transition"), "{closed}");
    fx.wait_phase("confirming").await;
    // The record's end is the extended one, and no leaf of it can go.
    let (t, _) = fx.verified().await;
    let kinds = crate::completeness::every_omission_is_rejected(&t);
    assert!(kinds.contains("opening.window_extended"), "{kinds:?}");
    fx.app.stop().await;
}
