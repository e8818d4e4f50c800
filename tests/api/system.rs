//! Health, metrics, request ids, the error envelope for unknown routes and
//! methods, and bodies that are too big or not JSON.

use serde_json::json;

use crate::helpers::{spawn, TestStore};

#[actix_web::test]
async fn healthz_names_the_backend_and_schema() {
    let store = TestStore::new();
    let app = spawn(&store).start().await;
    let h = app.get("/healthz", None).await.expect(200);
    assert_eq!(h["status"], "ok");
    let backend = if store.is_postgres() {
        "postgres"
    } else {
        "sqlite"
    };
    assert_eq!(h["backend"], backend);
    assert_eq!(h["schema_version"], crate::helpers::latest_schema_version());
    if !store.is_postgres() {
        assert!(store.data_dir().join("kaibiao.sqlite3").is_file());
    }
    assert!(store.data_dir().join("keys/platform.ed25519").is_file());
    app.stop().await;
}

#[actix_web::test]
async fn metrics_count_requests_by_route_pattern() {
    let store = TestStore::new();
    let app = spawn(&store).start().await;
    app.get("/api/public/sections/sec_nothere", None)
        .await
        .expect(404);
    app.get("/healthz", None).await.expect(200);
    let text = app.scrape().await;
    assert!(
        text.contains("kaibiao_http_requests_total{route=\"/api/public/sections/{id}\",method=\"GET\",status=\"404\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("kaibiao_http_request_duration_seconds_bucket{route=\"/healthz\""),
        "{text}"
    );
    assert!(
        text.contains("kaibiao_db_pool_connections{state=\"idle\"}"),
        "{text}"
    );
    assert!(
        !text.contains("sec_nothere"),
        "raw paths must not reach the metrics"
    );
    app.stop().await;
}

#[actix_web::test]
async fn every_response_carries_a_request_id_and_errors_use_the_envelope() {
    let store = TestStore::new();
    let app = spawn(&store).start().await;
    let r = app.get("/api/nothing-here", None).await;
    let v = r.expect_error(404, "route_not_found");
    assert_eq!(
        r.headers.get("x-request-id").unwrap().to_str().unwrap(),
        v["request_id"]
    );

    // A client-chosen id that is plain and short is kept.
    let mut res = app
        .client
        .get(app.url("/healthz"))
        .insert_header(("X-Request-Id", "trace-0123456789"))
        .send()
        .await
        .unwrap();
    let _ = res.body().await;
    assert_eq!(
        res.headers().get("x-request-id").unwrap(),
        "trace-0123456789"
    );

    // Known path, unknown method.
    app.request("DELETE", "/api/public/sections", None, None)
        .await
        .expect_error(405, "method_not_allowed");
    app.stop().await;
}

#[actix_web::test]
async fn malformed_oversized_and_non_json_bodies_are_refused() {
    let store = TestStore::new();
    let app = spawn(&store)
        .config(|c| c.server.max_json_bytes = 2048)
        .start()
        .await;
    app.raw(
        "POST",
        "/api/auth/login",
        None,
        "application/json",
        b"{\"username\": ".to_vec(),
    )
    .await
    .expect_error(400, "malformed_json");
    app.raw(
        "POST",
        "/api/auth/login",
        None,
        "text/plain",
        b"{}".to_vec(),
    )
    .await
    .expect_error(415, "unsupported_media_type");
    let big = json!({"username": "x".repeat(4000), "password": "y"});
    app.post("/api/auth/login", None, big)
        .await
        .expect_error(413, "payload_too_large");
    let unknown = app
        .post(
            "/api/auth/login",
            None,
            json!({"username": "a", "password": "b", "remember": true}),
        )
        .await
        .expect_error(422, "validation_failed");
    assert!(unknown["details"][0]["message"]
        .as_str()
        .unwrap()
        .contains("unknown field `remember`"));
    app.stop().await;
}

#[actix_web::test]
async fn internal_errors_say_nothing_internal() {
    let store = TestStore::new();
    let app = spawn(&store).start().await;
    // Break the database under the running server: the next query fails.
    let db = app.db.clone();
    tokio::task::spawn_blocking(move || {
        let mut c = db.get_blocking().unwrap();
        diesel::RunQueryDsl::execute(
            diesel::sql_query("DROP TABLE section_registrations"),
            &mut **c,
        )
        .unwrap();
        diesel::RunQueryDsl::execute(
            diesel::sql_query("ALTER TABLE sections RENAME TO sections_gone"),
            &mut **c,
        )
        .unwrap();
    })
    .await
    .unwrap();
    let r = app.get("/api/public/sections", None).await;
    let v = r.expect_error(500, "internal");
    let text = r.text();
    for leak in ["sections", "relation", "no such table", "diesel", "SQL"] {
        assert!(!text.contains(leak), "internal detail {leak:?} leaked: {v}");
    }
    app.stop().await;
}
