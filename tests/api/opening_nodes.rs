//! The opening beyond one process: watchers on a second node that share
//! only the PostgreSQL database see every event in order (LISTEN/NOTIFY),
//! and a server killed with SIGKILL in the middle of decryption finishes
//! after a restart with no event lost or repeated.

use std::collections::BTreeMap;
use std::time::Duration;

use kaibiao::client::opening::Watcher;
use kaibiao::client::Client;
use kaibiao::db::{events, opening as opening_repo, Db};
use serde_json::Value;

use crate::cli::Node;
use crate::fixture::{Fixture, Fx, Phase};
use crate::helpers::{spawn, TestStore};

const WAIT: Duration = Duration::from_secs(60);

/// Every event frame up to and including the first of `kind`.
async fn events_until(w: &mut Watcher, kind: &str) -> Vec<Value> {
    let mut frames = crate::fixture::events_until(w, kind).await;
    frames.retain(|f| f["type"] == "event");
    frames
}

fn seqs(frames: &[Value]) -> Vec<i64> {
    frames.iter().map(|f| f["seq"].as_i64().unwrap()).collect()
}

/// The section's events as stored, in order.
async fn stored_events(db: &Db, section: &str) -> Vec<events::EventRow> {
    let (db, s) = (
        db.clone(),
        kaibiao::domain::ids::SectionId::from_db(section.to_string()),
    );
    tokio::task::spawn_blocking(move || {
        let mut c = db.get_blocking().unwrap();
        events::since(&mut c, &s, 0, 100_000).unwrap()
    })
    .await
    .unwrap()
}

/// `(pending, settled)` bids of the section.
async fn settlement(db: &Db, section: &str) -> (usize, usize) {
    let (db, s) = (
        db.clone(),
        kaibiao::domain::ids::SectionId::from_db(section.to_string()),
    );
    tokio::task::spawn_blocking(move || {
        let mut c = db.get_blocking().unwrap();
        let rows = opening_repo::bid_openings_of(&mut c, &s).unwrap();
        let pending = rows
            .iter()
            .filter(|r| r.status == kaibiao::domain::states::OpeningStatus::Pending)
            .count();
        (pending, rows.len() - pending)
    })
    .await
    .unwrap()
}

