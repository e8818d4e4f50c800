//! `kaibiao bench room`: many watchers in one opening room.
//!
//! The server runs in this process; the watchers run in a child process
//! (`kaibiao bench room-watchers`, hidden), each a real WebSocket over its
//! own TCP connection, so that the server's memory per connection can be
//! read from this process alone. Every event frame carries `sent_at_us`,
//! the instant the room handed it to the connections; each watcher notes
//! when it arrived. Two rounds in the same run: without and with one
//! stalled watcher (which never reads), so its effect on everyone else is
//! measured against the same machine a moment earlier.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::measure::{rss, work_dir};
use super::platform::platform;
use crate::clock::{SharedClock, SystemClock};

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// What the watcher process reports when told to stop.
#[derive(Debug, Serialize, Deserialize)]
struct Report {
    connected: usize,
    failed: usize,
    /// Event frames received, over all watchers.
    deliveries: usize,
    /// Snapshots received after joining (resynchronisations).
    resyncs: usize,
    /// Per event sequence: (deliveries, latest arrival − sent, µs).
    events: BTreeMap<i64, (usize, i64)>,
    /// Every delivery's latency, µs, sorted.
    latencies: Vec<i64>,
}

fn pct(sorted: &[i64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1000.0
}

pub fn bench_room(
    watchers: usize,
    events: usize,
    rate: f64,
    dir: Option<PathBuf>,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        watchers > 0 && events > 0 && rate > 0.0,
        "--watchers, --events and --rate must be positive"
    );
    actix_web::rt::System::new().block_on(async move {
        let (_t, dir) = work_dir(dir)?;
        let clock: SharedClock = Arc::new(SystemClock);
        let b = platform(&dir, 0, chrono::Duration::days(30), 1 << 20, clock).await?;
        let addr = b.sandbox.base.trim_start_matches("http://").to_string();
        let mut rounds = Vec::new();
        for stalled in [false, true] {
            let before = rss().0;
            let mut child = Command::new(std::env::current_exe()?)
                .args([
                    "bench",
                    "room-watchers",
                    "--addr",
                    &addr,
                    "--section",
                    &b.section,
                    "--watchers",
                    &watchers.to_string(),
                ])
                .args(stalled.then_some("--stalled"))
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()?;
            let mut out = BufReader::new(child.stdout.take().expect("stdout"));
            let mut line = String::new();
            let t = Instant::now();
            // The child connects everyone, then says READY.
            let ready = actix_web::rt::task::spawn_blocking(move || {
                let mut l = String::new();
                out.read_line(&mut l).map(|_| (l, out))
            })
            .await??;
            line.push_str(&ready.0);
            let mut out = ready.1;
            anyhow::ensure!(line.starts_with("READY"), "the watchers: {line}");
            let connect_time = t.elapsed();
            // Let the server's buffers settle before reading its memory.
            actix_web::rt::time::sleep(Duration::from_secs(2)).await;
            let after = rss().0;
            let per_conn = (after.saturating_sub(before) * 1024) as f64 / watchers as f64;

            let gap = Duration::from_secs_f64(1.0 / rate);
            for i in 0..events {
                let t = Instant::now();
                b.host
                    .notice(&b.section, &format!("bench notice {i}"))
                    .await?;
                if let Some(rest) = gap.checked_sub(t.elapsed()) {
                    actix_web::rt::time::sleep(rest).await;
                }
            }
            actix_web::rt::time::sleep(Duration::from_secs(3)).await;
            let mut stdin = child.stdin.take().expect("stdin");
            writeln!(stdin, "STOP")?;
            drop(stdin);
            let report: Report = actix_web::rt::task::spawn_blocking(move || {
                let mut l = String::new();
                out.read_line(&mut l)?;
                serde_json::from_str(&l).map_err(anyhow::Error::from)
            })
            .await??;
            child.wait()?;
            rounds.push((stalled, connect_time, per_conn, report));
        }
        b.sandbox.stop().await;

        println!("{watchers} watchers on one node, {events} events at {rate}/s");
        let mut p99s = Vec::new();
        for (stalled, connect, per_conn, r) in &rounds {
            let mut reach: Vec<i64> = r.events.values().map(|(_, max)| *max).collect();
            reach.sort_unstable();
            let expected = r.connected * events;
            println!(
                "  round {}: {} connected ({} failed) in {:.1} s; {} of {} deliveries, {} resyncs",
                if *stalled { "with one stalled watcher" } else { "without a stalled watcher" },
                r.connected,
                r.failed,
                connect.as_secs_f64(),
                r.deliveries,
                expected,
                r.resyncs
            );
            println!(
                "    per delivery (sent → received): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                pct(&r.latencies, 0.5),
                pct(&r.latencies, 0.99),
                pct(&r.latencies, 1.0)
            );
            println!(
                "    per event, until the last watcher has it: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                pct(&reach, 0.5),
                pct(&reach, 0.99),
                pct(&reach, 1.0)
            );
            if !stalled {
                println!(
                    "    server memory: {:.1} KB per connection (RSS growth with everyone connected)",
                    per_conn / 1000.0
                );
            }
            p99s.push((pct(&reach, 0.99), *per_conn, r.deliveries == expected));
        }
        let (p99, per_conn, whole) = p99s[0];
        let (p99_stalled, _, whole_stalled) = p99s[1];
        println!(
            "  targets: p99 ≤ 150 ms to reach all: {}; ≤ 16 KB per connection: {}; every event to every watcher: {}; \
             the stalled watcher's effect on the others' p99: ×{:.2} ({})",
            if p99 <= 150.0 && p99_stalled <= 150.0 { "met" } else { "NOT met" },
            if per_conn <= 16_000.0 { "met" } else { "NOT met" },
            if whole && whole_stalled { "yes" } else { "NO" },
            p99_stalled / p99,
            if p99_stalled <= 150.0 { "nobody held up" } else { "held up" }
        );
        Ok(())
    })
}

