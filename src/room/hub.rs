//! The hub: the live rooms of this node and how they hear about new events.
//!
//! - The database is the truth. A room folds the section's events in
//!   sequence order as it reads them; nothing reaches a watcher that is not
//!   committed, and nothing is skipped: a room always reads "everything after
//!   the last sequence number I folded".
//! - Wake-ups are hints that there is something to read: from this node's
//!   own commits ([`crate::db::Db::commits`]), from other nodes through
//!   PostgreSQL's `LISTEN kaibiao_events`, and from a slow poll in case a
//!   hint is lost. Order never depends on them.
//! - Each event is encoded once per view and handed to a bounded broadcast
//!   channel; a watcher that falls behind by more than its capacity gets a
//!   fresh snapshot instead of the backlog, and never holds anyone up.
//! - Presence is counted per node and, with several nodes, exchanged through
//!   `NOTIFY kaibiao_presence` every few seconds.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytestring::ByteString;
use serde_json::{json, Value};
use tokio::sync::{broadcast, Notify, OnceCell};

use super::state::{project_event, RoomState, SectionInfo, View};
use crate::db::{events, sections as sections_repo, DbConn};
use crate::domain::ids::SectionId;
use crate::error::{AppError, AppResult};
use crate::service::sections::SectionParams;
use crate::service::Services;

/// Events kept per room for watchers that resume.
const HISTORY: usize = 4096;
/// The most missed events sent on a resume (the snapshot covers the rest).
const MAX_REPLAY: usize = 1000;
const IDLE_CLOSE: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_secs(1);
const PRESENCE_EVERY: Duration = Duration::from_secs(2);
const REMOTE_PRESENCE_TTL: Duration = Duration::from_secs(15);
pub const PRESENCE_CHANNEL: &str = "kaibiao_presence";

/// One encoded frame, shared by every watcher of its view.
#[derive(Clone, Debug)]
pub struct Frame {
    /// The event's sequence number; `None` for presence frames.
    pub seq: Option<i64>,
    pub text: ByteString,
}

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or_default()
}

fn idx(v: View) -> usize {
    match v {
        View::Public => 0,
        View::Staff => 1,
    }
}

const VIEWS: [View; 2] = [View::Public, View::Staff];

struct Core {
    state: RoomState,
    history: VecDeque<(i64, [Option<ByteString>; 2])>,
    snapshots: [Option<(i64, ByteString)>; 2],
}

impl Core {
    fn snapshot(&mut self, view: View) -> ByteString {
        let i = idx(view);
        if let Some((seq, text)) = &self.snapshots[i] {
            if *seq == self.state.seq {
                return text.clone();
            }
        }
        let text: ByteString = json!({
            "type": "snapshot", "seq": self.state.seq, "view": view.as_str(),
            "state": self.state.view(view),
        })
        .to_string()
        .into();
        self.snapshots[i] = Some((self.state.seq, text.clone()));
        text
    }
}

/// Who is watching, on this node and (reported) on the others.
#[derive(Default)]
struct Presence {
    roles: BTreeMap<String, usize>,
    bidders: BTreeMap<String, usize>,
    remote: HashMap<String, (Instant, Value)>,
    dirty: bool,
}

/// A watcher's place in the presence count; removed when dropped.
pub struct PresenceGuard {
    room: Arc<Room>,
    role: String,
    bidder: Option<String>,
}

impl Drop for PresenceGuard {
    fn drop(&mut self) {
        self.room.watchers.fetch_sub(1, Ordering::SeqCst);
        let mut p = self.room.presence.lock().expect("presence");
        if let Some(n) = p.roles.get_mut(&self.role) {
            *n -= 1;
            if *n == 0 {
                p.roles.remove(&self.role);
            }
        }
        if let Some(b) = &self.bidder {
            if let Some(n) = p.bidders.get_mut(b) {
                *n -= 1;
                if *n == 0 {
                    p.bidders.remove(b);
                }
            }
        }
        p.dirty = true;
    }
}

pub struct Room {
    pub section_id: SectionId,
    core: Mutex<Core>,
    txs: [broadcast::Sender<Frame>; 2],
    /// Events read and broadcast at a time (a quarter of the queue).
    batch: usize,
    wake: Notify,
    ready: OnceCell<()>,
    watchers: AtomicUsize,
    presence: Mutex<Presence>,
    names: Mutex<HashMap<String, String>>,
}

