//! Per-account rate and concurrency limits, and the `Retry-After` gate.
//!
//! Providers limit each user (mailbox) separately: Graph allows 10,000 requests per 10
//! minutes and 4 concurrent requests per app and mailbox; Google Calendar 600 requests per
//! minute per user. An [`AccountLimiter`] keeps, per account, a rate limit (GCRA, the
//! algorithm of a token bucket, on the injected [`Clock`]: waits go through the injected
//! [`Sleeper`], so tests never sleep) and a concurrency limit (a
//! [`tokio::sync::Semaphore`]).
//!
//! A [`RetryAfterGate`] keeps, per account and API, the time before which no request may
//! go out: a 429 or 503 with `Retry-After: N` on any call bars every call of that account
//! on that API for N seconds, not only the call that was refused.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use crmsync_core::{AccountId, Clock, Sleeper};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The limits applied to each account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests allowed per `per`, on average.
    pub requests: u32,
    /// The period `requests` are counted over.
    pub per: Duration,
    /// Requests that may be sent at once after a quiet spell (at least 1).
    pub burst: u32,
    /// Requests in flight at once (at least 1).
    pub max_concurrent: usize,
}

impl RateLimit {
    /// Microsoft Graph's Outlook limits per app and mailbox: 10,000 requests per 10
    /// minutes, 4 concurrent requests (microsoft-graph-docs `concepts/throttling-limits`).
    pub const GRAPH_MAILBOX: RateLimit = RateLimit {
        requests: 10_000,
        per: Duration::from_secs(600),
        burst: 100,
        max_concurrent: 4,
    };

    /// Google Calendar's per-user quota: 600 requests per minute (Calendar usage-limits
    /// page, 2024–2025 versions).
    pub const GOOGLE_CALENDAR_USER: RateLimit = RateLimit {
        requests: 600,
        per: Duration::from_secs(60),
        burst: 50,
        max_concurrent: 8,
    };

    /// `requests` per `per`, that many at once, `max_concurrent` in flight.
    pub fn new(requests: u32, per: Duration, max_concurrent: usize) -> Self {
        RateLimit {
            requests,
            per,
            burst: requests,
            max_concurrent,
        }
    }

    fn emission_interval(&self) -> chrono::Duration {
        let interval = self.per / self.requests.max(1);
        chrono::Duration::from_std(interval).unwrap_or(chrono::Duration::MAX)
    }
}

/// Rate and concurrency limits per account. Cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct AccountLimiter {
    limit: RateLimit,
    clock: Arc<dyn Clock>,
    sleeper: Arc<dyn Sleeper>,
    accounts: Arc<Mutex<HashMap<AccountId, Arc<AccountSlot>>>>,
}

#[derive(Debug)]
struct AccountSlot {
    in_flight: Arc<Semaphore>,
    /// GCRA's theoretical arrival time: when the next request would be on schedule.
    next_at: Mutex<Option<DateTime<Utc>>>,
}

/// A request's slot in its account's limits; the concurrency slot is freed when dropped.
#[derive(Debug)]
pub struct AccountPermit {
    _in_flight: OwnedSemaphorePermit,
}

impl AccountLimiter {
    /// A limiter applying `limit` to each account, reading time from `clock` and waiting
    /// through `sleeper`.
    pub fn new(limit: RateLimit, clock: Arc<dyn Clock>, sleeper: Arc<dyn Sleeper>) -> Self {
        AccountLimiter {
            limit,
            clock,
            sleeper,
            accounts: Arc::default(),
        }
    }

    /// The limits applied.
    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    fn slot(&self, account: &AccountId) -> Arc<AccountSlot> {
        let mut accounts = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
        accounts
            .entry(account.clone())
            .or_insert_with(|| {
                Arc::new(AccountSlot {
                    in_flight: Arc::new(Semaphore::new(self.limit.max_concurrent.max(1))),
                    next_at: Mutex::new(None),
                })
            })
            .clone()
    }

    /// Waits for a concurrency slot of `account`, then for its rate limit to allow one
    /// more request, and returns the slot.
    pub async fn acquire(&self, account: &AccountId) -> AccountPermit {
        let slot = self.slot(account);
        let permit = slot
            .in_flight
            .clone()
            .acquire_owned()
            .await
            // The semaphore is never closed.
            .unwrap_or_else(|_| unreachable!("account semaphores are never closed"));
        let wait = self.reserve(&slot);
        if !wait.is_zero() {
            tracing::debug!(
                account = account.as_str(),
                wait_ms = wait.as_millis() as u64,
                "rate limit"
            );
            self.sleeper.sleep(wait).await;
        }
        AccountPermit { _in_flight: permit }
    }

    /// Reserves the next request's place in the schedule; returns how long to wait for it.
    fn reserve(&self, slot: &AccountSlot) -> Duration {
        let now = self.clock.now();
        let interval = self.limit.emission_interval();
        let tolerance = interval * (self.limit.burst.max(1) as i32 - 1);
        let mut next_at = slot.next_at.lock().unwrap_or_else(|e| e.into_inner());
        let due = next_at.map_or(now, |t| t.max(now));
        let allowed_at = due - tolerance;
        *next_at = Some(due + interval);
        (allowed_at - now).to_std().unwrap_or(Duration::ZERO)
    }
}

