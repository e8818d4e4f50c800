//! The opening (不见面开标): the room over WebSocket with the bidders'
//! sign-in (签到); the deadline on the accelerated clock, a late bid
//! refused; the manifest and every inclusion proof; three custodians
//! release their keys and every bid opens; 唱标; confirmations with one
//! objection answered; the record closed, signed and countersigned.

use serde_json::Value;

use super::bidding::{self, Bids, LATE_PRICE};
use super::cast::Cast;
use super::tender::Tender;
use super::{pad, short, wait_until, Demo};
use crate::client::opening::{own_summary, Watcher};
use crate::client::{Client, ClientError};
use crate::domain::time::Timestamp;

/// How long the demo waits for an event in the room.
const ROOM_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

pub async fn run(d: &mut Demo<'_>, cast: &Cast, t: &Tender, bids: &Bids) -> anyhow::Result<()> {
    let (sid, base) = (t.sid.as_str(), d.base().to_string());
    let (host, bidders) = (&cast.host.client, &cast.bidders);

    d.step("the opening room (不见面开标): bidders and the public watch over WebSocket; bidders sign in (签到)");
    // Resuming: the watchers sit unread for a minute of real time before
    // the deadline, past the room's heartbeat; they join again after the
    // last event they saw.
    let mut public = Watcher::connect(&base, sid, None, 0).await?.resuming();
    let mut watchers = Vec::new();
    for b in &bidders[..3] {
        watchers.push(
            Watcher::connect(&base, sid, b.client.token(), 0)
                .await?
                .resuming(),
        );
    }
    host.open_signin(sid).await?;
    for b in &bidders[..3] {
        b.client.sign_in(sid).await?;
    }
    let room: Value = host.opening(sid).await?;
    d.check(
        !room.to_string().contains(bidders[0].org_id.as_str()),
        "3 bidders signed in; before the deadline not even the host learns who",
    )?;

    d.step("the clock jumps to a minute before the deadline; the chronograph seals the section on time");
    let late_dir = bidding::seal_bid(d, t, &bidders[4], &bids.keys[4], LATE_PRICE, None).await?;
    d.clock
        .set(t.deadline.minus(chrono::Duration::minutes(1)), d.speed);
    wait_until(d.clock, t.deadline.plus(chrono::Duration::seconds(1))).await;
    let manifest = wait_for_manifest(&base, sid).await?;
    let late = bidders[4].client.submit(&late_dir, &mut |_, _| {}).await;
    d.check(
        matches!(&late, Err(ClientError::Api { code, .. }) if code == "deadline_passed"),
        &format!(
            "{}'s attempt after the deadline was refused (and recorded)",
            bidders[4].name
        ),
    )?;

    d.step("the manifest: the accepted envelope hashes and their Merkle root, in the log");
    check_manifest(d, cast, sid, &manifest["manifest"]).await?;

    d.step("decryption: 3 of the 5 custodians release their keys; every bid opens");
    let started = public
        .until(ROOM_WAIT, |f| f["kind"] == "opening.started")
        .await?;
    println!(
        "     the decryption window runs until {}",
        Timestamp::from_millis(started["data"]["window_ends_at_ms"].as_i64().unwrap_or(0))
            .shanghai_rfc3339()
    );
    for i in [0, 2, 4] {
        let c = &cast.custodians[i];
        let v = c
            .client
            .release_key(sid, &cast.identities[i], &t.section_keys[i])
            .await?;
        println!(
            "     {} released its key ({} of {})",
            c.name, v["released"], v["threshold"]
        );
    }
    public
        .until(ROOM_WAIT, |f| f["kind"] == "opening.announced")
        .await?;
    for w in &mut watchers {
        w.until(ROOM_WAIT, |f| f["kind"] == "opening.announced")
            .await?;
    }
    d.check(
        true,
        "the announcement reached the public and every bidder's socket",
    )?;

    d.step("唱标: every result at once — the opening record");
    let record = host.opening_record(sid).await?;
    let rbids = record["record"]["bids"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    println!(
        "     {:<14} {:>16} {:>10}  status",
        "bidder", "price (yuan)", "days"
    );
    for b in &rbids {
        println!(
            "     {} {:>16} {:>10}  {}",
            pad(cast.bidder_named(&b["bidder"]), 14),
            b["summary"]["price"].as_str().unwrap_or("—"),
            b["summary"]["duration_days"].as_str().unwrap_or("—"),
            b["status"].as_str().unwrap_or("")
        );
    }
    d.check(
        rbids.len() == 3
            && bidders.iter().zip(bids.prices).all(|(p, price)| {
                rbids.iter().any(|b| {
                    b["bidder"] == p.org_id.as_str()
                        && b["status"] == "decrypted"
                        && b["summary"]["price"] == price
                })
            }),
        "3 bids decrypted; each announced price is the one its bidder sealed",
    )?;

    d.step("confirmations: bidders sign the record's hash; one objects first and the host answers on the record");
    for i in [0, 2] {
        let mine = own_summary(&bids.standing[i], &bids.keys[i].1)?;
        bidders[i]
            .client
            .confirm(sid, &bidders[i].org_id, &bids.keys[i].0, Some(&mine))
            .await?;
        println!(
            "     {} checked its own line and confirmed",
            bidders[i].name
        );
    }
    let objection = bidders[1]
        .client
        .object(
            sid,
            "请核实我方工期是否按投标文件宣读 / please confirm our duration was read as sealed",
        )
        .await?;
    host.answer(
        sid,
        objection["id"].as_str().unwrap_or_default(),
        "经核对，工期按投标文件宣读为 540 日历天 / checked: 540 days, as sealed",
    )
    .await?;
    let mine = own_summary(&bids.standing[1], &bids.keys[1].1)?;
    bidders[1]
        .client
        .confirm(sid, &bidders[1].org_id, &bids.keys[1].0, Some(&mine))
        .await?;
    d.check(
        true,
        &format!(
            "{} objected, the host answered, and it confirmed",
            bidders[1].name
        ),
    )?;

    d.step("the host closes the record; the platform signs it and the supervisor countersigns");
    host.close_opening(sid).await?;
    cast.supervisor
        .client
        .countersign(sid, &cast.supervisor_key)
        .await?;
    public
        .until(ROOM_WAIT, |f| f["kind"] == "opening.countersigned")
        .await?;
    let signed = host.opening_record(sid).await?;
    d.check(
        signed["countersignature"].is_string(),
        &format!(
            "the opening record is closed and countersigned: {base}/api/public/sections/{sid}/opening-record.html"
        ),
    )
}

/// Prints the manifest and checks every accepted bid's inclusion proof
/// against its root, as each bidder can.
async fn check_manifest(
    d: &Demo<'_>,
    cast: &Cast,
    sid: &str,
    manifest: &Value,
) -> anyhow::Result<()> {
    let listed: Vec<String> = manifest["bids"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|b| b["envelope_hash"].as_str().map(str::to_string))
        .collect();
    for b in manifest["bids"].as_array().into_iter().flatten() {
        println!(
            "     {} revision {} envelope {}",
            pad(cast.bidder_named(&b["bidder"]), 14),
            b["revision"],
            short(b["envelope_hash"].as_str().unwrap_or(""))
        );
    }
    d.check(
        listed.len() == 3,
        "3 bids accepted (one superseded, one withdrawn, one late)",
    )?;
    let root = manifest["root"].as_str().unwrap_or("");
    println!("     root {root}");
    for h in &listed {
        let p: Value = d
            .anonymous()
            .get(&format!(
                "/api/public/sections/{sid}/manifest/proof?envelope_hash={h}"
            ))
            .await?;
        let proof: Vec<crate::crypto::merkle::Hash> = p["proof"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x.as_str().and_then(crate::crypto::hex_array))
            .collect();
        crate::crypto::merkle::verify_inclusion(
            p["index"].as_u64().unwrap_or(0),
            p["size"].as_u64().unwrap_or(0),
            &crate::crypto::merkle::leaf_hash(&hex::decode(h)?),
            &proof,
            &hex::decode(root)?,
        )
        .map_err(|e| anyhow::anyhow!("inclusion proof for {h}: {e}"))?;
    }
    d.check(
        true,
        "every accepted bidder's inclusion proof verifies against the root",
    )
}

/// The manifest, once the chronograph has sealed the section.
async fn wait_for_manifest(base: &str, sid: &str) -> anyhow::Result<Value> {
    let c = Client::new(base);
    for _ in 0..400 {
        match c
            .get::<Value>(&format!("/api/public/sections/{sid}/manifest"))
            .await
        {
            Ok(v) => return Ok(v),
            Err(e) if e.code() == Some("not_found") => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await
            }
            Err(e) => return Err(e.into()),
        }
    }
    anyhow::bail!("the section was not sealed in time")
}
