//! What every command gets: settings, the terminal, the poll timing and the simulators.

use std::io::IsTerminal;
use std::time::Duration;

use bulk_common::poll::PollPolicy;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::Global;
use crate::config::Settings;

/// The shared state of one command.
pub(crate) struct Ctx {
    pub(crate) global: Global,
    pub(crate) settings: Settings,
    sims: Vec<vendor_sim::SimHandle>,
}

impl Ctx {
    pub(crate) fn new(global: Global) -> anyhow::Result<Ctx> {
        let settings = Settings::load(&global)?;
        Ok(Ctx {
            global,
            settings,
            sims: Vec::new(),
        })
    }

    /// Whether the command runs against the embedded simulators.
    pub(crate) fn sim(&self) -> bool {
        self.global.sim
    }

    /// Keeps a simulator running until the command ends.
    pub(crate) fn keep(&mut self, sim: vendor_sim::SimHandle) {
        self.sims.push(sim);
    }

    /// Stops the simulators.
    pub(crate) async fn shutdown(&mut self) {
        for sim in self.sims.drain(..) {
            sim.shutdown().await;
        }
    }

    /// `policy`, or a fast fixed interval with the hidden `--poll-ms` (default 20 ms with
    /// `--sim`, whose jobs take milliseconds).
    pub(crate) fn poll(&self, policy: PollPolicy) -> PollPolicy {
        let ms = match (self.global.poll_ms, self.sim()) {
            (Some(ms), _) => ms,
            (None, true) => 20,
            (None, false) => return policy,
        };
        let every = Duration::from_millis(ms);
        policy
            .first_delay(every)
            .min_delay(every)
            .max_delay(every)
            .multiplier(1.0)
    }

    /// Tells the user something on stderr (not with --quiet).
    pub(crate) fn note(&self, message: impl AsRef<str>) {
        if !self.global.quiet {
            eprintln!("{}", message.as_ref());
        }
    }

    fn target(&self) -> ProgressDrawTarget {
        if self.global.quiet {
            ProgressDrawTarget::hidden()
        } else {
            // Hidden by indicatif itself when stderr is not a terminal; see `plain_lines`.
            ProgressDrawTarget::stderr()
        }
    }

    /// When stderr is not a terminal (a cron job, a log file), indicatif draws nothing: a
    /// thread prints the bar's state as a plain line every `--progress-ms` (default 15 s)
    /// until the bar is finished or dropped.
    fn plain_lines(&self, bar: &ProgressBar, unit: &str) {
        if self.global.quiet || std::io::stderr().is_terminal() {
            return;
        }
        let every = Duration::from_millis(self.global.progress_ms.unwrap_or(15_000).max(1));
        let weak = bar.downgrade();
        let unit = unit.to_owned();
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(every);
                let Some(bar) = weak.upgrade() else { break };
                if bar.is_finished() {
                    break;
                }
                eprintln!("{}", progress_line(&bar, &unit));
            }
        });
    }

    /// A bar counting up to `len`.
    pub(crate) fn bar(&self, len: u64, unit: &str) -> ProgressBar {
        let bar = ProgressBar::with_draw_target(Some(len), self.target());
        let template =
            format!("{{spinner}} [{{elapsed_precise}}] {{bar:30}} {{pos}}/{{len}} {unit} {{msg}}");
        if let Ok(style) = ProgressStyle::with_template(&template) {
            bar.set_style(style);
        }
        bar.enable_steady_tick(Duration::from_millis(120));
        self.plain_lines(&bar, unit);
        bar
    }

    /// A spinner with a count, for work of unknown size.
    pub(crate) fn spinner(&self, unit: &str) -> ProgressBar {
        let bar = ProgressBar::with_draw_target(None, self.target());
        let template = format!("{{spinner}} [{{elapsed_precise}}] {{pos}} {unit} {{msg}}");
        if let Ok(style) = ProgressStyle::with_template(&template) {
            bar.set_style(style);
        }
        bar.enable_steady_tick(Duration::from_millis(120));
        self.plain_lines(&bar, unit);
        bar
    }
}

/// `[00:01:05] 1200/2600 items: sent 1300, ok 1200` (the bar's state as one plain line).
fn progress_line(bar: &ProgressBar, unit: &str) -> String {
    let secs = bar.elapsed().as_secs();
    let mut line = format!(
        "[{:02}:{:02}:{:02}] ",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    );
    let pos = bar.position();
    match bar.length() {
        Some(len) if len > 0 => line.push_str(&format!("{pos}/{len} {}", plural(len, unit))),
        _ => line.push_str(&format!("{pos} {}", plural(pos, unit))),
    }
    let message = bar.message();
    if !message.is_empty() {
        line.push_str(": ");
        line.push_str(&message);
    }
    line
}

/// `unit` (a plural such as `items`) agreeing with `n`: `1 item`, `2 items`.
pub(crate) fn plural(n: u64, unit: &str) -> String {
    match unit.strip_suffix('s') {
        Some(one) if n == 1 => one.to_owned(),
        _ => unit.to_owned(),
    }
}
