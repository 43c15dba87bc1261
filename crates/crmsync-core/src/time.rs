//! Injected time: a [`Clock`] for "now" and a [`Sleeper`] for waits, so no test sleeps for
//! real and planning is reproducible.

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};

/// Tells the time.
pub trait Clock: Debug + Send + Sync {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to; clones share the time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<DateTime<Utc>>>,
}

impl ManualClock {
    /// A clock stopped at `now`.
    pub fn new(now: DateTime<Utc>) -> Self {
        ManualClock {
            now: Arc::new(Mutex::new(now)),
        }
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now += chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX);
    }

    /// Sets the clock.
    pub fn set(&self, to: DateTime<Utc>) {
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A boxed future that is `Send`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Waits. Retry loops and rate limiters sleep through a `Sleeper` so tests can record the
/// delays asked for without waiting.
pub trait Sleeper: Debug + Send + Sync {
    /// Waits for `duration`.
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()>;
}

/// A sleeper that really waits, on any executor: a short-lived thread sleeps and wakes the
/// waiting task, so the core needs no runtime. The default of the engine's retries; HTTP
/// providers wait through their runtime's timer instead (`crmsync-http`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ThreadSleeper;

impl Sleeper for ThreadSleeper {
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        if duration.is_zero() {
            return Box::pin(std::future::ready(()));
        }
        let shared: Arc<Mutex<(bool, Option<std::task::Waker>)>> = Arc::default();
        let waker_side = Arc::clone(&shared);
        let spawned = std::thread::Builder::new()
            .name("crmsync-sleeper".into())
            .spawn(move || {
                std::thread::sleep(duration);
                let mut state = waker_side.lock().unwrap_or_else(|e| e.into_inner());
                state.0 = true;
                if let Some(waker) = state.1.take() {
                    waker.wake();
                }
            });
        if spawned.is_err() {
            // No thread to wait on: waiting in place is still a wait, never none at all.
            std::thread::sleep(duration);
            return Box::pin(std::future::ready(()));
        }
        Box::pin(std::future::poll_fn(move |cx| {
            let mut state = shared.lock().unwrap_or_else(|e| e.into_inner());
            if state.0 {
                std::task::Poll::Ready(())
            } else {
                state.1 = Some(cx.waker().clone());
                std::task::Poll::Pending
            }
        }))
    }
}

/// A sleeper that returns at once and records every delay asked for; clones share the record.
/// With a [`ManualClock`] attached, it also moves that clock forward.
#[derive(Debug, Clone, Default)]
pub struct RecordingSleeper {
    delays: Arc<Mutex<Vec<Duration>>>,
    clock: Option<ManualClock>,
}

impl RecordingSleeper {
    /// A sleeper that records delays.
    pub fn new() -> Self {
        Self::default()
    }

    /// A sleeper that records delays and advances `clock` by each.
    pub fn advancing(clock: ManualClock) -> Self {
        RecordingSleeper {
            delays: Arc::default(),
            clock: Some(clock),
        }
    }

    /// The delays asked for so far.
    pub fn delays(&self) -> Vec<Duration> {
        self.delays
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Sleeper for RecordingSleeper {
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        self.delays
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(duration);
        if let Some(clock) = &self.clock {
            clock.advance(duration);
        }
        Box::pin(std::future::ready(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let t0 = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let clock = ManualClock::new(t0);
        assert_eq!(clock.now(), t0);
        clock.advance(Duration::from_secs(60));
        assert_eq!(clock.now(), t0 + chrono::Duration::seconds(60));
    }

    #[tokio::test]
    async fn thread_sleeper_really_waits() {
        let started = std::time::Instant::now();
        ThreadSleeper.sleep(Duration::from_millis(30)).await;
        assert!(started.elapsed() >= Duration::from_millis(30));
    }

    #[tokio::test]
    async fn recording_sleeper_does_not_wait() {
        let t0 = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let clock = ManualClock::new(t0);
        let sleeper = RecordingSleeper::advancing(clock.clone());
        sleeper.sleep(Duration::from_secs(3600)).await;
        assert_eq!(sleeper.delays(), vec![Duration::from_secs(3600)]);
        assert_eq!(clock.now(), t0 + chrono::Duration::hours(1));
    }
}