/// The child: `watchers` WebSockets on `addr`, reading until told to stop
/// on stdin; then one JSON report on stdout.
pub fn room_watchers(
    addr: String,
    section: String,
    watchers: usize,
    stalled: bool,
) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let addr: SocketAddr = addr.parse()?;
        let path = format!("/api/sections/{section}/room");
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let connected = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(tokio::sync::Semaphore::new(256));
        let mut tasks = Vec::with_capacity(watchers);
        for _ in 0..watchers {
            let (path, stop, c, f, gate) = (
                path.clone(),
                stop_rx.clone(),
                connected.clone(),
                failed.clone(),
                gate.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let permit = gate.acquire_owned().await.expect("gate");
                match connect(addr, &path, None).await {
                    Ok((s, rest)) => {
                        drop(permit);
                        c.fetch_add(1, Ordering::SeqCst);
                        read_frames(s, rest, stop).await
                    }
                    Err(_) => {
                        f.fetch_add(1, Ordering::SeqCst);
                        Watched::default()
                    }
                }
            }));
        }
        while connected.load(Ordering::SeqCst) + failed.load(Ordering::SeqCst) < watchers {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The stalled watcher: a tiny receive buffer, and it never reads.
        let _stalled = if stalled {
            Some(connect(addr, &path, Some(4096)).await?)
        } else {
            None
        };
        println!(
            "READY {} {}",
            connected.load(Ordering::SeqCst),
            failed.load(Ordering::SeqCst)
        );
        std::io::stdout().flush()?;
        tokio::task::spawn_blocking(|| {
            let mut l = String::new();
            let _ = std::io::stdin().read_line(&mut l);
        })
        .await?;
        let _ = stop_tx.send(true);
        let mut r = Report {
            connected: connected.load(Ordering::SeqCst),
            failed: failed.load(Ordering::SeqCst),
            deliveries: 0,
            resyncs: 0,
            events: BTreeMap::new(),
            latencies: Vec::new(),
        };
        for t in tasks {
            let w = t.await?;
            r.resyncs += w.resyncs;
            for (seq, lat) in w.got {
                r.deliveries += 1;
                let e = r.events.entry(seq).or_insert((0, 0));
                e.0 += 1;
                e.1 = e.1.max(lat);
                r.latencies.push(lat);
            }
        }
        r.latencies.sort_unstable();
        println!("{}", serde_json::to_string(&r)?);
        std::io::stdout().flush()?;
        anyhow::Ok(())
    })
}

#[derive(Default)]
struct Watched {
    got: Vec<(i64, i64)>,
    resyncs: usize,
}

/// Opens a WebSocket (public view, joining at the present).
async fn connect(
    addr: SocketAddr,
    path: &str,
    rcvbuf: Option<u32>,
) -> std::io::Result<(tokio::net::TcpStream, Vec<u8>)> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    if let Some(n) = rcvbuf {
        socket.set_recv_buffer_size(n)?;
    }
    let mut s = socket.connect(addr).await?;
    let req = format!(
        "GET {path}?after=999999999 HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 2048];
    loop {
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            if !buf.starts_with(b"HTTP/1.1 101") {
                return Err(std::io::Error::other("not upgraded"));
            }
            return Ok((s, buf.split_off(end + 4)));
        }
    }
}

#[derive(Deserialize)]
struct Frame {
    #[serde(rename = "type")]
    kind: String,
    seq: Option<i64>,
    sent_at_us: Option<i64>,
}

async fn read_frames(
    mut s: tokio::net::TcpStream,
    mut buf: Vec<u8>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Watched {
    let mut w = Watched::default();
    let mut joined = false;
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        // Every whole frame in the buffer.
        while let Some((op, start, len)) = header(&buf) {
            if buf.len() < start + len {
                break;
            }
            let payload = &buf[start..start + len];
            match op {
                1 => {
                    if let Ok(f) = serde_json::from_slice::<Frame>(payload) {
                        match f.kind.as_str() {
                            "event" => {
                                if let (Some(seq), Some(sent)) = (f.seq, f.sent_at_us) {
                                    w.got.push((seq, now_us() - sent));
                                }
                            }
                            "snapshot" if joined => w.resyncs += 1,
                            "snapshot" => joined = true,
                            _ => {}
                        }
                    }
                }
                9 => {
                    // Pong, masked (a client's frames must be), same payload.
                    let mut pong = vec![0x8a, 0x80 | len as u8, 0, 0, 0, 0];
                    pong.extend_from_slice(payload);
                    let _ = s.write_all(&pong).await;
                }
                8 => return w,
                _ => {}
            }
            buf.drain(..start + len);
        }
        tokio::select! {
            r = s.read(&mut chunk) => match r {
                Ok(0) | Err(_) => return w,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            },
            _ = stop.changed() => return w,
        }
    }
}

/// `(opcode, payload start, payload length)` of the frame at the start of
/// `b` (server frames are unmasked), if its header is complete.
fn header(b: &[u8]) -> Option<(u8, usize, usize)> {
    if b.len() < 2 {
        return None;
    }
    let op = b[0] & 0x0f;
    match b[1] & 0x7f {
        126 if b.len() >= 4 => Some((op, 4, u16::from_be_bytes([b[2], b[3]]) as usize)),
        127 if b.len() >= 10 => Some((
            op,
            10,
            u64::from_be_bytes(b[2..10].try_into().ok()?) as usize,
        )),
        126 | 127 => None,
        n => Some((op, 2, n as usize)),
    }
}
