//! Several `kaibiao serve` processes on one PostgreSQL database: what one
//! publishes the other serves, and each scheduled transition happens once.

use std::sync::Arc;
use std::time::Duration;

use kaibiao::clock::{AcceleratedClock, SharedClock};
use kaibiao::config::DatabaseTarget;
use kaibiao::db::Db;
use serde_json::json;

use kaibiao::client::opening::Watcher;

use crate::cli::Node;
use crate::helpers::{TestApp, TestStore};
use crate::world::World;

#[actix_web::test]
async fn two_processes_share_sections_and_seal_each_deadline_exactly_once() {
    let store = TestStore::postgres();
    let url = store.database_url.clone().unwrap();
    let data = store.data_dir();
    // Both nodes and this test share one accelerated clock: x2000 from a
    // common anchor, so a deadline an hour ahead comes in under 2 s.
    let anchor = kaibiao::clock::Clock::now(&kaibiao::clock::SystemClock);
    let speed = 2000.0;
    let env = |node: &str| {
        vec![
            ("KAIBIAO_DATABASE__URL", url.clone()),
            ("KAIBIAO_CLOCK__MODE", "accelerated".to_string()),
            ("KAIBIAO_CLOCK__SPEED", speed.to_string()),
            ("KAIBIAO_CLOCK__ANCHOR", anchor.rfc3339()),
            ("KAIBIAO_RULES__MIN_DAYS_OTHER", "0".to_string()),
            ("KAIBIAO_CHRONOGRAPH__NODE_ID", node.to_string()),
            ("KAIBIAO_CHRONOGRAPH__POLL_INTERVAL_MS", "100".to_string()),
            ("KAIBIAO_SERVER__WORKERS", "2".to_string()),
        ]
    };
    let data_arg = data.display().to_string();
    let a = Node::start(
        &["--data-dir", &data_arg, "--listen", "127.0.0.1:0"],
        &env("node-a"),
    );
    let b = Node::start(
        &["--data-dir", &data_arg, "--listen", "127.0.0.1:0"],
        &env("node-b"),
    );
    assert_ne!(a.base, b.base);

    let db = Db::connect(
        &DatabaseTarget::Postgres(url.clone()),
        2,
        5000,
        Duration::from_secs(10),
    )
    .unwrap();
    let clock: SharedClock = Arc::new(AcceleratedClock::anchored(
        anchor.millis(),
        anchor.millis(),
        speed,
    ));
    let node_b = TestApp::remote(b, db.clone(), data.clone(), clock.clone());
    let node_a = TestApp::remote(a, db, data, clock);

    let w = World::build(&node_a).await;
    let mut sections = Vec::new();
    for _ in 0..3 {
        let p = w.project(&node_a, "land_use", false).await;
        let mut body = w.draft_body(&node_a, 0);
        body["deadline"] = json!(node_a.now().plus(chrono::Duration::hours(2)).rfc3339());
        let s = w.publish_body(&node_a, &p, body).await;
        sections.push(s);
    }
    // Published through A, visible through B — the notice, the parameters and the document.
    for s in &sections {
        let v = node_b
            .get(&format!("/api/public/sections/{s}"), None)
            .await
            .expect(200);
        assert_eq!(v["state"], "published");
        let doc = v["documents"][0]["id"].as_str().unwrap();
        let f = node_b
            .get(&format!("/api/public/sections/{s}/documents/{doc}"), None)
            .await;
        assert_eq!(f.body, b"%PDF tender");
    }
    // Signed in on A, recognised on B.
    node_b
        .get("/api/auth/me", Some(&w.host.token))
        .await
        .expect(200);
    // The room across processes: a watcher on B sees what A does and what
    // the deadline does, every event once, in order (PostgreSQL NOTIFY).
    let last = sections.last().unwrap().clone();
    let mut watcher = Watcher::connect(&node_b.base, &last, None, 0)
        .await
        .unwrap();
    let host_a = w.client(&node_a, &w.host);
    let mut posted = Vec::new();
    for i in 0..10 {
        let v = host_a.notice(&last, &format!("公告 {i}")).await.unwrap();
        posted.push(v["seq"].as_i64().unwrap());
    }
    let mut seen = Vec::new();
    loop {
        let f = watcher
            .next_within(Duration::from_secs(60))
            .await
            .unwrap()
            .expect("the room stays open");
        if f["type"] == "event" {
            seen.push(f["seq"].as_i64().unwrap());
            if f["kind"] == "section.failed" {
                break;
            }
        }
    }
    // The public view begins at the publication (a draft's events are
    // the staff's); from there every event of this section is public.
    let stored = node_a
        .get(&format!("/api/sections/{last}/events"), Some(&w.host.token))
        .await
        .expect(200);
    let published = stored
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "section.published")
        .unwrap()["seq"]
        .as_i64()
        .unwrap();
    assert_eq!(
        seen,
        (published..=*seen.last().unwrap()).collect::<Vec<_>>(),
        "every event on B, once, in order"
    );
    assert!(
        posted.iter().all(|s| seen.contains(s)),
        "{posted:?} in {seen:?}"
    );

    for s in &sections {
        node_b
            .eventually("sealed", || async {
                node_b
                    .get(&format!("/api/public/sections/{s}"), None)
                    .await
                    .expect(200)["state"]
                    == "failed"
            })
            .await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for s in &sections {
        let events = node_a
            .get(&format!("/api/sections/{s}/events"), Some(&w.host.token))
            .await
            .expect(200);
        let sealed = events
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "section.sealed")
            .count();
        assert_eq!(sealed, 1, "{s} sealed exactly once");
    }
    let log_a = node_a.process.as_ref().unwrap().log();
    let log_b = node_b.process.as_ref().unwrap().log();
    let performed = |log: &str| {
        log.lines()
            .filter(|l| l.contains("transition performed"))
            .count()
    };
    assert_eq!(
        performed(&log_a) + performed(&log_b),
        3,
        "each transition performed by exactly one node\n--- a ---\n{log_a}\n--- b ---\n{log_b}"
    );
    node_a.stop().await;
    node_b.stop().await;
}
