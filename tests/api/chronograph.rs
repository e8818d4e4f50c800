//! The durable schedule: the deadline transition happens at the deadline,
//! exactly once, follows an amended deadline, and is caught up after the
//! server was down across it.

use std::time::Duration;

use kaibiao::domain::time::Timestamp;
use serde_json::json;

use crate::helpers::{spawn, TestApp, TestStore};
use crate::world::World;

/// The public state of a section. The sections here get no bids, so the
/// deadline seals them and they fail (流标) at once for want of bidders:
/// "failed" is how a test sees that the deadline transition ran.
async fn state(app: &TestApp, s: &str) -> String {
    app.get(&format!("/api/public/sections/{s}"), None)
        .await
        .expect(200)["state"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn deadline(app: &TestApp, s: &str) -> Timestamp {
    Timestamp::parse_rfc3339(
        app.get(&format!("/api/public/sections/{s}"), None)
            .await
            .expect(200)["deadline"]
            .as_str()
            .unwrap(),
    )
    .unwrap()
}

async fn sealed_events(app: &TestApp, w: &World, s: &str) -> usize {
    let events = app
        .get(&format!("/api/sections/{s}/events"), Some(&w.host.token))
        .await
        .expect(200);
    events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "section.sealed")
        .count()
}

#[actix_web::test]
async fn the_deadline_seals_the_section_at_the_deadline_and_only_once() {
    let store = TestStore::new();
    let app = spawn(&store).start().await;
    let w = World::build(&app).await;
    let s = w.published(&app, 20).await;
    let d = deadline(&app, &s).await;

    app.fixed_clock()
        .set(d.minus(chrono::Duration::milliseconds(1)));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        state(&app, &s).await,
        "published",
        "1 ms before the deadline nothing happens"
    );

    app.fixed_clock().set(d);
    app.eventually("the section is sealed", || async {
        state(&app, &s).await == "failed"
    })
    .await;
    app.advance(chrono::Duration::hours(1));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(sealed_events(&app, &w, &s).await, 1);
    assert_eq!(
        app.services().metrics.counter(
            "kaibiao_chronograph_transitions_total",
            &[("kind", "section.deadline")]
        ),
        1
    );
    let audit = app
        .get(
            &format!("/api/sections/{s}/audit"),
            Some(&w.supervisor.token),
        )
        .await
        .expect(200);
    assert!(audit
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["action"] == "section.seal"));
    app.stop().await;
}

#[actix_web::test]
async fn an_amended_deadline_moves_the_transition() {
    let store = TestStore::new();
    let app = spawn(&store).start().await;
    let w = World::build(&app).await;
    let s = w.published(&app, 20).await;
    let d = deadline(&app, &s).await;
    app.post(
        &format!("/api/sections/{s}/amendments"),
        Some(&w.host.token),
        json!({"kind": "modification", "title": "延期", "body": "截止时间延期七日。", "deadline": d.plus(chrono::Duration::days(7)).rfc3339()}),
    )
    .await
    .expect(201);
    app.fixed_clock().set(d.plus(chrono::Duration::hours(1)));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(state(&app, &s).await, "published");
    app.fixed_clock().set(d.plus(chrono::Duration::days(7)));
    app.eventually("sealed at the new deadline", || async {
        state(&app, &s).await == "failed"
    })
    .await;
    app.stop().await;
}

