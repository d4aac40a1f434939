//! The adaptive limit: a token rate cut on throttling and regrown along a CUBIC curve, as in
//! aws-sdk-rust's adaptive retry mode (`ClientRateLimiter`), with three changes that matter for
//! bulk work against a vendor whose `Retry-After` is coarse (whole seconds):
//!
//! - The rate is cut relative to what the vendor *accepted* in the last second, not to what the
//!   client sent: while the client overshoots, the accepted rate is the vendor's limit, so one
//!   cut lands under it instead of several.
//! - A refusal pauses only the refused request (its retry honours `Retry-After`); the whole
//!   client pauses for the `Retry-After` only when refusals come back to back with no accepted
//!   request between them ([`Adaptive::pause_after`]), the sign of a vendor that refuses
//!   everything for a while (an exhausted quota) rather than a rate a little too high. A
//!   whole-second pause of the whole client for every overshoot would cost a second of
//!   sending per throttle.
//! - Refusals of requests sent before the last cut say nothing about the new rate and neither
//!   cut again nor count towards a pause.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use super::{Gcra, RateEvent};

/// Settings of the adaptive limit (see [`RateControlBuilder::adaptive`](super::RateControlBuilder::adaptive)).
///
/// The defaults are aws-sdk-rust's: the rate is cut to 0.7 × the rate the vendor accepted in
/// the last second, then regrows as `0.4 × (t − K)³ + max` (K chosen so the curve starts at the
/// cut rate), plateauing near the old maximum before it probes beyond it. It never goes below
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
    pause_after: u32,
}

impl Default for Adaptive {
    fn default() -> Self {
        Adaptive {
            min_rate: 0.5,
            max_rate: 1000.0,
            initial_rate: None,
            beta: 0.7,
            scale: 0.4,
            pause_after: 2,
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

    /// After how many refusals in a row (with no request accepted between them) the whole
    /// client, not only the refused request, waits out the vendor's largest `Retry-After`
    /// (default 2; 1 pauses the whole client on every throttle; at least 1).
    pub fn pause_after(mut self, refusals: u32) -> Self {
        self.pause_after = refusals.max(1);
        self
    }

    fn clamp(&self, rate: f64) -> f64 {
        rate.clamp(self.min_rate, self.max_rate)
    }
}

/// The window over which the sent and accepted rates are measured.
const RATE_WINDOW: Duration = Duration::from_secs(1);
/// A rate is not measured over less than this (a first burst would look infinitely fast).
const MIN_SPAN: Duration = Duration::from_millis(100);
/// At most one [`RateEvent::Raised`] per this time.
const RAISED_EVERY: Duration = Duration::from_secs(1);

/// Events of the last [`RATE_WINDOW`], for a rate.
#[derive(Debug, Default)]
struct Window {
    at: VecDeque<Instant>,
}

impl Window {
    fn push(&mut self, t: Instant) {
        self.at.push_back(t);
    }

    /// Events a second over the window, or over the time since `since` when that is shorter.
    fn rate(&mut self, now: Instant, since: Instant) -> f64 {
        while self
            .at
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) > RATE_WINDOW)
        {
            self.at.pop_front();
        }
        let span = now
            .saturating_duration_since(since)
            .clamp(MIN_SPAN, RATE_WINDOW);
        self.at.len() as f64 / span.as_secs_f64()
    }
}

