//! What a command ends with: a status (the exit code) and a summary (the `--json` object).
//!
//! The exit-code rule, shared by every command:
//! - 0 ([`Status::Ok`]): everything was applied (or there was nothing to do);
//! - 2 ([`Status::Partial`]): some items were not applied, and others were;
//! - 1 ([`Status::Error`]): nothing was done: a command-level or vendor error (returned as
//!   `Err` from the command, printed once by `main`), a job that failed outright, or a run in
//!   which no item was applied. [`Status::of_items`] applies it to item counts.

use std::io::Write;
use std::process::ExitCode;

use serde_json::{Map, Value};

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// Everything was done.
    Ok,
    /// The command ran, but some items failed.
    Partial,
    /// Nothing, or not everything, was done.
    Error,
}

impl Status {
    /// The status of a run from its items: `applied` were applied, `not_applied` were not
    /// (failed, refused, invalid, never sent, or of unknown outcome).
    ///
    /// Nothing left out is [`Status::Ok`]; some left out and some applied is
    /// [`Status::Partial`]; nothing applied while some were left out is [`Status::Error`].
    #[allow(
        dead_code,
        reason = "for the vendor subcommands, which adopt it separately"
    )]
    pub(crate) fn of_items(applied: u64, not_applied: u64) -> Status {
        match (applied, not_applied) {
            (_, 0) => Status::Ok,
            (0, _) => Status::Error,
            _ => Status::Partial,
        }
    }

    /// The exit code: 0, 2 and 1.
    pub(crate) fn code(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::Error => 1,
            Status::Partial => 2,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Partial => "partial",
            Status::Error => "error",
        }
    }
}

/// Identical messages counted once each, in order of first appearance, so that one cause
/// (a 404 for an unknown procedure, a refused token) is shown once, not once per item.
#[allow(
    dead_code,
    reason = "for the vendor subcommands, which adopt it separately"
)]
pub(crate) fn group_messages<I, S>(messages: I) -> Vec<(String, usize)>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut groups: Vec<(String, usize)> = Vec::new();
    for m in messages {
        let m = m.as_ref();
        match groups.iter_mut().find(|(g, _)| g == m) {
            Some((_, n)) => *n += 1,
            None => groups.push((m.to_owned(), 1)),
        }
    }
    groups
}

/// The result of a command that ran to its end.
#[derive(Debug)]
pub(crate) struct Outcome {
    status: Status,
    summary: Option<Map<String, Value>>,
}

impl Outcome {
    /// A command with `summary` (a JSON object; anything else is wrapped as `result`).
    pub(crate) fn new(status: Status, command: &str, summary: Value) -> Self {
        let mut map = match summary {
            Value::Object(map) => map,
            other => Map::from_iter([("result".to_owned(), other)]),
        };
        map.insert("command".into(), Value::String(command.to_owned()));
        Outcome {
            status,
            summary: Some(map),
        }
    }

    /// A command whose stdout is its output (completions, man page): no summary.
    pub(crate) fn silent() -> Self {
        Outcome {
            status: Status::Ok,
            summary: None,
        }
    }

    /// Prints the summary when asked and returns the exit code.
    pub(crate) fn finish(self, json: bool) -> ExitCode {
        if json && let Some(mut summary) = self.summary {
            summary.insert("status".into(), Value::String(self.status.label().into()));
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", Value::Object(summary));
        }
        ExitCode::from(self.status.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exit_code_rule() {
        assert_eq!(Status::of_items(10, 0).code(), 0);
        assert_eq!(Status::of_items(0, 0).code(), 0);
        assert_eq!(Status::of_items(7, 3).code(), 2);
        assert_eq!(Status::of_items(0, 270).code(), 1);
    }

    #[test]
    fn identical_messages_are_counted_once() {
        let groups = group_messages(["404 procedure", "timeout", "404 procedure"]);
        assert_eq!(
            groups,
            [("404 procedure".to_owned(), 2), ("timeout".to_owned(), 1)]
        );
    }
}
