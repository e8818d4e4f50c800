//! The OpenAPI description matches the routes, both ways, and every
//! described path is really served.

use std::collections::BTreeSet;

use crate::helpers::{spawn, TestStore};

#[actix_web::test]
async fn every_route_is_described_and_every_description_is_a_route() {
    let store = TestStore::new();
    let app = spawn(&store).start().await;
    let doc = app.get("/api/openapi.json", None).await.expect(200);
    assert_eq!(doc["openapi"], "3.0.3");
    let mut described = BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            described.insert((method.to_uppercase(), path.clone()));
            assert!(op["summary"].is_string(), "{method} {path} has no summary");
            assert!(
                op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                "{method} {path} has no responses"
            );
            // Every $ref resolves.
            for r in refs(op) {
                let name = r.trim_start_matches("#/components/schemas/");
                assert!(
                    doc["components"]["schemas"][name].is_object(),
                    "{method} {path}: dangling {r}"
                );
            }
        }
    }
    let routes: BTreeSet<(String, String)> = kaibiao::http::route_table()
        .into_iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    let undocumented: Vec<_> = routes.difference(&described).collect();
    let phantom: Vec<_> = described.difference(&routes).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from openapi.json: {undocumented:?}"
    );
    assert!(
        phantom.is_empty(),
        "openapi.json describes routes that do not exist: {phantom:?}"
    );

    // And the server really answers each described path (not "no such route").
    for (method, path) in &described {
        let concrete = path
            .replace("{id}", "x_1")
            .replace("{doc}", "x_2")
            .replace("{file}", "app.js");
        let r = if method == "GET" {
            app.get(&concrete, None).await
        } else {
            app.raw(method, &concrete, None, "application/json", b"{}".to_vec())
                .await
        };
        if r.status == 404 {
            assert_ne!(
                r.json()["error"],
                "route_not_found",
                "{method} {path} is described but not routed"
            );
        }
        assert_ne!(
            r.status, 405,
            "{method} {path} is described but the method is not routed"
        );
    }
    app.stop().await;
}

fn refs(v: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                if k == "$ref" {
                    out.push(x.as_str().unwrap().to_string());
                } else {
                    out.extend(refs(x));
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| out.extend(refs(x))),
        _ => {}
    }
    out
}