#[actix_web::test]
async fn a_server_down_across_the_deadline_seals_when_it_starts_again() {
    let store = TestStore::new();
    let app = spawn(&store).start().await;
    let w = World::build(&app).await;
    let s = w.published(&app, 20).await;
    let d = deadline(&app, &s).await;
    let clock = app.fixed_clock();
    app.stop().await;

    // While nobody runs, the deadline passes.
    clock.set(d.plus(chrono::Duration::hours(5)));
    let app = spawn(&store).clock(clock).start().await;
    app.eventually("the missed transition is performed at start", || async {
        state(&app, &s).await == "failed"
    })
    .await;
    assert_eq!(sealed_events(&app, &w, &s).await, 1);
    assert_eq!(
        app.services().metrics.counter(
            "kaibiao_chronograph_transitions_total",
            &[("kind", "section.deadline")]
        ),
        1,
        "the restarted server performed it"
    );
    let events = app
        .get(&format!("/api/sections/{s}/events"), Some(&w.host.token))
        .await
        .expect(200);
    let sealed = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "section.sealed")
        .unwrap();
    assert_eq!(sealed["payload"]["deadline_ms"], d.millis());
    app.stop().await;
}

#[actix_web::test]
async fn two_chronographs_on_one_database_perform_each_transition_once() {
    let store = TestStore::new();
    let a = spawn(&store).start().await;
    let w = World::build(&a).await;
    let mut sections = Vec::new();
    for _ in 0..4 {
        sections.push(w.published(&a, 20).await);
    }
    let d = deadline(&a, &sections[3]).await;
    let clock = a.fixed_clock();
    let b = spawn(&store).clock(clock.clone()).start().await;
    // Both nodes wake at the same instant.
    clock.set(d.plus(chrono::Duration::minutes(1)));
    for s in &sections {
        a.eventually("sealed", || async { state(&a, s).await == "failed" })
            .await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for s in &sections {
        assert_eq!(
            sealed_events(&a, &w, s).await,
            1,
            "exactly one sealed event for {s}"
        );
    }
    let performed = |app: &TestApp| {
        app.services().metrics.counter(
            "kaibiao_chronograph_transitions_total",
            &[("kind", "section.deadline")],
        )
    };
    assert_eq!(
        performed(&a) + performed(&b),
        4,
        "each transition performed by exactly one node"
    );
    a.stop().await;
    b.stop().await;
}

/// A long job (the opening's decryption) is held by one node at a time: a
/// lease another node cannot take until it lapses, renewed only by its
/// holder.
#[actix_web::test]
async fn a_long_job_is_leased_to_one_node_until_its_lease_lapses() {
    use kaibiao::db::jobs;
    let store = TestStore::new();
    let app = spawn(&store).start().await;
    let w = World::build(&app).await;
    let s = w.published(&app, 30).await;
    let db = app.db.clone();
    tokio::task::spawn_blocking(move || {
        let mut c = db.get_blocking().unwrap();
        let far = i64::MAX / 4;
        let s = kaibiao::domain::ids::SectionId::from_db(s);
        let long = kaibiao::domain::states::JobKind::OpeningDecrypt;
        jobs::schedule(&mut c, &s, long, far, 0).unwrap();
        let id = jobs::for_section(&mut c, &s)
            .unwrap()
            .into_iter()
            .find(|j| j.kind == long)
            .unwrap()
            .id;
        assert_eq!(jobs::lease(&mut c, &id, "node-a", 100, 200).unwrap(), 1);
        assert_eq!(
            jobs::lease(&mut c, &id, "node-b", 150, 250).unwrap(),
            0,
            "held"
        );
        assert_eq!(
            jobs::renew(&mut c, &id, "node-b", 300).unwrap(),
            0,
            "not B's"
        );
        assert_eq!(jobs::renew(&mut c, &id, "node-a", 300).unwrap(), 1);
        assert_eq!(
            jobs::lease(&mut c, &id, "node-b", 250, 400).unwrap(),
            0,
            "renewed"
        );
        assert_eq!(
            jobs::lease(&mut c, &id, "node-b", 301, 400).unwrap(),
            1,
            "lapsed"
        );
        assert_eq!(jobs::complete(&mut c, &id, "node-b", 350).unwrap(), 1);
        assert_eq!(
            jobs::lease(&mut c, &id, "node-a", 360, 500).unwrap(),
            0,
            "done"
        );
    })
    .await
    .unwrap();
    app.stop().await;
}