/// Sequence numbers run 1, 2, 3, … without a gap or a repeat, and each bid
/// settles exactly once.
fn assert_whole(stored: &[events::EventRow], bids: usize) {
    let s: Vec<i64> = stored.iter().map(|e| e.seq).collect();
    assert_eq!(s, (1..=s.len() as i64).collect::<Vec<_>>(), "gap-free");
    let mut settled: BTreeMap<String, usize> = BTreeMap::new();
    for e in stored.iter().filter(|e| e.kind == "opening.bid_settled") {
        let p: Value = serde_json::from_str(&e.payload).unwrap();
        *settled
            .entry(p["envelope_hash"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert_eq!(settled.len(), bids, "every bid settled: {settled:?}");
    assert!(
        settled.values().all(|n| *n == 1),
        "each exactly once: {settled:?}"
    );
}

#[actix_web::test]
async fn watchers_on_another_node_see_every_event_of_the_opening_in_order() {
    let fx: Fx = Fixture::on(TestStore::postgres())
        .min_bidders(3)
        .prices(&[Some("3100000.00"), Some("3200000.00"), Some("3300000.00")])
        .at(Phase::Bidding)
        .await;
    // A second node: its own server, pool and room hub, sharing only the
    // database (and the test's clock). It learns of node A's commits
    // through PostgreSQL's NOTIFY alone.
    let b = spawn(&fx.store).clock(fx.app.fixed_clock()).start().await;
    let mut on_b = Watcher::connect(&b.base, &fx.section, None, 0)
        .await
        .unwrap();
    let mut host_on_b = Watcher::connect(&b.base, &fx.section, Some(&fx.w.host.token), 0)
        .await
        .unwrap();
    let mut on_a = fx.watch(None, 0).await;

    // Everything is done through node A.
    fx.pass_deadline().await;
    events_until(&mut on_b, "opening.started").await;
    for i in 0..3 {
        fx.release(i).await.unwrap();
    }
    let seen_a = events_until(&mut on_a, "opening.confirming").await;
    let seen_b = events_until(&mut on_b, "opening.confirming").await;
    let staff_b = events_until(&mut host_on_b, "opening.confirming").await;

    let stored = stored_events(&fx.app.db, &fx.section).await;
    assert_whole(&stored, 3);
    // Node A's watcher saw every public event in order; node B's the same
    // events in the same order, as they happened — none lost, none twice.
    let tail = |frames: &[Value]| -> Vec<i64> {
        let started = frames
            .iter()
            .position(|f| f["kind"] == "opening.started")
            .map_or(0, |i| i + 1);
        seqs(&frames[started..])
    };
    assert_eq!(tail(&seen_a), seqs(&seen_b));
    assert!(seqs(&seen_b).windows(2).all(|w| w[0] < w[1]), "in order");
    // The staff view on B sees every stored event after the start, each once.
    let staff: Vec<i64> = seqs(&staff_b);
    let stored_after: Vec<i64> = stored
        .iter()
        .map(|e| e.seq)
        .filter(|s| *s > staff[0] - 1 && *s <= *staff.last().unwrap())
        .collect();
    assert_eq!(staff, stored_after, "the staff view on B is the whole log");
    assert!(
        seen_b.iter().any(|f| f["kind"] == "opening.announced"
            && f["data"]["record"]["bids"][2]["summary"]["price"].is_string()),
        "the announcement, with prices, reached node B"
    );
    b.stop().await;
    fx.app.stop().await;
}

#[actix_web::test]
async fn a_server_killed_mid_decryption_finishes_after_restart_with_nothing_lost_or_repeated() {
    // The world has three bidders; large bids make each decryption take a while.
    const BIDS: usize = 3;
    let fx = Fixture::new()
        .min_bidders(3)
        .prices(&[Some("4100000.00"); BIDS])
        .documents(64 << 20)
        .at(Phase::Decrypting)
        .await;
    fx.release(0).await.unwrap();
    fx.release(1).await.unwrap();
    // Hand the section over to a `kaibiao serve` process on the same data
    // directory and database, whose clock carries on from the test's.
    let now = fx.app.now();
    let Fx {
        app,
        w,
        section,
        custodian_keys,
        store,
        ..
    } = fx;
    let db = app.db.clone();
    app.stop().await;
    let data = store.data_dir().display().to_string();
    let real = kaibiao::clock::Clock::now(&kaibiao::clock::SystemClock);
    // Accelerated ×4 with virtual time = `now` at this real instant:
    // anchor + 4·(real − anchor) = now  ⇒  anchor = (4·real − now) / 3.
    // (Fast enough that the killed node's 30 s lease on the decryption job
    // lapses in a few real seconds; slow enough that the 30 min window does
    // not close meanwhile.)
    let anchor =
        kaibiao::domain::time::Timestamp::from_millis((4 * real.millis() - now.millis()) / 3);
    let mut env = vec![
        ("KAIBIAO_CLOCK__MODE", "accelerated".to_string()),
        ("KAIBIAO_CLOCK__SPEED", "4".to_string()),
        ("KAIBIAO_CLOCK__ANCHOR", anchor.rfc3339()),
        ("KAIBIAO_RULES__SESSION_TTL_HOURS", "720".to_string()),
        ("KAIBIAO_CHRONOGRAPH__POLL_INTERVAL_MS", "100".to_string()),
        // One bid at a time, so the kill lands between two of them.
        ("KAIBIAO_OPENING__DECRYPT_THREADS", "1".to_string()),
    ];
    if let Some(url) = &store.database_url {
        env.push(("KAIBIAO_DATABASE__URL", url.clone()));
    }
    let args = ["--data-dir", data.as_str(), "--listen", "127.0.0.1:0"];
    let mut first = Node::start(&args, &env);
    // The third release starts the decryption; the first settled bid (seen
    // in the database itself, the fastest way to know) is the signal to
    // pull the plug.
    let c = &w.custodians[2];
    Client::new(&first.base)
        .with_token(&c.person.token)
        .release_key(&section, &c.identity, &custodian_keys[2])
        .await
        .unwrap();
    let until = std::time::Instant::now() + WAIT;
    while settlement(&db, &section).await.1 == 0 {
        assert!(std::time::Instant::now() < until, "no bid settled in time");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    first.kill();
    let (pending, settled) = settlement(&db, &section).await;
    assert!(
        pending > 0 && settled > 0,
        "the kill must land mid-decryption (pending {pending}, settled {settled})"
    );

    let second = Node::start(&args, &env);
    let mut watcher = Watcher::connect(&second.base, &section, None, 0)
        .await
        .unwrap();
    let frames = events_until(&mut watcher, "opening.confirming").await;
    let stored = stored_events(&db, &section).await;
    assert_whole(&stored, BIDS);
    // A watcher joining afterwards replays the whole opening gap-free.
    let s = seqs(&frames);
    assert!(s.windows(2).all(|w| w[1] == w[0] + 1), "{s:?}");
    assert_eq!(*s.last().unwrap(), stored.last().unwrap().seq);
    assert!(
        second.log().contains("custodian decryption done"),
        "the restarted node finished the job:\n{}",
        second.log()
    );
    drop(second);
    drop(store);
}