#[derive(Debug)]
pub(super) struct State {
    cfg: Adaptive,
    /// Off until the first throttle (or from the start with an initial rate).
    enabled: bool,
    rate: f64,
    last_max: f64,
    /// Seconds from the last cut to the plateau.
    k: f64,
    last_cut: Instant,
    gcra: Gcra,
    /// Nothing is sent before this (the largest `Retry-After`, once refusals come in a row).
    not_before: Option<Instant>,
    /// When this state was made (rates are not measured over time before it).
    born: Instant,
    sent: Window,
    accepted: Window,
    /// Refusals since the last accepted request (of those sent after the last cut).
    refusals_in_row: u32,
    last_raised: Instant,
    raised_from: f64,
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
            last_cut: now,
            gcra: Gcra::new(),
            not_before: None,
            born: now,
            sent: Window::default(),
            accepted: Window::default(),
            refusals_in_row: 0,
            last_raised: now,
            raised_from: initial.unwrap_or(0.0),
            cfg,
        }
    }

    /// The rate now, if limiting.
    pub(super) fn rate(&self) -> Option<f64> {
        self.enabled.then_some(self.rate)
    }

    /// Takes the next send slot if it has come (`Ok`), or says when to look again (`Err`).
    ///
    /// Slots are not reserved ahead: a waiter looks again when the next slot comes, so a rate
    /// raised (or cut, or paused) while it waits applies to it at once, and the waiters that
    /// lose the slot to another one wait for the next.
    pub(super) fn take(&mut self, now: Instant) -> Result<(), Instant> {
        let mut next = self.not_before.map_or(now, |t| t.max(now));
        if self.enabled {
            next = self.gcra.next_at(next);
        }
        if next > now {
            return Err(next);
        }
        if self.enabled {
            self.gcra.reserve(
                now,
                Duration::from_secs_f64(1.0 / self.rate),
                Duration::ZERO,
            );
        }
        self.sent.push(now);
        Ok(())
    }

    /// A reply that was not a throttle, to a request sent at `sent`.
    pub(super) fn succeeded(&mut self, now: Instant, sent: Instant) -> Option<RateEvent> {
        self.accepted.push(now);
        if sent >= self.last_cut {
            self.refusals_in_row = 0;
        }
        if !self.enabled {
            return None;
        }
        let t = (now - self.last_cut).as_secs_f64();
        let cubic = self.cfg.scale * (t - self.k).powi(3) + self.last_max;
        let sending = self.sent.rate(now, self.born);
        let rate = if sending > 0.0 {
            cubic.min(2.0 * sending)
        } else {
            cubic
        };
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
        let from = self.rate;
        // Replies to requests sent before the last cut tell nothing about the new rate: one
        // burst of refusals cuts the rate once, not once per request in flight.
        if self.enabled && sent < self.last_cut {
            return Some(RateEvent::Throttled {
                from,
                to: from,
                pause: None,
                retry_after,
            });
        }
        self.refusals_in_row += 1;
        let pause = retry_after.filter(|_| self.refusals_in_row >= self.cfg.pause_after);
        if let Some(p) = pause {
            let until = now + p;
            self.not_before = Some(self.not_before.map_or(until, |t| t.max(until)));
        }
        // What the vendor accepted in the last second is its rate while the client overshoots
        // it, and under it otherwise.
        // Before the vendor has accepted anything (a first burst refused at once), the rate the
        // client sent at is the only measure, as in aws-sdk-rust.
        let accepted = match self.accepted.rate(now, self.born) {
            a if a > 0.0 => a,
            _ => self.sent.rate(now, self.born),
        };
        let reference = if self.enabled {
            accepted.min(self.rate)
        } else {
            accepted
        };
        let reference = self.cfg.clamp(reference);
        self.last_max = reference;
        self.k = (reference * (1.0 - self.cfg.beta) / self.cfg.scale).cbrt();
        self.last_cut = now;
        self.rate = self.cfg.clamp(reference * self.cfg.beta);
        self.raised_from = self.rate;
        self.enabled = true;
        // The next permit is a full interval of the new rate away: the vendor has just seen one
        // request too many.
        let mut gcra = Gcra::new();
        gcra.reserve(
            now,
            Duration::from_secs_f64(1.0 / self.rate),
            Duration::ZERO,
        );
        self.gcra = gcra;
        Some(RateEvent::Throttled {
            from,
            to: self.rate,
            pause,
            retry_after,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(base: Instant, ms: u64) -> Instant {
        base + Duration::from_millis(ms)
    }

    /// Sends one request as soon as the state lets it, asked first at `t`; returns when.
    fn send(s: &mut State, mut t: Instant) -> Instant {
        loop {
            match s.take(t) {
                Ok(()) => return t,
                Err(next) => t = next,
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn off_until_throttled_then_cut_and_regrown() {
        let t0 = Instant::now();
        let mut s = State::new(Adaptive::default());
        // 20 requests a second for two seconds: unlimited.
        for i in 0..40 {
            assert_eq!(send(&mut s, at(t0, i * 50)), at(t0, i * 50));
            assert!(s.succeeded(at(t0, i * 50 + 10), at(t0, i * 50)).is_none());
        }
        let now = at(t0, 2000);
        let sent = at(t0, 1990);
        let ev = s.throttled(now, sent, Some(Duration::from_secs(1)));
        let Some(RateEvent::Throttled { to, pause, .. }) = ev else {
            panic!("no throttle event: {ev:?}");
        };
        assert!((to - 14.0).abs() < 0.5, "cut to 0.7 × ~20/s: {to}");
        assert_eq!(pause, None, "one refusal pauses only the refused request");
        // A second refusal of a request sent before the cut does not cut again.
        s.throttled(at(t0, 2005), sent, None);
        assert_eq!(s.rate(), Some(to));
        // The next request goes one interval of the new rate after the cut, the one after
        // that one interval later.
        let interval = 1.0 / to;
        let first = send(&mut s, at(t0, 2010));
        assert!(((first - now).as_secs_f64() - interval).abs() < 1e-3);
        let second = send(&mut s, at(t0, 2010));
        assert!(((second - first).as_secs_f64() - interval).abs() < 1e-3);
        // The rate regrows to the old maximum after K seconds and then beyond it.
        s.succeeded(at(t0, 2000 + (s.k * 1000.0) as u64), first);
        let plateau = s.rate().unwrap_or_default();
        assert!((plateau - 20.0).abs() < 1.0, "plateau {plateau}");
    }

    #[tokio::test(start_paused = true)]
    async fn refusals_in_a_row_pause_the_whole_client() {
        let t0 = Instant::now();
        let mut s = State::new(Adaptive::default().initial_rate(10.0));
        let retry = Some(Duration::from_secs(5));
        let sent = send(&mut s, t0);
        s.throttled(at(t0, 10), sent, retry);
        // Accepted after the cut: the next refusal is again the first of a row.
        let sent = send(&mut s, at(t0, 20));
        s.succeeded(sent + Duration::from_millis(10), sent);
        let sent = send(&mut s, sent + Duration::from_millis(20));
        let ev = s.throttled(sent + Duration::from_millis(10), sent, retry);
        assert!(matches!(ev, Some(RateEvent::Throttled { pause: None, .. })));
        // Refused again with nothing accepted since: the vendor refuses everything for now.
        let sent = send(&mut s, sent + Duration::from_millis(20));
        let refused_at = sent + Duration::from_millis(10);
        let ev = s.throttled(refused_at, sent, retry);
        assert!(
            matches!(ev, Some(RateEvent::Throttled { pause: Some(p), .. }) if Some(p) == retry),
            "{ev:?}"
        );
        assert!(send(&mut s, refused_at) >= refused_at + Duration::from_secs(5));
        // With `pause_after(1)` every throttle pauses the whole client.
        let mut s = State::new(Adaptive::default().initial_rate(10.0).pause_after(1));
        let sent = send(&mut s, t0);
        s.throttled(at(t0, 10), sent, retry);
        assert!(send(&mut s, at(t0, 10)) >= at(t0, 5010));
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
            let sent = send(&mut s, at(t0, 30_000 + i * 100));
            s.succeeded(at(t0, 30_000 + i * 100), sent);
        }
        assert_eq!(s.rate(), Some(6.0));
    }
}