/// What a new watcher gets: its subscription, then the frames to send first
/// (the snapshot, then the events it missed).
pub struct Joined {
    pub rx: broadcast::Receiver<Frame>,
    pub frames: Vec<ByteString>,
    pub seq: i64,
    pub phase: String,
}

impl Room {
    fn new(section_id: SectionId, queue: usize) -> Room {
        let queue = queue.max(4);
        Room {
            section_id,
            core: Mutex::new(Core {
                state: RoomState::default(),
                history: VecDeque::new(),
                snapshots: [None, None],
            }),
            txs: [broadcast::channel(queue).0, broadcast::channel(queue).0],
            batch: (queue / 4).clamp(1, 500),
            wake: Notify::new(),
            ready: OnceCell::new(),
            watchers: AtomicUsize::new(0),
            presence: Mutex::new(Presence::default()),
            names: Mutex::new(HashMap::new()),
        }
    }

    /// Subscribes and returns what to send first. Under the room's lock, so
    /// no event falls between the snapshot and the subscription.
    pub fn join(&self, view: View, after: i64) -> Joined {
        let mut core = self.core.lock().expect("room core");
        let rx = self.txs[idx(view)].subscribe();
        let mut frames = vec![core.snapshot(view)];
        let i = idx(view);
        let missed: Vec<ByteString> = core
            .history
            .iter()
            .filter(|(s, _)| *s > after)
            .filter_map(|(_, f)| f[i].clone())
            .collect();
        let skip = missed.len().saturating_sub(MAX_REPLAY);
        frames.extend(missed.into_iter().skip(skip));
        Joined {
            rx,
            frames,
            seq: core.state.seq,
            phase: core.state.phase.clone(),
        }
    }

    /// The frames after `last` for a watcher that missed at most `max`
    /// events in a burst, from the room's history; `None` when the history
    /// no longer reaches back that far or the gap is longer (then the
    /// watcher gets a snapshot instead). Returns the frames and the sequence
    /// they bring the watcher to.
    pub fn replay(&self, view: View, last: i64, max: usize) -> Option<(Vec<ByteString>, i64)> {
        let core = self.core.lock().expect("room core");
        let seq = core.state.seq;
        let gap = usize::try_from(seq - last).ok()?;
        if gap > max {
            return None;
        }
        let oldest = core.history.front().map_or(seq + 1, |(s, _)| *s);
        if oldest > last + 1 {
            return None;
        }
        let i = idx(view);
        let mut frames: Vec<ByteString> = core
            .history
            .iter()
            .rev()
            .take_while(|(s, _)| *s > last)
            .filter_map(|(_, f)| f[i].clone())
            .collect();
        frames.reverse();
        Some((frames, seq))
    }

    /// A fresh snapshot for a watcher that fell behind, and its sequence.
    pub fn resync(&self, view: View) -> (ByteString, i64) {
        let mut core = self.core.lock().expect("room core");
        (core.snapshot(view), core.state.seq)
    }

    pub fn phase(&self) -> String {
        self.core.lock().expect("room core").state.phase.clone()
    }

    /// Counts a watcher in until the guard drops.
    pub fn enter(self: &Arc<Self>, role: &str, bidder: Option<(String, String)>) -> PresenceGuard {
        self.watchers.fetch_add(1, Ordering::SeqCst);
        let mut p = self.presence.lock().expect("presence");
        *p.roles.entry(role.to_string()).or_default() += 1;
        let bidder = bidder.map(|(org, name)| {
            self.names.lock().expect("names").insert(org.clone(), name);
            *p.bidders.entry(org.clone()).or_default() += 1;
            org
        });
        p.dirty = true;
        PresenceGuard {
            room: Arc::clone(self),
            role: role.to_string(),
            bidder,
        }
    }

    pub fn watchers(&self) -> usize {
        self.watchers.load(Ordering::SeqCst)
    }

    /// Reads and folds every committed event after the last one folded, and
    /// broadcasts each once per view. Safe to call from anywhere: a reader
    /// that finds its events already folded stops.
    pub async fn catch_up(&self, svc: &Services) -> AppResult<usize> {
        let mut total = 0;
        loop {
            let after = self.core.lock().expect("room core").state.seq;
            let batch = self.batch;
            let sid = self.section_id.clone();
            let rows = svc
                .db
                .run(move |c| Ok(events::since(c, &sid, after, batch as i64)?))
                .await?;
            let n = rows.len();
            total += self.fold(rows);
            if n < batch {
                return Ok(total);
            }
            // Let the watchers drain a batch before the next: a backlog
            // delivered all at once would overflow every queue, even the
            // queues of watchers who keep up.
            tokio::task::yield_now().await;
        }
    }

