//! Wall-clock time that follows Tokio's clock.
//!
//! Token expiry is stored as wall-clock time (a file or Redis store is shared with other
//! processes), but decisions must follow Tokio's clock so that tests with paused time can move
//! through an hour of token lifetime instantly. [`wall_now`] anchors the system clock once and
//! advances it with [`tokio::time::Instant`], which tracks the monotonic clock in production.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

static ANCHOR: OnceLock<(SystemTime, std::time::Instant)> = OnceLock::new();

/// The current wall-clock time, advanced by Tokio's clock (virtual under paused test time).
pub fn wall_now() -> SystemTime {
    let (wall, mono) = *ANCHOR.get_or_init(|| (SystemTime::now(), std::time::Instant::now()));
    let since = tokio::time::Instant::now()
        .into_std()
        .saturating_duration_since(mono);
    wall + since
}

/// [`wall_now`] as milliseconds since the Unix epoch.
pub fn unix_millis() -> u64 {
    to_unix_millis(wall_now())
}

/// A wall-clock time as milliseconds since the Unix epoch (0 before the epoch).
pub fn to_unix_millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis()
        .try_into()
        .unwrap_or(u64::MAX)
}
