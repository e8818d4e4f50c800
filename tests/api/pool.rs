//! The database pool heals: when PostgreSQL drops every connection of
//! kaibiao (an administrator ending them, a restart), the requests that meet
//! a dead connection get a clear 503 in the envelope — never a 500 — the
//! room keeps its watchers, and the next requests succeed without
//! restarting kaibiao.

use std::time::Duration;

use diesel::Connection;
use kaibiao::client::opening::Watcher;
use serde_json::json;

use crate::helpers::{spawn, TestStore};
use crate::world::World;

/// Ends every connection the app holds, from outside (as `pg_terminate_backend`
/// does when an administrator or a restart ends them).
fn drop_every_connection(store: &TestStore) -> usize {
    let (base, schema) = store.pg_schema().expect("PostgreSQL");
    let mut c = diesel::PgConnection::establish(base).unwrap();
    #[derive(diesel::QueryableByName)]
    struct Ended {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let r: Vec<Ended> = diesel::RunQueryDsl::load(
        diesel::sql_query(
            "SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity \
             WHERE application_name = $1 AND pid <> pg_backend_pid()",
        )
        .bind::<diesel::sql_types::Text, _>(schema),
        &mut c,
    )
    .unwrap();
    r[0].n as usize
}

#[actix_web::test]
async fn the_pool_heals_when_postgresql_drops_every_connection() {
    let store = TestStore::postgres();
    let app = spawn(&store)
        .config(|c| c.database.pool_size = 4)
        .start()
        .await;
    let w = World::build(&app).await;
    let s = w.published(&app, 30).await;
    let path = format!("/api/public/sections/{s}");
    // Several connections in the pool, idle.
    let warm: Vec<_> = (0..4).map(|_| app.get(&path, None)).collect();
    for r in futures_util::future::join_all(warm).await {
        r.expect(200);
    }
    let mut watcher = Watcher::connect(&app.base, &s, None, 0).await.unwrap();

    let ended = drop_every_connection(&store);
    assert!(ended >= 2, "ended {ended} connections (pool and LISTEN)");

    // The requests that meet a dead connection are told to retry; none
    // fails with an internal error. How many meet one depends on who goes
    // first: a background pass (the outbox, the chronograph) that meets a
    // dead connection marks the others for a ping before their next use, and
    // then no request sees one at all. What must hold is that at most one
    // request per pooled connection is refused, and that every request after
    // the first success succeeds.
    let mut unavailable = 0;
    let mut answered = 0;
    while answered < 20 {
        let r = app.get(&path, None).await;
        match r.status.as_u16() {
            200 => answered += 1,
            503 => {
                r.expect_error(503, "unavailable");
                assert_eq!(answered, 0, "a failure after the pool had healed");
                unavailable += 1;
                assert!(unavailable <= 4, "the pool does not heal");
            }
            other => panic!("{other}: {}", r.text()),
        }
    }

    // A change after the drop reaches the watcher that joined before it.
    app.post(
        &format!("/api/sections/{s}/opening/notices"),
        Some(&w.host.token),
        json!({"text": "数据库已恢复 / the database is back"}),
    )
    .await
    .expect(200);
    let f = watcher
        .until(Duration::from_secs(10), |f| {
            f["type"] == "event" && f["kind"] == "room.notice"
        })
        .await
        .unwrap();
    assert_eq!(f["data"]["text"], "数据库已恢复 / the database is back");
    app.stop().await;
}
