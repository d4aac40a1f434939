//! What a command ends with: a status (the exit code) and a summary (the `--json` object).

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
