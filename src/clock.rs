//! The one source of time. Every timed rule (deadlines, windows, token expiry,
//! back-off) reads `Clock::now`; nothing calls `SystemTime::now` directly.
//!
//! Three clocks:
//! - [`SystemClock`] for production;
//! - [`FixedClock`] for tests: time moves only when the test says so;
//! - [`AcceleratedClock`] for demos: virtual time runs `speed` times faster than
//!   real time from an anchor. Two processes given the same anchor and speed agree on
//!   the virtual time, so several nodes can share one accelerated clock.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::domain::time::Timestamp;

pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> Timestamp;

    /// How long to sleep in real time until the clock reads `t` (zero if it
    /// already does). A fixed clock never gets there by itself: it answers
    /// with `None`, and waiters rely on [`Clock::changed`].
    fn real_duration_until(&self, t: Timestamp) -> Option<Duration>;

    /// Completes when the clock is moved by hand (fixed and accelerated
    /// clocks can be); `None` for the system clock.
    fn changed(&self) -> Option<Arc<Notify>> {
        None
    }

    /// Human description for logs and `/healthz`.
    fn describe(&self) -> String;

    /// Clock milliseconds per real millisecond (1 for the system clock, 0
    /// for a fixed one): what a client needs to run a countdown.
    fn rate(&self) -> f64 {
        1.0
    }
}

pub type SharedClock = Arc<dyn Clock>;

fn real_now_ms() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    d.as_millis() as i64
}

#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(real_now_ms())
    }
    fn real_duration_until(&self, t: Timestamp) -> Option<Duration> {
        let ms = t.millis() - real_now_ms();
        Some(Duration::from_millis(ms.max(0) as u64))
    }
    fn describe(&self) -> String {
        "system".into()
    }
}

/// A clock that stands still until moved. `set`/`advance` wake every waiter.
#[derive(Debug)]
pub struct FixedClock {
    now: AtomicI64,
    notify: Arc<Notify>,
}

impl FixedClock {
    pub fn new(t: Timestamp) -> Self {
        Self {
            now: AtomicI64::new(t.millis()),
            notify: Arc::new(Notify::new()),
        }
    }
    pub fn set(&self, t: Timestamp) {
        self.now.store(t.millis(), Ordering::SeqCst);
        self.notify.notify_waiters();
    }
    pub fn advance(&self, d: chrono::Duration) {
        self.now.fetch_add(d.num_milliseconds(), Ordering::SeqCst);
        self.notify.notify_waiters();
    }
}

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.now.load(Ordering::SeqCst))
    }
    fn real_duration_until(&self, t: Timestamp) -> Option<Duration> {
        (t <= self.now()).then_some(Duration::ZERO)
    }
    fn changed(&self) -> Option<Arc<Notify>> {
        Some(self.notify.clone())
    }
    fn describe(&self) -> String {
        format!("fixed at {}", self.now())
    }
    fn rate(&self) -> f64 {
        0.0
    }
}

/// Virtual time = `virtual_at_anchor + (real_now - real_anchor) * speed`.
/// Clones share one state, so a demo or benchmark holding a clone can move
/// the clock of a running server: jump ahead over a waiting period, or slow
/// down for the part worth watching. Waiters are woken when it moves.
#[derive(Debug, Clone)]
pub struct AcceleratedClock {
    state: Arc<std::sync::Mutex<Anchor>>,
    notify: Arc<Notify>,
}

#[derive(Debug, Clone, Copy)]
struct Anchor {
    real_ms: i64,
    virtual_ms: i64,
    speed: f64,
}

impl Anchor {
    fn now(&self) -> i64 {
        let real_elapsed = (real_now_ms() - self.real_ms) as f64;
        self.virtual_ms + (real_elapsed * self.speed) as i64
    }
}

impl AcceleratedClock {
    /// Starts now: virtual time equals real time at this instant.
    pub fn starting_now(speed: f64) -> Self {
        let now = real_now_ms();
        Self::anchored(now, now, speed)
    }

