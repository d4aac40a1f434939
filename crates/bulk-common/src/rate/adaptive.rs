//! The adaptive limit: a token rate cut on throttling and regrown along a CUBIC curve, as in
//! aws-sdk-rust's adaptive retry mode (`ClientRateLimiter`).

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use super::{Gcra, RateEvent};

/// Settings of the adaptive limit (see [`RateControlBuilder::adaptive`](super::RateControlBuilder::adaptive)).
///
/// The defaults are aws-sdk-rust's: the rate is cut to 0.7 × the rate at which the vendor
/// throttled, then regrows as `0.4 × (t − K)³ + max` (K chosen so the curve starts at the cut
/// rate), plateauing near the old maximum before it probes beyond it. It never goes below
/// [`min_rate`](Self::min_rate) (0.5/s) nor above [`max_rate`](Self::max_rate) (1000/s), nor
/// above twice the rate the client actually sends at, so an idle spell does not build up a rate
/// the vendor would refuse.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Adaptive {
    min_rate: f64,
    max_rate: f64,
    initial_rate: Option<f64>,
    beta: f64,
    scale: f64,
}

impl Default for Adaptive {
    fn default() -> Self {
        Adaptive {
            min_rate: 0.5,
            max_rate: 1000.0,
            initial_rate: None,
            beta: 0.7,
            scale: 0.4,
        }
    }
}

impl Adaptive {
    /// The lowest rate, requests a second (default 0.5).
    pub fn min_rate(mut self, rate: f64) -> Self {
        if rate.is_finite() && rate > 0.0 {
            self.min_rate = rate;
            self.max_rate = self.max_rate.max(rate);
        }
        self
    }

    /// The highest rate, requests a second (default 1000).
    pub fn max_rate(mut self, rate: f64) -> Self {
        if rate.is_finite() && rate > 0.0 {
            self.max_rate = rate;
            self.min_rate = self.min_rate.min(rate);
        }
        self
    }

    /// Starts limited at this rate instead of unlimited until the first throttle (for a vendor
    /// whose limit is roughly known).
    pub fn initial_rate(mut self, rate: f64) -> Self {
        if rate.is_finite() && rate > 0.0 {
            self.initial_rate = Some(rate);
        }
        self
    }

    /// The share of the rate kept after a throttle (default 0.7; between 0.1 and 0.95).
    pub fn beta(mut self, beta: f64) -> Self {
        if beta.is_finite() {
            self.beta = beta.clamp(0.1, 0.95);
        }
        self
    }

    /// How fast the rate regrows: the CUBIC scale constant (default 0.4; between 0.01 and 10).
    pub fn scale(mut self, scale: f64) -> Self {
        if scale.is_finite() {
            self.scale = scale.clamp(0.01, 10.0);
        }
        self
    }

    fn clamp(&self, rate: f64) -> f64 {
        rate.clamp(self.min_rate, self.max_rate)
    }
}

/// How often the measured sending rate is updated.
const MEASURE_WINDOW: Duration = Duration::from_millis(500);
/// The window of the accepted rate, the first estimate of the vendor's limit.
const ACCEPTED_WINDOW: Duration = Duration::from_secs(1);
/// At most one [`RateEvent::Raised`] per this time.
const RAISED_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub(super) struct State {
    cfg: Adaptive,
    /// Off until the first throttle (or from the start with an initial rate).
    enabled: bool,
    rate: f64,
    last_max: f64,
    /// Seconds from the last cut to the plateau.
    k: f64,
    last_throttle: Instant,
    gcra: Gcra,
    /// Nothing is sent before this (the largest `Retry-After`).
    not_before: Option<Instant>,
    measured: Option<f64>,
    window_start: Instant,
    window_sent: u32,
    last_raised: Instant,
    raised_from: f64,
    /// When the replies of the last second that were not throttled arrived.
    accepted: VecDeque<Instant>,
    /// Counts throttles: a permit reserved before one is reserved again under the new rate.
    epoch: u64,
}

impl State {
    pub(super) fn new(cfg: Adaptive) -> Self {
        let now = Instant::now();
        let initial = cfg.initial_rate.map(|r| cfg.clamp(r));
        State {
            enabled: initial.is_some(),
            rate: initial.unwrap_or(cfg.max_rate),
            last_max: initial.unwrap_or(cfg.max_rate),
            k: 0.0,
            last_throttle: now,
            gcra: Gcra::new(),
            not_before: None,
            measured: None,
            window_start: now,
            window_sent: 0,
            last_raised: now,
            raised_from: initial.unwrap_or(0.0),
            accepted: VecDeque::new(),
            epoch: 0,
            cfg,
        }
    }

    /// The rate now, if limiting.
    pub(super) fn rate(&self) -> Option<f64> {
        self.enabled.then_some(self.rate)
    }

    /// The throttle count when a permit was reserved.
    pub(super) fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Reserves a send slot; returns when the request may go.
    pub(super) fn reserve(&mut self, now: Instant) -> Instant {
        self.measure(now);
        let earliest = self.not_before.map_or(now, |t| t.max(now));
        if !self.enabled {
            return earliest;
        }
        let interval = Duration::from_secs_f64(1.0 / self.rate);
        self.gcra.reserve(earliest, interval, Duration::ZERO)
    }

    fn measure(&mut self, now: Instant) {
        self.window_sent += 1;
        let elapsed = now - self.window_start;
        if elapsed >= MEASURE_WINDOW {
            let current = f64::from(self.window_sent) / elapsed.as_secs_f64();
            self.measured = Some(self.measured.map_or(current, |m| 0.8 * current + 0.2 * m));
            self.window_sent = 0;
            self.window_start = now;
        }
    }

