//! The tender: the host drafts a construction section (deadline 25 days
//! out, 3 of 5 custodians), each custodian registers the section's key, the
//! tender documents are uploaded and the section is published; its
//! parameters are fetched and checked against their hash.

use serde_json::{json, Value};

use super::cast::Cast;
use super::Demo;
use crate::clock::Clock;
use crate::crypto::x25519;
use crate::domain::time::Timestamp;

/// The published section, as the bidders and custodians know it.
pub struct Tender {
    pub sid: String,
    pub deadline: Timestamp,
    pub params_json: String,
    pub params_hash: String,
    /// The custodians' section keys, by custodian.
    pub section_keys: Vec<x25519::SecretKey>,
}

pub async fn publish(d: &mut Demo<'_>, cast: &Cast) -> anyhow::Result<Tender> {
    let host = &cast.host.client;
    d.step("the host drafts a construction section: deadline 25 days out, 3-of-5 custodians");
    let project: Value = host
        .post(
            "/api/projects",
            &json!({
                "code": "SF-2026-WATER-01", "name": "示范市第二水厂扩建工程", "category": "construction",
                "must_tender_by_law": true, "tenderer_org_id": cast.tenderer_org,
                "regulator_org_id": cast.regulator,
                "description": "日供水 20 万吨的扩建工程 / expansion to 200,000 m³ a day",
            }),
        )
        .await?;
    let deadline = d.clock.now().plus(chrono::Duration::days(25));
    let section: Value = host
        .post(
            &format!("/api/projects/{}/sections", project["id"].as_str().unwrap_or_default()),
            &json!({
                "code": "SF-01-01", "name": "第一标段 土建及安装", "description": "土建、设备安装及调试",
                "deadline": deadline.rfc3339(), "window_minutes": 60, "decryption_mode": "custodians",
                "custodians": cast.custodians.iter().map(|c| c.user_id.clone()).collect::<Vec<_>>(),
                "threshold": 3, "min_bidders": 3, "ceiling_price": "86000000.00",
                "evaluation": {
                    "method": "comprehensive",
                    "items": [
                        {"id": "price", "name": "投标报价 / Price", "kind": "price", "max_points": "40"},
                        {"id": "tech", "name": "技术方案 / Technical", "kind": "technical", "max_points": "45"},
                        {"id": "biz", "name": "商务 / Commercial", "kind": "business", "max_points": "15"}
                    ],
                    "price": {"benchmark": "trimmed_mean", "trim": 1, "k_coefficients": ["0.95", "0.97", "1"],
                              "deduct_above_per_pct": "1", "deduct_below_per_pct": "0.5"}
                }
            }),
        )
        .await?;
    let sid = section["id"].as_str().unwrap_or_default().to_string();

    d.step("each custodian makes this section's X25519 key on its device and registers it, signed");
    let mut section_keys = Vec::new();
    for (c, id) in cast.custodians.iter().zip(&cast.identities) {
        let k = x25519::SecretKey::generate();
        c.client
            .register_section_key(&sid, &c.user_id, id, &k)
            .await?;
        section_keys.push(k);
    }
    d.check(
        section_keys.len() == 5,
        "5 section keys registered before publication",
    )?;

    d.step("the tender documents are uploaded, and the section is published");
    d.sandbox
        .upload(
            host,
            &sid,
            "招标文件.pdf",
            b"%PDF-1.7 demo tender documents",
        )
        .await?;
    let published: Value = host
        .post(&format!("/api/sections/{sid}/publish"), &json!({}))
        .await?;
    let (_, params_hash, params_json) = d.anonymous().params(&sid).await?;
    d.check(
        published["params_hash"] == params_hash.as_str(),
        "published parameters fetched and checked against their hash",
    )?;
    println!("     params_hash {params_hash}");
    Ok(Tender {
        sid,
        deadline,
        params_json,
        params_hash,
        section_keys,
    })
}
