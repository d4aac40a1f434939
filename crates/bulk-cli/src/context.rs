//! What every command gets: settings, the terminal, the poll timing and the simulators.

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
            // Hidden by indicatif itself when stderr is not a terminal.
            ProgressDrawTarget::stderr()
        }
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
        bar
    }
}
