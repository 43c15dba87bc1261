//! Per-account rate and concurrency limits.
//!
//! Providers limit each user (mailbox) separately: Graph allows 10,000 requests per 10
//! minutes and 4 concurrent requests per app and mailbox; Google Calendar 600 requests per
//! minute per user. An [`AccountLimiter`] keeps, per account, a rate limit (GCRA, the
//! algorithm of a token bucket, on the injected [`Clock`]: waits go through the injected
//! [`Sleeper`], so tests never sleep) and a concurrency limit (a
//! [`tokio::sync::Semaphore`]).

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