    /// Folds and broadcasts events read in order; returns how many were new.
    fn fold(&self, rows: Vec<events::EventRow>) -> usize {
        let mut total = 0;
        let mut core = self.core.lock().expect("room core");
        for e in rows {
            if e.seq <= core.state.seq {
                // Folded meanwhile by another reader.
                continue;
            }
            if e.seq != core.state.seq + 1 {
                // Cannot happen (sequence numbers are gap-free and
                // committed in order); read again from where we are.
                tracing::warn!(section = %self.section_id, seq = e.seq, at = core.state.seq, "event out of order; rereading");
                break;
            }
            let payload: Value = serde_json::from_str(&e.payload).unwrap_or(Value::Null);
            core.state.apply(e.seq, &e.kind, &payload, e.at);
            let sent = now_us();
            let mut frames: [Option<ByteString>; 2] = [None, None];
            for v in VIEWS {
                if let Some(mut data) = project_event(&e.kind, &payload, v) {
                    if v == View::Public {
                        // The public never learns which staff member acted.
                        super::state::strip_staff(&mut data);
                    }
                    let mut frame = json!({
                        "type": "event", "seq": e.seq, "kind": e.kind, "at_ms": e.at,
                        "data": data, "sent_at_us": sent,
                    });
                    if v == View::Staff {
                        frame["actor"] = json!(e.actor_id);
                    }
                    let text: ByteString = frame.to_string().into();
                    frames[idx(v)] = Some(text.clone());
                    // No receivers is fine.
                    let _ = self.txs[idx(v)].send(Frame {
                        seq: Some(e.seq),
                        text,
                    });
                }
            }
            core.history.push_back((e.seq, frames));
            if core.history.len() > HISTORY {
                core.history.pop_front();
            }
            total += 1;
        }
        total
    }

    /// Sends the presence frames if anything changed.
    fn publish_presence(&self, force: bool) {
        let (roles, bidders) = {
            let mut p = self.presence.lock().expect("presence");
            let now = Instant::now();
            p.remote
                .retain(|_, (at, _)| now.duration_since(*at) < REMOTE_PRESENCE_TTL);
            if !p.dirty && !force {
                return;
            }
            p.dirty = false;
            let mut roles = p.roles.clone();
            let mut bidders = p.bidders.clone();
            for (_, v) in p.remote.values() {
                for (k, n) in v["roles"].as_object().into_iter().flatten() {
                    *roles.entry(k.clone()).or_default() += n.as_u64().unwrap_or(0) as usize;
                }
                for (k, n) in v["bidders"].as_object().into_iter().flatten() {
                    *bidders.entry(k.clone()).or_default() += n.as_u64().unwrap_or(0) as usize;
                }
            }
            (roles, bidders)
        };
        // Before the deadline even the number of bidders watching is secret.
        let sealed = !matches!(self.phase().as_str(), "draft" | "published");
        let names = self.names.lock().expect("names").clone();
        for v in VIEWS {
            let mut counts = roles.clone();
            if !sealed {
                counts.remove("bidder");
            }
            let mut frame = json!({"type": "presence", "counts": counts, "at_us": now_us()});
            if v == View::Staff && sealed {
                frame["bidders_online"] = json!(bidders
                    .keys()
                    .map(|b| json!({"bidder": b, "name": names.get(b)}))
                    .collect::<Vec<_>>());
            }
            let _ = self.txs[idx(v)].send(Frame {
                seq: None,
                text: frame.to_string().into(),
            });
        }
    }

    fn local_presence(&self) -> Value {
        let p = self.presence.lock().expect("presence");
        json!({"roles": p.roles, "bidders": p.bidders})
    }
}

/// The rooms of this node.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

struct Inner {
    svc: Services,
    node: String,
    rooms: Mutex<HashMap<SectionId, Arc<Room>>>,
    connections: AtomicU64,
    runtime: tokio::runtime::Handle,
}

