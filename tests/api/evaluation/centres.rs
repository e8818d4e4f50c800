//! Centres anchored outside the platform (PROTOCOL §14.1): a partner
//! centre's registration is its own signed file; the platform refuses one
//! without that signature, and logs each registration it takes as a
//! `centre.registered` leaf — once, however often it starts.

use std::path::Path;

use kaibiao::app::{Application, BuildOptions};
use kaibiao::crypto::{sha256_hex, sign};
use kaibiao::evaluation::pass::Centre;
use serde_json::{json, Value};

use crate::helpers::{spawn, TestApp, TestStore};

/// Every `centre.registered` leaf of the log, in order.
async fn registrations(app: &TestApp) -> Vec<Value> {
    app.log_entries()
        .await
        .iter()
        .map(|e| e["leaf"].clone())
        .filter(|l| l["type"] == "centre.registered")
        .collect()
}

fn put(dir: &Path, file: &str, v: Value) {
    std::fs::write(dir.join(file), v.to_string()).unwrap();
}

async fn start(store: &TestStore, trust: &Path) -> TestApp {
    let dir = trust.to_path_buf();
    spawn(store)
        .config(move |c| c.evaluation.trust_dir = dir)
        .start()
        .await
}

/// Starting the platform on `trust` fails; the reason.
async fn refused(store: &TestStore, trust: &Path) -> String {
    let mut config = store.config();
    config.evaluation.trust_dir = trust.to_path_buf();
    match Application::build(config, BuildOptions::default()).await {
        Ok(_) => panic!("the platform started on a bad trust directory"),
        Err(e) => format!("{e:#}"),
    }
}

#[actix_web::test]
async fn each_centre_registration_is_signed_by_the_centre_and_logged_once() {
    let store = TestStore::new();
    let trust = tempfile::tempdir().unwrap();
    let gz_key = sign::generate();
    let gz = Centre::signed("GZ-GGZY", "广州公共资源交易中心", &gz_key);
    put(trust.path(), "GZ-GGZY.json", json!(gz));

    let app = start(&store, trust.path()).await;
    let host = app.services().config.evaluation.centre_code.clone();
    let first = registrations(&app).await;
    // The partner's and this centre's own, each naming the hash of the
    // registration its centre signed, in no section's chain.
    assert_eq!(first.len(), 2, "{first:?}");
    assert!(first
        .iter()
        .any(|l| l["statement_hash"] == sha256_hex(gz.statement().as_bytes())));
    let own = Centre::signed(
        &host,
        &app.services().config.evaluation.centre_name,
        &app.services().centre_key,
    );
    assert!(first
        .iter()
        .any(|l| l["statement_hash"] == sha256_hex(own.statement().as_bytes())));
    for l in &first {
        assert_eq!(l.as_object().unwrap().len(), 4, "{l}");
        assert!(l["at_ms"].is_i64() && l["chain"].is_string(), "{l}");
    }
    app.stop().await;

    // Started again on the same registrations: nothing more is logged.
    let app = start(&store, trust.path()).await;
    assert_eq!(registrations(&app).await, first);
    app.stop().await;

    // The centre renames itself and signs again: a new leaf beside the old.
    let renamed = Centre::signed("GZ-GGZY", "广州市公共资源交易中心", &gz_key);
    put(trust.path(), "GZ-GGZY.json", json!(renamed));
    let app = start(&store, trust.path()).await;
    let now = registrations(&app).await;
    assert_eq!(now.len(), 3);
    assert_eq!(now[..2], first[..]);
    assert_eq!(
        now[2]["statement_hash"],
        sha256_hex(renamed.statement().as_bytes())
    );
    app.stop().await;

    // Bad registrations keep the platform from starting and log nothing.
    let unsigned = json!({"format": "kaibiao-centre/1", "code": "GZ-GGZY",
        "name": "广州", "public_key": gz.public_key});
    put(trust.path(), "GZ-GGZY.json", unsigned);
    let e = refused(&store, trust.path()).await;
    assert!(
        e.contains("GZ-GGZY.json") && e.contains("re-export it"),
        "{e}"
    );
    let mut altered = renamed.clone();
    altered.name = "别的中心".into();
    put(trust.path(), "GZ-GGZY.json", json!(altered));
    let e = refused(&store, trust.path()).await;
    assert!(e.contains("not signed by the centre's key"), "{e}");
    // Signed by someone else (the platform, say) for the centre's key.
    let mut forged = Centre::signed("GZ-GGZY", "广州", &sign::generate());
    forged.public_key = gz.public_key.clone();
    put(trust.path(), "GZ-GGZY.json", json!(forged));
    let e = refused(&store, trust.path()).await;
    assert!(e.contains("not signed by the centre's key"), "{e}");

    put(trust.path(), "GZ-GGZY.json", json!(renamed));
    let app = start(&store, trust.path()).await;
    assert_eq!(registrations(&app).await, now);
    app.stop().await;
}