    /// The rate the client sends at, as far as known.
    fn sending_rate(&self, now: Instant) -> Option<f64> {
        self.measured.or_else(|| {
            let elapsed = (now - self.window_start).as_secs_f64();
            (elapsed > 0.0 && self.window_sent > 0).then(|| f64::from(self.window_sent) / elapsed)
        })
    }

    /// Replies the vendor accepted in the last second.
    fn accepted_rate(&mut self, now: Instant) -> f64 {
        while self
            .accepted
            .front()
            .is_some_and(|t| now - *t > ACCEPTED_WINDOW)
        {
            self.accepted.pop_front();
        }
        self.accepted.len() as f64 / ACCEPTED_WINDOW.as_secs_f64()
    }

    pub(super) fn succeeded(&mut self, now: Instant) -> Option<RateEvent> {
        self.accepted.push_back(now);
        self.accepted_rate(now);
        if !self.enabled {
            return None;
        }
        let t = (now - self.last_throttle).as_secs_f64();
        let mut rate = self.cfg.scale * (t - self.k).powi(3) + self.last_max;
        if let Some(sending) = self.sending_rate(now) {
            rate = rate.min(2.0 * sending);
        }
        self.rate = self.cfg.clamp(rate);
        if self.rate > self.raised_from && now - self.last_raised >= RAISED_EVERY {
            self.last_raised = now;
            self.raised_from = self.rate;
            return Some(RateEvent::Raised { rate: self.rate });
        }
        None
    }

    /// A throttling reply to a request sent at `sent`.
    pub(super) fn throttled(
        &mut self,
        now: Instant,
        sent: Instant,
        retry_after: Option<Duration>,
    ) -> Option<RateEvent> {
        if let Some(after) = retry_after {
            let until = now + after;
            self.not_before = Some(self.not_before.map_or(until, |t| t.max(until)));
        }
        // Permits reserved under the old rate (or before the pause) are reserved again.
        self.epoch += 1;
        self.gcra = Gcra::new();
        let from = self.rate;
        // Replies to requests sent before the last cut tell nothing about the new rate: one
        // burst of refusals cuts the rate once, not once per request in flight.
        if !(self.enabled && sent < self.last_throttle) {
            let current = if self.enabled {
                self.sending_rate(now)
                    .map_or(self.rate, |s| s.min(self.rate))
            } else {
                // The first throttle: what the client sent says little (a burst may come in no
                // time at all); what the vendor accepted in the last second is its rate, or
                // under it.
                self.accepted_rate(now)
            };
            let current = self.cfg.clamp(current);
            self.last_max = current;
            self.k = (current * (1.0 - self.cfg.beta) / self.cfg.scale).cbrt();
            self.last_throttle = now;
            self.rate = self.cfg.clamp(current * self.cfg.beta);
            self.raised_from = self.rate;
            self.enabled = true;
        }
        Some(RateEvent::Throttled {
            from,
            to: self.rate,
            pause: retry_after,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(base: Instant, ms: u64) -> Instant {
        base + Duration::from_millis(ms)
    }

    #[tokio::test(start_paused = true)]
    async fn off_until_throttled_then_cut_paused_and_regrown() {
        let t0 = Instant::now();
        let mut s = State::new(Adaptive::default());
        // 20 requests a second for two seconds: unlimited.
        for i in 0..40 {
            assert_eq!(s.reserve(at(t0, i * 50)), at(t0, i * 50));
            assert!(s.succeeded(at(t0, i * 50 + 10)).is_none());
        }
        let now = at(t0, 2000);
        let sent = at(t0, 1990);
        let ev = s.throttled(now, sent, Some(Duration::from_secs(1)));
        let Some(RateEvent::Throttled { to, .. }) = ev else {
            panic!("no throttle event: {ev:?}");
        };
        assert!((to - 14.0).abs() < 0.5, "cut to 0.7 × ~20/s: {to}");
        // A second refusal of a request sent before the cut does not cut again.
        s.throttled(at(t0, 2005), sent, None);
        assert_eq!(s.rate(), Some(to));
        // Nothing goes before the Retry-After, then one request per 1/rate.
        let first = s.reserve(at(t0, 2010));
        assert_eq!(first, at(t0, 3000));
        let second = s.reserve(at(t0, 2010));
        assert!((second - first).as_secs_f64() - 1.0 / to < 1e-3);
        // The rate regrows to the old maximum after K seconds and then beyond it.
        s.succeeded(at(t0, 2000 + (s.k * 1000.0) as u64));
        let plateau = s.rate().unwrap_or_default();
        assert!((plateau - 20.0).abs() < 1.0, "plateau {plateau}");
    }

    #[tokio::test(start_paused = true)]
    async fn bounds_hold() {
        let t0 = Instant::now();
        let mut s = State::new(
            Adaptive::default()
                .initial_rate(5.0)
                .min_rate(2.0)
                .max_rate(6.0),
        );
        assert_eq!(s.rate(), Some(5.0));
        for i in 1..20 {
            s.throttled(at(t0, i * 1000), at(t0, i * 1000), None);
        }
        assert_eq!(s.rate(), Some(2.0));
        for i in 0..200 {
            s.reserve(at(t0, 30_000 + i * 100));
            s.succeeded(at(t0, 30_000 + i * 100));
        }
        assert_eq!(s.rate(), Some(6.0));
    }
}
