//! The API description is generated from the route table and the handlers'
//! types: it describes every route and nothing else, every success answer
//! has a concrete schema (never a bare object), every reference resolves,
//! no two types share a name, and every described path is really served.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::helpers::{spawn, TestStore};

#[actix_web::test]
async fn every_route_is_described_and_every_description_is_a_route() {
    let store = TestStore::new();
    let app = spawn(&store).start().await;
    let doc = app.get("/api/openapi.json", None).await.expect(200);
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(
        doc,
        kaibiao::http::api_description().json,
        "the served description is the generated one"
    );
    let mut described = BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            described.insert((method.to_uppercase(), path.clone()));
            assert!(op["summary"].is_string(), "{method} {path} has no summary");
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
        "routes not described: {undocumented:?}"
    );
    assert!(phantom.is_empty(), "described but not routed: {phantom:?}");

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
        assert_ne!(r.status, 405, "{method} {path} is described but not routed");
    }
    app.stop().await;
}

#[test]
fn every_success_answer_has_a_concrete_schema() {
    let generated = kaibiao::http::api_description();
    assert!(
        generated.conflicts.is_empty(),
        "two types share these schema names: {:?}",
        generated.conflicts
    );
    let doc = &generated.json;
    let mut problems = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            let ok: Vec<_> = responses
                .iter()
                .filter(|(s, _)| s.starts_with('2') || s.as_str() == "101")
                .collect();
            if ok.is_empty() {
                problems.push(format!("{method} {path}: no success response"));
            }
            for (status, r) in ok {
                for (media, c) in r["content"].as_object().into_iter().flatten() {
                    let mut seen = BTreeSet::new();
                    if let Some(at) = bare(doc, &c["schema"], "", &mut seen) {
                        problems.push(format!("{method} {path} {status} {media}: bare at {at:?}"));
                    }
                }
            }
            if let Some(body) = op.get("requestBody") {
                for (media, c) in body["content"].as_object().into_iter().flatten() {
                    let mut seen = BTreeSet::new();
                    if let Some(at) = bare(doc, &c["schema"], "", &mut seen) {
                        problems.push(format!("{method} {path} request {media}: bare at {at:?}"));
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Where `schema` (following references) has a member that says nothing of
/// its shape: `{}`, or an object with neither properties nor a declared
/// shape for its members. Named opaque documents declare theirs
/// (`additionalProperties`) and say where they are specified.
fn bare(doc: &Value, schema: &Value, at: &str, seen: &mut BTreeSet<String>) -> Option<String> {
    if let Some(r) = schema["$ref"].as_str() {
        if !seen.insert(r.to_string()) {
            return None;
        }
        let name = r.trim_start_matches("#/components/schemas/");
        return bare(
            doc,
            &doc["components"]["schemas"][name],
            &format!("{at}<{name}>"),
            seen,
        );
    }
    let o = schema.as_object()?;
    for key in ["oneOf", "allOf", "anyOf"] {
        if let Some(list) = o.get(key).and_then(Value::as_array) {
            for (i, s) in list.iter().enumerate() {
                if let Some(b) = bare(doc, s, &format!("{at}.{key}[{i}]"), seen) {
                    return Some(b);
                }
            }
            return None;
        }
    }
    let types: Vec<&str> = match o.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    if types.is_empty() && !o.contains_key("enum") && !o.contains_key("const") {
        return Some(at.to_string());
    }
    if types.contains(&"object") {
        match (o.get("properties"), o.get("additionalProperties")) {
            (Some(p), _) => {
                for (k, s) in p.as_object().into_iter().flatten() {
                    if let Some(b) = bare(doc, s, &format!("{at}.{k}"), seen) {
                        return Some(b);
                    }
                }
            }
            (None, Some(Value::Bool(true))) if o.contains_key("description") => {}
            (None, Some(a)) if a.is_object() => return bare(doc, a, &format!("{at}.*"), seen),
            _ => return Some(at.to_string()),
        }
    }
    if types.contains(&"array") {
        return bare(doc, &o["items"], &format!("{at}[]"), seen);
    }
    None
}

fn refs(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == "$ref" {
                    out.push(x.as_str().unwrap().to_string());
                } else {
                    out.extend(refs(x));
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| out.extend(refs(x))),
        _ => {}
    }
    out
}