    pub fn anchored(real_anchor_ms: i64, virtual_at_anchor_ms: i64, speed: f64) -> Self {
        assert!(
            speed.is_finite() && speed > 0.0,
            "clock speed must be positive"
        );
        Self {
            state: Arc::new(std::sync::Mutex::new(Anchor {
                real_ms: real_anchor_ms,
                virtual_ms: virtual_at_anchor_ms,
                speed,
            })),
            notify: Arc::new(Notify::new()),
        }
    }

    pub fn speed(&self) -> f64 {
        self.state.lock().expect("clock").speed
    }

    /// From now on the clock reads `t` and runs at `speed`.
    pub fn set(&self, t: Timestamp, speed: f64) {
        assert!(
            speed.is_finite() && speed > 0.0,
            "clock speed must be positive"
        );
        *self.state.lock().expect("clock") = Anchor {
            real_ms: real_now_ms(),
            virtual_ms: t.millis(),
            speed,
        };
        self.notify.notify_waiters();
    }

    /// Keeps the time, changes the speed.
    pub fn set_speed(&self, speed: f64) {
        let now = self.now();
        self.set(now, speed);
    }
}

impl Clock for AcceleratedClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.state.lock().expect("clock").now())
    }
    fn real_duration_until(&self, t: Timestamp) -> Option<Duration> {
        let a = *self.state.lock().expect("clock");
        let virtual_ms = (t.millis() - a.now()).max(0) as f64;
        Some(Duration::from_micros(
            (virtual_ms * 1000.0 / a.speed).ceil() as u64,
        ))
    }
    fn changed(&self) -> Option<Arc<Notify>> {
        Some(self.notify.clone())
    }
    fn describe(&self) -> String {
        format!("accelerated x{}", self.speed())
    }
    fn rate(&self) -> f64 {
        self.speed()
    }
}

/// Sleeps until the clock reads `t`, or at most `cap` of real time, or until a
/// fixed clock is moved — whichever comes first. Callers loop and re-check.
pub async fn sleep_until(clock: &dyn Clock, t: Timestamp, cap: Duration) {
    let d = clock.real_duration_until(t).unwrap_or(cap).min(cap);
    match clock.changed() {
        Some(n) => {
            let notified = n.notified();
            tokio::select! {
                _ = tokio::time::sleep(d) => {}
                _ = notified => {}
            }
        }
        None => tokio::time::sleep(d).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_clock_moves_only_when_told() {
        let c = FixedClock::new(Timestamp::from_millis(1_000));
        assert_eq!(c.now().millis(), 1_000);
        c.advance(chrono::Duration::milliseconds(5));
        assert_eq!(c.now().millis(), 1_005);
        assert_eq!(
            c.real_duration_until(Timestamp::from_millis(1_005)),
            Some(Duration::ZERO)
        );
        assert_eq!(c.real_duration_until(Timestamp::from_millis(1_006)), None);
    }

    #[test]
    fn accelerated_clock_runs_faster_and_agrees_across_instances() {
        let anchor = real_now_ms();
        let a = AcceleratedClock::anchored(anchor, 0, 1000.0);
        let b = AcceleratedClock::anchored(anchor, 0, 1000.0);
        std::thread::sleep(Duration::from_millis(20));
        let (ta, tb) = (a.now().millis(), b.now().millis());
        assert!(
            ta >= 20_000,
            "virtual time {ta} should be >= 20 s after 20 ms"
        );
        assert!((ta - tb).abs() < 5_000);
        // One virtual hour is 3.6 real seconds at x1000.
        let d = a
            .real_duration_until(Timestamp::from_millis(ta + 3_600_000))
            .unwrap();
        assert!(d <= Duration::from_millis(3_600) && d >= Duration::from_millis(3_500));
        // Moved by hand: jumps and slows down, for every clone.
        let c = a.clone();
        c.set(Timestamp::from_millis(1_000_000), 1.0);
        assert!((a.now().millis() - 1_000_000).abs() < 1_000);
        assert_eq!(a.speed(), 1.0);
    }
}