impl Hub {
    /// Starts the hub's background work: routing wake-ups to rooms, and on
    /// PostgreSQL the LISTEN thread and the presence exchange.
    pub fn start(
        svc: Services,
        node: String,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> (Hub, Vec<tokio::task::JoinHandle<()>>) {
        let hub = Hub {
            inner: Arc::new(Inner {
                svc: svc.clone(),
                node,
                rooms: Mutex::new(HashMap::new()),
                connections: AtomicU64::new(0),
                runtime: tokio::runtime::Handle::current(),
            }),
        };
        let (remote_tx, remote_rx) = tokio::sync::mpsc::unbounded_channel();
        if let crate::config::DatabaseTarget::Postgres(url) = svc
            .config
            .database_target()
            .unwrap_or(crate::config::DatabaseTarget::Sqlite(Default::default()))
        {
            let stop = shutdown.clone();
            std::thread::Builder::new()
                .name("kaibiao-listen".into())
                .spawn(move || listen(url, remote_tx, stop))
                .expect("spawn the LISTEN thread");
        }
        let tasks = vec![
            tokio::spawn(hub.clone().route(remote_rx, shutdown.clone())),
            tokio::spawn(hub.clone().presence_loop(shutdown)),
        ];
        (hub, tasks)
    }

    pub fn node(&self) -> &str {
        &self.inner.node
    }

    /// Live connections on this node, over its lifetime (for ids).
    pub fn next_connection(&self) -> u64 {
        self.inner.connections.fetch_add(1, Ordering::Relaxed)
    }

    /// The room of a section, loaded on first use.
    pub async fn room(&self, section_id: &SectionId) -> AppResult<Arc<Room>> {
        let (room, fresh) = {
            let mut rooms = self.inner.rooms.lock().expect("rooms");
            match rooms.get(section_id) {
                Some(r) => (Arc::clone(r), false),
                None => {
                    let queue = self.inner.svc.config.room.queue_frames;
                    let r = Arc::new(Room::new(section_id.clone(), queue));
                    rooms.insert(section_id.clone(), Arc::clone(&r));
                    (r, true)
                }
            }
        };
        let svc = self.inner.svc.clone();
        let loaded = room
            .ready
            .get_or_try_init(|| async {
                let sid = room.section_id.clone();
                let info = svc.db.run(move |c| section_info(c, &sid)).await?;
                room.core.lock().expect("room core").state = RoomState::new(info, "draft");
                room.catch_up(&svc).await?;
                AppResult::Ok(())
            })
            .await;
        if let Err(e) = loaded {
            self.inner.rooms.lock().expect("rooms").remove(section_id);
            return Err(e);
        }
        if fresh {
            self.inner
                .runtime
                .spawn(self.clone().keep(Arc::clone(&room)));
        }
        Ok(room)
    }

    /// A room's own task: reads new events when woken (or every second),
    /// and retires the room when nobody has watched it for a while.
    async fn keep(self, room: Arc<Room>) {
        let svc = self.inner.svc.clone();
        let mut idle_since: Option<Instant> = None;
        loop {
            tokio::select! {
                _ = room.wake.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
            }
            match room.catch_up(&svc).await {
                Ok(n) if n > 0 => svc.metrics.add("kaibiao_room_events_total", &[], n as u64),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(section = %room.section_id, error = %e, "room could not read events")
                }
            }
            if room.watchers() == 0 {
                let since = *idle_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= IDLE_CLOSE {
                    let mut rooms = self.inner.rooms.lock().expect("rooms");
                    // Somebody may have joined while we decided.
                    if room.watchers() == 0 {
                        rooms.remove(&room.section_id);
                        return;
                    }
                }
            } else {
                idle_since = None;
            }
        }
    }

    fn wake(&self, section_id: &str) {
        if let Some(r) = self.inner.rooms.lock().expect("rooms").get(section_id) {
            r.wake.notify_one();
        }
    }

    fn wake_all(&self) {
        for r in self.inner.rooms.lock().expect("rooms").values() {
            r.wake.notify_one();
        }
    }

    fn rooms(&self) -> Vec<Arc<Room>> {
        self.inner
            .rooms
            .lock()
            .expect("rooms")
            .values()
            .cloned()
            .collect()
    }