/// What a [`RetryAfterGate`] bars: one account on one API (`"calendar"`, `"people"`, a
/// host such as `graph.microsoft.com`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GateKey {
    account: AccountId,
    api: String,
}

impl GateKey {
    /// The key of `account` on `api`.
    pub fn new(account: AccountId, api: impl Into<String>) -> Self {
        GateKey {
            account,
            api: api.into(),
        }
    }
}

/// The `Retry-After` bars of every account and API: after a throttled answer asking to
/// wait N, no request of that account to that API passes before N has gone by, whichever
/// call it belongs to. Cheap to clone: clones share the bars (an [`HttpClient`] and the
/// clients derived from it share one).
///
/// Waits are measured on the [`Clock`] and slept on the [`Sleeper`] given to
/// [`RetryAfterGate::pass`]: the retry policy's, so tests record them.
///
/// [`HttpClient`]: crate::HttpClient
#[derive(Debug, Clone, Default)]
pub struct RetryAfterGate {
    bars: Arc<Mutex<HashMap<GateKey, DateTime<Utc>>>>,
}

impl RetryAfterGate {
    /// A gate with no bar.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bars `key` until `until` (a later bar already set stays).
    pub fn bar(&self, key: &GateKey, until: DateTime<Utc>) {
        let mut bars = self.bars.lock().unwrap_or_else(|e| e.into_inner());
        let bar = bars.entry(key.clone()).or_insert(until);
        if *bar < until {
            *bar = until;
        }
    }

    /// The time before which `key` is barred, if a bar was ever set.
    pub fn barred_until(&self, key: &GateKey) -> Option<DateTime<Utc>> {
        self.bars
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .copied()
    }

    /// Waits until `key` is no longer barred.
    ///
    /// `served` is the bar the caller already waited out on its own (the retry policy
    /// slept the `Retry-After` of the answer that set it): a bar no later than that costs
    /// no second wait. A bar raised while waiting is waited for too.
    ///
    /// # Errors
    /// [`ErrorKind::RateLimited`](crmsync_core::ErrorKind::RateLimited), with the wait
    /// left, when the bar is further away than `max_wait`: nothing is sent, and whoever
    /// schedules the next run learns when to come back.
    pub async fn pass(
        &self,
        key: &GateKey,
        served: Option<DateTime<Utc>>,
        clock: &dyn Clock,
        sleeper: &dyn Sleeper,
        max_wait: Duration,
    ) -> crmsync_core::Result<()> {
        let mut waited_for = served;
        loop {
            let Some(until) = self.barred_until(key) else {
                return Ok(());
            };
            let now = clock.now();
            if until <= now || waited_for.is_some_and(|w| until <= w) {
                return Ok(());
            }
            let left = (until - now).to_std().unwrap_or(Duration::ZERO);
            if left > max_wait {
                return Err(crmsync_core::Error::new(
                    crmsync_core::ErrorKind::RateLimited {
                        retry_after: Some(left),
                    },
                    format!(
                        "the provider asked to wait {} s before the next request of this \
                         account; not sending it",
                        left.as_secs()
                    ),
                ));
            }
            // What was already waited for is not waited again, whatever the clock says
            // (a recording sleeper does not move the system clock).
            let from = waited_for.map_or(now, |w| w.max(now));
            let wait = (until - from).to_std().unwrap_or(Duration::ZERO);
            tracing::debug!(
                account = key.account.as_str(),
                api = key.api.as_str(),
                wait_ms = wait.as_millis() as u64,
                "waiting for the Retry-After of an earlier answer"
            );
            sleeper.sleep(wait).await;
            waited_for = Some(until);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use crmsync_core::{ManualClock, RecordingSleeper};

    fn limiter(limit: RateLimit) -> (AccountLimiter, RecordingSleeper) {
        let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0).unwrap());
        let sleeper = RecordingSleeper::advancing(clock.clone());
        (
            AccountLimiter::new(limit, Arc::new(clock), Arc::new(sleeper.clone())),
            sleeper,
        )
    }

    #[tokio::test]
    async fn rate_is_enforced_per_account_without_sleeping() {
        let (limiter, sleeper) = limiter(RateLimit::new(2, Duration::from_secs(1), 10));
        let ann = AccountId::new("ann").unwrap();
        let bob = AccountId::new("bob").unwrap();
        for _ in 0..4 {
            drop(limiter.acquire(&ann).await);
        }
        // A burst of 2, then one every 500 ms.
        assert_eq!(
            sleeper.delays(),
            vec![Duration::from_millis(500), Duration::from_millis(500)]
        );
        // Another account has its own budget.
        drop(limiter.acquire(&bob).await);
        drop(limiter.acquire(&bob).await);
        assert_eq!(sleeper.delays().len(), 2);
    }

    #[tokio::test]
    async fn concurrency_is_limited_per_account() {
        let (limiter, _) = limiter(RateLimit::new(1000, Duration::from_secs(1), 4));
        let ann = AccountId::new("ann").unwrap();
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(limiter.acquire(&ann).await);
        }
        let waiting = {
            let limiter = limiter.clone();
            let ann = ann.clone();
            tokio::spawn(async move { limiter.acquire(&ann).await })
        };
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(!waiting.is_finished(), "a fifth request must wait");
        // Other accounts are not held up.
        drop(limiter.acquire(&AccountId::new("bob").unwrap()).await);
        held.pop();
        let fifth = waiting.await.unwrap();
        drop(fifth);
    }
}
