//! The bidding (投标): every bidder makes and registers its keys, obtains
//! the documents (获取招标文件), seals its bid on its own machine and
//! submits it, with a verified promise at once and a verified receipt after
//! the log's next flush; one supersedes its bid with a
//! revision, another withdraws; the host learns nothing of who has bid.

use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use serde_json::{json, Value};

use super::cast::{Cast, Party};
use super::tender::Tender;
use super::{short, Demo};
use crate::client::{self, SealRequest};
use crate::clock::Clock;
use crate::crypto::{sign, x25519};

/// A bidder's keys: signing, and encryption.
pub type BidderKeys = (SigningKey, x25519::SecretKey);

pub struct Bids {
    /// Every bidder's keys, by bidder.
    pub keys: Vec<BidderKeys>,
    /// The sealed bid that counts of bidders 0, 1 (its revision) and 2.
    pub standing: [PathBuf; 3],
    /// The prices those bids were sealed with.
    pub prices: [&'static str; 3],
}

const PRICES: [&str; 5] = [
    "79800000.00",
    "81250000.00",
    "77600000.00",
    "80400000.00",
    "76000000.00",
];
const REVISED_PRICE: &str = "78900000.00";
/// Real time to wait for a flush on the demo's accelerated clock.
const RECEIPT_WAIT: std::time::Duration = std::time::Duration::from_secs(60);
/// The late bidder's price (it never opens).
pub const LATE_PRICE: &str = PRICES[4];

pub async fn run(d: &mut Demo<'_>, cast: &Cast, t: &Tender) -> anyhow::Result<Bids> {
    let sid = &t.sid;
    d.step("bidders make and register their keys, obtain the documents, seal and submit");
    let mut keys = Vec::new();
    for b in &cast.bidders {
        let s = sign::generate();
        let e = x25519::SecretKey::generate();
        b.client.register_ed25519("bidder_signing", &s).await?;
        b.client.register_x25519(&e).await?;
        let _: Value = b
            .client
            .post(&format!("/api/sections/{sid}/registration"), &json!({}))
            .await?;
        keys.push((s, e));
    }
    let platform = d.sandbox.services.platform_public_hex();
    let mut dirs = Vec::new();
    for i in 0..4 {
        let dir = seal_bid(d, t, &cast.bidders[i], &keys[i], PRICES[i], None).await?;
        let p = cast.bidders[i].client.submit(&dir, &mut |_, _| {}).await?;
        p.verify_promise(&platform, &p.receipt.envelope_hash)
            .map_err(|e| anyhow::anyhow!("promise: {e}"))?;
        println!(
            "     {} submitted {} — signed promise verified (to be logged at {})",
            cast.bidders[i].name,
            short(&p.receipt.envelope_hash),
            crate::domain::time::Timestamp::from_millis(p.receipt.flush_at_ms).shanghai_rfc3339()
        );
        dirs.push(dir);
    }
    d.step("the log takes the commitments in its next steady flush, padded with cover leaves");
    for (i, dir) in dirs.iter().enumerate() {
        let r = cast.bidders[i]
            .client
            .await_receipt(dir, false, RECEIPT_WAIT)
            .await?;
        r.verify(&platform, &r.receipt.envelope_hash)
            .map_err(|e| anyhow::anyhow!("receipt: {e}"))?;
        println!(
            "     {} — receipt verified, the promise kept (log entry {})",
            cast.bidders[i].name,
            r.log_index().unwrap_or_default()
        );
    }

    d.step("one bidder supersedes its bid with a revision; another withdraws");
    let revised = seal_bid(
        d,
        t,
        &cast.bidders[1],
        &keys[1],
        REVISED_PRICE,
        Some(&dirs[1]),
    )
    .await?;
    let r2 = cast.bidders[1]
        .client
        .submit(&revised, &mut |_, _| {})
        .await?;
    d.check(
        r2.receipt.revision == 2,
        &format!(
            "{} revision 2 accepted, superseding revision 1",
            cast.bidders[1].name
        ),
    )?;
    let w = cast.bidders[3]
        .client
        .withdraw(&dirs[3], &keys[3].0, d.clock.now().millis())
        .await?;
    let wr = cast.bidders[3]
        .client
        .await_receipt(&dirs[3], true, RECEIPT_WAIT)
        .await?;
    d.check(
        w.receipt.kind == "withdrawal" && wr.fulfils(&w),
        &format!(
            "{} withdrew with a signed statement and got a promise, then its receipt",
            cast.bidders[3].name
        ),
    )?;

    d.step("before the deadline the host sees no bidder and no count");
    let view: Value = cast
        .host
        .client
        .get(&format!("/api/sections/{sid}/events"))
        .await?;
    let text = view.to_string();
    let leaked = cast
        .bidders
        .iter()
        .any(|b| text.contains(b.org_id.as_str()));
    d.check(!leaked, "no bidder named in the section's event record")?;
    let mut dirs = dirs.into_iter();
    let first = dirs.next().expect("four bids");
    let third = dirs.nth(1).expect("four bids");
    Ok(Bids {
        keys,
        standing: [first, revised, third],
        prices: [PRICES[0], REVISED_PRICE, PRICES[2]],
    })
}

/// Seals `who`'s bid at `price` for the tender into a new directory, as the
/// bidder's own machine does (`kaibiao bid seal`).
pub async fn seal_bid(
    d: &Demo<'_>,
    t: &Tender,
    who: &Party,
    keys: &BidderKeys,
    price: &str,
    supersedes: Option<&Path>,
) -> anyhow::Result<PathBuf> {
    let tag = hex::encode(crate::crypto::random_bytes::<4>());
    let docs = d.dir.join(format!("{}-{tag}.docs", who.user_id));
    let body = format!(
        "{} 技术标与商务标 / technical and commercial offer\n",
        who.name
    )
    .repeat(20_000);
    std::fs::write(&docs, body)?;
    let out = d.dir.join(format!("{}-{tag}.bid", who.user_id));
    let fields = [
        ("price".to_string(), price.to_string()),
        ("duration_days".to_string(), "540".to_string()),
        ("quality".to_string(), "合格 / pass".to_string()),
    ]
    .into();
    client::seal_to_dir(
        SealRequest {
            params_json: &t.params_json,
            params_hash: &t.params_hash,
            bidder: &who.org_id,
            signing: &keys.0,
            encryption_public: keys.1.public_key(),
            fields,
            documents: &docs,
            supersedes,
            now_ms: d.clock.now().millis(),
        },
        &out,
        &mut |_| {},
    )?;
    Ok(out)
}
