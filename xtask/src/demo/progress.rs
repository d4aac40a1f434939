//! Progress bars for the demo: indicatif bars on stderr when stderr is a terminal; when it is not
//! (indicatif then hides the bar), plain lines on stderr at every tenth of the way (or, for a count
//! of unknown length, at each new message), and at the end.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// One bar: a count towards a known length, or (length unknown) a spinner with a count.
#[derive(Clone)]
pub(crate) struct Bar {
    bar: ProgressBar,
    label: String,
    unit: &'static str,
    plain: Option<Arc<Mutex<Plain>>>,
}

/// What the last plain line said, so the next one is printed only when something changed.
#[derive(Default)]
struct Plain {
    tenth: Option<u64>,
    message: String,
}

impl Bar {
    /// A bar named `label` counting `unit`s, of `len` when known.
    pub(crate) fn new(label: impl Into<String>, len: Option<u64>, unit: &'static str) -> Bar {
        let label = label.into();
        let bar = ProgressBar::with_draw_target(len, ProgressDrawTarget::stderr());
        let template = if len.is_some() {
            "  {prefix} [{bar:30.cyan/blue}] {human_pos}/{human_len} {msg} ({elapsed})"
        } else {
            "  {prefix} {spinner} {human_pos} {msg} ({elapsed})"
        };
        let style = ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(label.clone());
        let plain = bar
            .is_hidden()
            .then(|| Arc::new(Mutex::new(Plain::default())));
        if plain.is_none() {
            bar.enable_steady_tick(Duration::from_millis(120));
        }
        Bar {
            bar,
            label,
            unit,
            plain,
        }
    }

    /// Moves the bar to `pos` with `message`.
    pub(crate) fn update(&self, pos: u64, message: impl Into<String>) {
        let message = message.into();
        self.bar.set_position(pos);
        self.plain_line(false, &message);
        self.bar.set_message(message);
    }

    /// Sets the length (when it becomes known or grows).
    pub(crate) fn set_len(&self, len: u64) {
        self.bar.set_length(len);
    }

    /// The position.
    pub(crate) fn position(&self) -> u64 {
        self.bar.position()
    }

    /// The length (0 when unknown).
    pub(crate) fn length(&self) -> u64 {
        self.bar.length().unwrap_or(0)
    }

    /// Ends the bar, leaving its last state on screen (or a last plain line).
    pub(crate) fn finish(&self, message: impl Into<String>) {
        let message = message.into();
        self.plain_line(true, &message);
        self.bar.finish_with_message(message);
    }

    /// Prints a line to stdout without breaking the bar.
    pub(crate) fn println(&self, line: impl AsRef<str>) {
        self.bar.suspend(|| println!("{}", line.as_ref()));
    }

    fn plain_line(&self, last: bool, message: &str) {
        let Some(plain) = &self.plain else { return };
        let mut plain = plain.lock().unwrap_or_else(|e| e.into_inner());
        let pos = self.bar.position();
        let len = self.bar.length();
        let tenth = len.filter(|l| *l > 0).map(|l| pos * 10 / l);
        if !last && tenth == plain.tenth && (len.is_some() || message == plain.message) {
            return;
        }
        plain.tenth = tenth;
        plain.message = message.to_owned();
        let count = match len {
            Some(l) => format!("{pos}/{l} {}", plural(l, self.unit)),
            None => format!("{pos} {}", plural(pos, self.unit)),
        };
        let elapsed = self.bar.elapsed().as_secs_f64();
        let message = if message.is_empty() {
            String::new()
        } else {
            format!(" {message}")
        };
        eprintln!("  {}: {count}{message} ({elapsed:.1} s)", self.label);
    }
}

/// `unit` (a plural such as `items`) agreeing with `n`: `1 item`, `2 items`.
fn plural(n: u64, unit: &str) -> &str {
    match unit.strip_suffix('s') {
        Some(one) if n == 1 => one,
        _ => unit,
    }
}
