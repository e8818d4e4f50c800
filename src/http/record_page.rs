//! The opening record (开标记录) as a printable HTML page: the table of
//! bids as announced, the confirmations and objections, and the hashes and
//! signatures that make the printed page checkable against the transcript.
//! Times are shown in Asia/Shanghai; every value is HTML-escaped.

use serde_json::Value;

use crate::domain::time::{shanghai, Timestamp};
use crate::service::opening::RecordView;

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => esc(s),
        Value::Null => "—".into(),
        other => esc(&other.to_string()),
    }
}

fn when(ms: &Value) -> String {
    ms.as_i64()
        .map(|t| {
            Timestamp::from_millis(t)
                .to_utc()
                .with_timezone(&shanghai())
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .unwrap_or_else(|| "—".into())
}

fn status_zh(s: &str) -> &'static str {
    match s {
        "decrypted" => "已解密 decrypted",
        "revoked" => "撤销 revoked (bidder's fault)",
        "withdrawn" => "撤回 withdrawn (platform fault)",
        "pending" => "待解密 pending",
        _ => "—",
    }
}

pub fn render(r: &RecordView) -> String {
    // The page reads the record as the JSON it is published as.
    let rec = &serde_json::to_value(&r.record).unwrap_or_default();
    let closing = r
        .closing
        .as_ref()
        .map(|c| serde_json::to_value(c).unwrap_or_default());
    let fields: Vec<(String, String)> = rec["summary_fields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            (
                f["key"].as_str().unwrap_or_default().to_string(),
                f["label"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let mut rows = String::new();
    for (i, b) in rec["bids"].as_array().into_iter().flatten().enumerate() {
        let mut cells = String::new();
        for (key, _) in &fields {
            cells.push_str(&format!("<td>{}</td>", text(&b["summary"][key])));
        }
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td>{cells}<td>{}</td><td class=\"small\">{}</td></tr>\n",
            i + 1,
            text(&b["bidder_name"]),
            status_zh(b["status"].as_str().unwrap_or_default()),
            text(&b["reason"]),
        ));
    }
    let heads: String = fields
        .iter()
        .map(|(k, l)| format!("<th>{}</th>", esc(if l.is_empty() { k } else { l })))
        .collect();
    let mut after = String::new();
    if let Some(c) = &closing {
        after.push_str("<h2>确认与异议 / Confirmations and objections</h2><ul>");
        for k in c["confirmations"].as_array().into_iter().flatten() {
            after.push_str(&format!(
                "<li>{} 确认 confirmed at {}</li>",
                text(&k["bidder"]),
                when(&k["confirmed_at_ms"])
            ));
        }
        for o in c["objections"].as_array().into_iter().flatten() {
            after.push_str(&format!(
                "<li>{} 异议 objected at {}: “{}” — 答复 answer at {}: “{}”</li>",
                text(&o["bidder"]),
                when(&o["raised_at_ms"]),
                text(&o["text"]),
                when(&o["answered_at_ms"]),
                text(&o["answer"])
            ));
        }
        for b in c["no_response"].as_array().into_iter().flatten() {
            after.push_str(&format!(
                "<li>{} 未确认，视为认可 / no response, taken as accepting</li>",
                text(b)
            ));
        }
        after.push_str("</ul>");
    }
    format!(
        r#"<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<title>开标记录 Opening record — {name}</title>
<style>
body {{ font-family: "Noto Sans CJK SC", "PingFang SC", sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ border: 1px solid #444; padding: .3em .5em; text-align: left; }}
.small, code {{ font-size: .8em; word-break: break-all; }}
@media print {{ body {{ margin: 1cm; }} }}
</style></head><body>
<h1>开标记录 / Opening record</h1>
<p>项目 Project: {project}<br>标段 Section: {code} {name}<br>
投标截止（开标）时间 Deadline: {deadline}（北京时间 UTC+8）<br>
解密方式 Decryption: {mode}<br>唱标时间 Announced: {announced}</p>
<table><thead><tr><th>序号 No.</th><th>投标人 Bidder</th>{heads}<th>状态 Status</th><th>说明 Note</th></tr></thead>
<tbody>
{rows}</tbody></table>
{after}
<h2>校验 / Verification</h2>
<p class="small">记录哈希 Record hash (SHA-256 of JCS): <code>{hash}</code><br>
投标文件清单根 Manifest root: <code>{root}</code><br>
平台签名 Platform signature: <code>{psig}</code><br>
平台公钥 Platform key: <code>{pkey}</code><br>
监督签名 Supervisor countersignature: <code>{csig}</code><br>
监督公钥 Supervisor key: <code>{ckey}</code></p>
<p class="small">用 <code>kaibiao verify</code> 校验本标段的完整记录 / Check the full transcript with <code>kaibiao verify</code>.</p>
</body></html>
"#,
        name = text(&rec["section_name"]),
        project = text(&rec["project_name"]),
        code = text(&rec["section_code"]),
        deadline = when(&rec["deadline_ms"]),
        mode = text(&rec["decryption_mode"]),
        announced = when(&rec["announced_at_ms"]),
        hash = esc(&r.record_hash),
        root = text(&rec["manifest_root"]),
        psig = esc(r.platform_signature.as_deref().unwrap_or("—")),
        pkey = esc(&r.platform_key),
        csig = esc(r.countersignature.as_deref().unwrap_or("—")),
        ckey = esc(r.supervisor_key.as_deref().unwrap_or("—")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_page_escapes_what_bidders_wrote() {
        let record = serde_json::from_value(json!({
            "format": "kaibiao-opening-record/1", "section_id": "sec_1", "section_code": "1",
            "section_name": "<script>x</script>", "project_name": "p", "params_hash": null,
            "deadline_ms": 1, "manifest_root": "aa", "decryption_mode": "custodians",
            "window_started_at_ms": null, "window_ends_at_ms": null,
            "summary_fields": [{"key": "price", "label": "投标报价", "kind": "money", "required": true}],
            "key_releases": [],
            "bids": [{"envelope_hash": "h", "bidder": "org_1", "bidder_name": "A&B", "bid_id": "b",
                      "revision": 1, "status": "decrypted", "fault": null, "reason": null,
                      "via": "custodians", "summary": {"price": "1.00"}, "settled_at_ms": 2}],
            "outcome": "announced", "announced_at_ms": 3,
        }))
        .unwrap();
        let r = RecordView {
            record,
            record_hash: "ab".into(),
            closing: None,
            closing_hash: None,
            platform_signature: None,
            platform_key: "k".into(),
            countersignature: None,
            supervisor_key: None,
        };
        let page = render(&r);
        assert!(!page.contains("<script>x"));
        assert!(page.contains("A&amp;B") && page.contains("投标报价") && page.contains("1.00"));
    }
}
