//! Counters that tests read to prove what the server saw ("exactly one refresh", "no duplicate
//! job", "the handler ran once").

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

/// What one route saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RouteCounts {
    /// Requests that reached the server (before any fault).
    pub received: u64,
    /// Requests whose handler ran (a reset-before fault does not count; a reset-after does).
    pub handled: u64,
    /// Requests that met an injected fault.
    pub faulted: u64,
}

/// Per-route counts (keyed `"METHOD /route/{param}"`) and named counters. Clones share the counts.
#[derive(Clone, Default)]
pub struct Counters {
    inner: Arc<Mutex<CountersInner>>,
}

#[derive(Default)]
struct CountersInner {
    routes: BTreeMap<String, RouteCounts>,
    named: BTreeMap<String, u64>,
}

impl Counters {
    fn lock(&self) -> MutexGuard<'_, CountersInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn route(&self, route: &str, f: impl FnOnce(&mut RouteCounts)) {
        f(self.lock().routes.entry(route.to_owned()).or_default());
    }

    /// The counts of `route`, such as `"POST /items"` or `"GET /jobs/{id}"`.
    pub fn route_counts(&self, route: &str) -> RouteCounts {
        self.lock().routes.get(route).copied().unwrap_or_default()
    }

    /// How many times the handler of `route` ran.
    pub fn handled(&self, route: &str) -> u64 {
        self.route_counts(route).handled
    }

    /// How many requests for `route` arrived.
    pub fn received(&self, route: &str) -> u64 {
        self.route_counts(route).received
    }

    /// Adds one to the named counter `name` (for example `"oauth.refreshes"`).
    pub fn incr(&self, name: &str) {
        *self.lock().named.entry(name.to_owned()).or_default() += 1;
    }

    /// Adds `n` to the named counter `name`.
    pub fn add(&self, name: &str, n: u64) {
        *self.lock().named.entry(name.to_owned()).or_default() += n;
    }

    /// The named counter `name` (0 if never touched).
    pub fn get(&self, name: &str) -> u64 {
        self.lock().named.get(name).copied().unwrap_or(0)
    }

    /// Every route's counts.
    pub fn routes(&self) -> BTreeMap<String, RouteCounts> {
        self.lock().routes.clone()
    }

    /// Every named counter.
    pub fn named(&self) -> BTreeMap<String, u64> {
        self.lock().named.clone()
    }

    /// Sets everything back to zero.
    pub fn reset(&self) {
        let mut inner = self.lock();
        inner.routes.clear();
        inner.named.clear();
    }
}

impl fmt::Debug for Counters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.lock();
        f.debug_struct("Counters")
            .field("routes", &inner.routes)
            .field("named", &inner.named)
            .finish()
    }
}