    async fn route(
        self,
        mut remote: tokio::sync::mpsc::UnboundedReceiver<(String, String)>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut commits = self.inner.svc.db.commits();
        loop {
            tokio::select! {
                c = commits.recv() => match c {
                    Ok(section) => self.wake(&section),
                    Err(broadcast::error::RecvError::Lagged(_)) => self.wake_all(),
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                r = remote.recv() => match r {
                    Some((channel, payload)) if channel == events::NOTIFY_CHANNEL => {
                        if payload.is_empty() {
                            self.wake_all();
                        } else {
                            self.wake(&payload);
                        }
                    }
                    Some((_, payload)) => self.remote_presence(&payload),
                    None => {
                        // The LISTEN thread is gone (SQLite, or shutting down).
                        let _ = shutdown.changed().await;
                        return;
                    }
                },
                _ = shutdown.changed() => return,
            }
        }
    }

    fn remote_presence(&self, payload: &str) {
        let Ok(v) = serde_json::from_str::<Value>(payload) else {
            return;
        };
        let (Some(node), Some(section)) = (v["node"].as_str(), v["section"].as_str()) else {
            return;
        };
        if node == self.inner.node {
            return;
        }
        if let Some(r) = self.inner.rooms.lock().expect("rooms").get(section) {
            let mut p = r.presence.lock().expect("presence");
            p.remote
                .insert(node.to_string(), (Instant::now(), v.clone()));
            p.dirty = true;
        }
    }

    async fn presence_loop(self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let pg = self.inner.svc.db.backend() == crate::db::Backend::Postgres;
        let mut tick = tokio::time::interval(PRESENCE_EVERY);
        let mut n: u64 = 0;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            n += 1;
            let rooms = self.rooms();
            for r in &rooms {
                // Every 10 s a full frame even without change (new nodes,
                // expired remote counts).
                r.publish_presence(n.is_multiple_of(5));
            }
            if pg {
                let reports: Vec<String> = rooms
                    .iter()
                    .filter(|r| r.watchers() > 0)
                    .map(|r| {
                        json!({"node": self.inner.node, "section": r.section_id,
                               "roles": r.local_presence()["roles"],
                               "bidders": r.local_presence()["bidders"]})
                        .to_string()
                    })
                    .collect();
                if !reports.is_empty() {
                    let r = self
                        .inner
                        .svc
                        .db
                        .run(move |c| {
                            if let DbConn::Pg(pg) = c {
                                for p in reports {
                                    use diesel::RunQueryDsl;
                                    diesel::sql_query("SELECT pg_notify('kaibiao_presence', $1)")
                                        .bind::<diesel::sql_types::Text, _>(p)
                                        .execute(pg)?;
                                }
                            }
                            Ok(())
                        })
                        .await;
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "presence report failed");
                    }
                }
            }
        }
    }
}

fn section_info(c: &mut DbConn, id: &SectionId) -> AppResult<SectionInfo> {
    let (s, p) = sections_repo::section_with_project(c, id)?
        .ok_or_else(|| AppError::not_found("section"))?;
    let params: Option<SectionParams> = s
        .params_json
        .as_ref()
        .map(|_| SectionParams::of(&s))
        .transpose()?;
    Ok(SectionInfo {
        id: s.id.to_string(),
        code: s.code.clone(),
        name: s.name.clone(),
        project_name: p.name.clone(),
        category: p.category.to_string(),
        deadline_ms: s.deadline_at.unwrap_or_default(),
        decryption_mode: s.decryption_mode.to_string(),
        window_ms: s.window_secs * 1000,
        threshold: s.threshold,
        custodians: params.as_ref().map_or(0, |p| p.custodians.len()),
        min_bidders: s.min_bidders,
        summary_fields: params.map(|p| p.summary_fields).unwrap_or_default(),
    })
}

/// The LISTEN thread (PostgreSQL): a dedicated connection that hands every
/// notification to the hub. It polls the socket every 10 ms (diesel's
/// `notifications_iter` does not block) and reconnects after a failure; a
/// missed notification only delays a room until its next poll.
fn listen(
    url: String,
    tx: tokio::sync::mpsc::UnboundedSender<(String, String)>,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    use diesel::{Connection, RunQueryDsl};
    while !*stop.borrow() {
        let mut conn = match diesel::PgConnection::establish(&url) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "LISTEN connection failed; retrying");
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        let listening = diesel::sql_query(format!("LISTEN {}", events::NOTIFY_CHANNEL))
            .execute(&mut conn)
            .and_then(|_| {
                diesel::sql_query(format!("LISTEN {PRESENCE_CHANNEL}")).execute(&mut conn)
            });
        if let Err(e) = listening {
            tracing::warn!(error = %e, "LISTEN failed; retrying");
            std::thread::sleep(Duration::from_secs(1));
            continue;
        }
        // Anything committed while we were not listening.
        if tx
            .send((events::NOTIFY_CHANNEL.into(), String::new()))
            .is_err()
        {
            return;
        }
        'poll: while !*stop.borrow() {
            for n in conn.notifications_iter() {
                match n {
                    Ok(n) => {
                        if tx.send((n.channel, n.payload)).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "LISTEN connection lost; reconnecting");
                        break 'poll;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
