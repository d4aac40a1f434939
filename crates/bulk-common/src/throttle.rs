//! Client-side throttles: stay under a vendor's published request rates instead of meeting its
//! 429s.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// At most `max` acquisitions in any window of `per`, shared by clones.
///
/// [`acquire`](Throttle::acquire) waits (on Tokio's clock) until a slot is free. Waiters are served
/// in turn, so the limit holds for any number of concurrent callers.
///
/// ```
/// use std::time::Duration;
/// use bulk_common::throttle::Throttle;
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let creates = Throttle::new(5, Duration::from_secs(60));
/// for _ in 0..5 {
///     creates.acquire().await; // immediate
/// }
/// let started = tokio::time::Instant::now();
/// creates.acquire().await; // waits for the first slot to leave the window
/// assert_eq!(started.elapsed(), Duration::from_secs(60));
/// # }
/// ```
#[derive(Clone)]
pub struct Throttle {
    max: usize,
    per: Duration,
    recent: Arc<Mutex<VecDeque<Instant>>>,
}

impl fmt::Debug for Throttle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Throttle")
            .field("max", &self.max)
            .field("per", &self.per)
            .finish()
    }
}

impl Throttle {
    /// A throttle of `max` (at least 1) per `per`.
    pub fn new(max: u32, per: Duration) -> Self {
        Throttle {
            max: max.max(1) as usize,
            per,
            recent: Arc::new(Mutex::new(VecDeque::new())),
        }
    }

    /// Waits until one more acquisition fits in the window, then records it.
    pub async fn acquire(&self) {
        // Holding the lock while sleeping serves waiters in turn.
        let mut recent = self.recent.lock().await;
        loop {
            let now = Instant::now();
            while recent
                .front()
                .is_some_and(|t| now.saturating_duration_since(*t) >= self.per)
            {
                recent.pop_front();
            }
            if recent.len() < self.max {
                recent.push_back(now);
                return;
            }
            if let Some(oldest) = recent.front().copied() {
                tokio::time::sleep_until(oldest + self.per).await;
            }
        }
    }
}

/// A sliding window is stricter than GCRA for "at most N a minute" limits (GCRA lets a burst and
/// the next permit fall into one window), so it stays available as a route-class limit of a
/// [`RateControl`](crate::rate::RateControl).
#[async_trait::async_trait]
impl crate::rate::RateLimiter for Throttle {
    async fn acquire(&self) -> Duration {
        let started = Instant::now();
        Throttle::acquire(self).await;
        started.elapsed()
    }

    fn rate(&self) -> f64 {
        self.max as f64 / self.per.as_secs_f64().max(f64::MIN_POSITIVE)
    }
}
