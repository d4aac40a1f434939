//! The command line: every subcommand, flag and help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const AFTER_HELP: &str = "\
Exit status:
  0    success: everything was applied
  1    error: nothing was done (a bad command, a vendor error, a job that failed outright);
       the message says why and what to do next
  2    partial failure: some items were not applied and others were (see --failed-out or the
       summary)
  130  interrupted (Ctrl-C); the message says how to finish the work

Progress goes to stderr: a bar on a terminal, otherwise a plain line every 15 seconds (for cron
logs). -v logs what the clients do; secrets are never logged.

Credentials come from the environment (ZOHO_*, CHAKRA_TOKEN, ZEFORT_API_KEY, UNICAT_*), from
files named by --<vendor>-...-file, or from the config file ($XDG_CONFIG_HOME/bulk/config.toml,
see the README). They are never printed and never taken as flag values.

Examples:
  bulk --sim zoho export All_Orders --out rows.csv
  bulk zoho export All_Orders --criteria 'Status == \"Open\"' --out open.jsonl --job-file export.job
  bulk chakra update lead updates.csv --key lead_id --failed-out failed.jsonl
  bulk zefort update --tag 'contracts of service' --end-date 2023-02-15 --status done
  bulk unicat delete --children r-discontinued --exclude r-keep
  bulk jobs resume export.job
  bulk completions bash > /etc/bash_completion.d/bulk";

/// Bulk jobs against Zoho Creator, ChakraHQ, Zefort and Unicat, from a shell or a cron job.
#[derive(Debug, Parser)]
#[command(
    name = "bulk",
    version,
    about = "Bulk jobs against Zoho Creator, ChakraHQ, Zefort and Unicat, from a shell or cron",
    long_about = "Bulk jobs against Zoho Creator, ChakraHQ, Zefort and Unicat, from a shell or a \
cron job.\n\nEach command submits the vendor's bulk job, waits for it with progress on stderr \
(a bar on a terminal, plain periodic lines otherwise, nothing with --quiet), finishes the work (downloads, \
acknowledgements) and ends with an exit status that tells success, partial failure and error \
apart. With --json a summary object is printed on stdout. With --sim every command runs against \
simulators embedded in this program, seeded with demo data, so it can be tried without an \
account.",
    after_help = AFTER_HELP
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Flags accepted by every command.
#[derive(Debug, Args)]
pub(crate) struct Global {
    /// Run against simulators embedded in this program (demo data, no account needed).
    #[arg(long, global = true)]
    pub(crate) sim: bool,
    /// Print a machine-readable summary object on stdout.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// No progress bars and no messages on stderr (errors are still printed).
    #[arg(short, long, global = true)]
    pub(crate) quiet: bool,
    /// Log what the clients do on stderr (-vv for more). Secrets are never logged.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
    /// Print a plain progress line this often when stderr is not a terminal.
    #[arg(long, global = true, hide = true, value_name = "MS")]
    pub(crate) progress_ms: Option<u64>,
    /// The config file [default: $XDG_CONFIG_HOME/bulk/config.toml].
    #[arg(long, global = true, value_name = "PATH")]
    pub(crate) config: Option<PathBuf>,
    /// A file holding the Zoho OAuth client secret.
    #[arg(long, global = true, value_name = "PATH")]
    pub(crate) zoho_client_secret_file: Option<PathBuf>,
    /// A file holding the Zoho OAuth refresh token.
    #[arg(long, global = true, value_name = "PATH")]
    pub(crate) zoho_refresh_token_file: Option<PathBuf>,
    /// A file holding the ChakraHQ access token.
    #[arg(long, global = true, value_name = "PATH")]
    pub(crate) chakra_token_file: Option<PathBuf>,
    /// A file holding the Zefort API key.
    #[arg(long, global = true, value_name = "PATH")]
    pub(crate) zefort_api_key_file: Option<PathBuf>,
    /// A file holding the Unicat API key.
    #[arg(long, global = true, value_name = "PATH")]
    pub(crate) unicat_api_key_file: Option<PathBuf>,
    /// Look at running jobs every this many milliseconds (for tests and simulators).
    #[arg(long, global = true, hide = true, value_name = "MS")]
    pub(crate) poll_ms: Option<u64>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Zoho Creator: export reports.
    #[command(subcommand)]
    Zoho(ZohoCommand),
    /// ChakraHQ: update processes from a file.
    #[command(subcommand)]
    Chakra(ChakraCommand),
    /// Zefort: update and tag contracts.
    #[command(subcommand)]
    Zefort(ZefortCommand),
    /// Unicat: delete, restore and read records.
    #[command(subcommand)]
    Unicat(UnicatCommand),
    /// Jobs started earlier (see --job-file).
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// Print a shell completion script.
    #[command(
        after_help = "Example:\n  bulk completions bash > ~/.local/share/bash-completion/completions/bulk\n  bulk completions zsh > ~/.zfunc/_bulk"
    )]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) on stdout.
    #[command(after_help = "Example:\n  bulk man > /usr/local/share/man/man1/bulk.1")]
    Man,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ZohoCommand {
    /// Export every row of a report to a CSV or JSONL file.
    #[command(
        long_about = "Export every row of a report to a CSV or JSONL file, across as many bulk \
read jobs as the report needs. Rows are streamed to a temporary file beside the target, which is \
renamed into place only when the export is complete: a failed run never leaves a file that looks \
complete. With --job-file the export's checkpoint is saved after every job, and the temporary \
file is kept after a failure, so `bulk jobs resume` can finish it.",
        after_help = "Examples:\n  bulk zoho export All_Orders --out rows.csv\n  bulk zoho export All_Orders --fields ID,Email --criteria 'Status == \"Open\"' --out open.jsonl\n  bulk zoho export All_Orders --out rows.csv --job-file rows.job || bulk jobs resume rows.job"
    )]
    Export(ZohoExport),
}

#[derive(Debug, Args)]
pub(crate) struct ZohoExport {
    /// The report's link name.
    pub(crate) report: String,
    /// A Creator criteria expression, such as 'Status == "Open"'.
    #[arg(long)]
    pub(crate) criteria: Option<String>,
    /// Only these fields, comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "A,B,C")]
    pub(crate) fields: Option<Vec<String>>,
    /// Rows per job: a multiple of 1000 from 100000 to 200000.
    #[arg(long, value_name = "N")]
    pub(crate) max_records: Option<u32>,
    /// The file to write (its extension gives the format unless --format is given).
    #[arg(long, value_name = "PATH")]
    pub(crate) out: PathBuf,
    /// The output format.
    #[arg(long, value_enum)]
    pub(crate) format: Option<Format>,
    /// Save the export's checkpoint here, for `bulk jobs resume`.
    #[arg(long, value_name = "PATH")]
    pub(crate) job_file: Option<PathBuf>,
}

/// A file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Format {
    /// Comma-separated values with a header row.
    Csv,
    /// One JSON object per line.
    Jsonl,
}

impl Format {
    /// `format`, or the format the extension of `path` names.
    pub(crate) fn of(path: &std::path::Path, format: Option<Format>) -> anyhow::Result<Format> {
        if let Some(f) = format {
            return Ok(f);
        }
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("csv") => Ok(Format::Csv),
            Some(e) if e.eq_ignore_ascii_case("jsonl") || e.eq_ignore_ascii_case("ndjson") => {
                Ok(Format::Jsonl)
            }
            _ => anyhow::bail!(
                "cannot tell the format of {}: name it .csv or .jsonl, or give --format",
                path.display()
            ),
        }
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum ChakraCommand {
    /// Update processes from a CSV or JSONL file.
    #[command(
        long_about = "Update the processes of a procedure from a CSV or JSONL file, in chunks \
sent concurrently, each background job followed to its end.\n\nCSV: a header row with exactly \
one identifier column (`id`, or the procedure's primary-key attribute such as `lead_id`) and any \
of `data.<attribute>`, `state`, `status`, `assignedTo`, `nextActionAt` (epoch ms), `isDeleted`. \
Empty cells are left out.\nJSONL: one item per line in the API's shape, \
{\"lead_id\": \"L-1\", \"update\": {\"state\": \"QUALIFIED\", \"data\": {\"score\": 80}}}.\n\n\
The whole file is checked before anything is sent: a malformed row or an unknown column stops \
the command (exit 1). Items the server refuses are written to --failed-out in the JSONL shape, \
to fix and send again (exit 2).",
        after_help = "Examples:\n  bulk chakra update lead updates.csv --key lead_id --failed-out failed.jsonl\n  bulk chakra update lead failed.jsonl   # after fixing the failed items"
    )]
    Update(ChakraUpdate),
}

#[derive(Debug, Args)]
pub(crate) struct ChakraUpdate {
    /// The procedure's shortId.
    pub(crate) procedure: String,
    /// The updates: a .csv or .jsonl file.
    pub(crate) file: PathBuf,
    /// The input format (default: from the extension).
    #[arg(long, value_enum)]
    pub(crate) format: Option<Format>,
    /// The procedure's primary-key attribute, when a CSV file identifies processes by it
    /// rather than by an `id` column (for example `lead_id`).
    #[arg(long, value_name = "ATTRIBUTE")]
    pub(crate) key: Option<String>,
    /// Write every item that was not applied here (JSONL, ready to fix and resend; JSONL input
    /// lines are copied as they were); the items whose outcome stayed unknown go to the same
    /// path with `.unknown` before the extension.
    #[arg(long, value_name = "PATH")]
    pub(crate) failed_out: Option<PathBuf>,
    /// Do not read back the processes of items whose outcome is unknown (and do not send
    /// again the ones not applied): report them as unknown.
    #[arg(long)]
    pub(crate) no_reconcile: bool,
    /// Items per request.
    #[arg(long, value_name = "N")]
    pub(crate) chunk_size: Option<usize>,
    /// Requests in flight.
    #[arg(long, value_name = "N")]
    pub(crate) concurrency: Option<usize>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ZefortCommand {
    /// Change the metadata or status of many contracts.
    #[command(
        after_help = "Examples:\n  bulk zefort update --tag 'contracts of service' --end-date 2023-02-15 --status done\n  bulk zefort update --contracts ct_1,ct_2 --set title='Master agreement'\n  bulk zefort update --search acme --status done --no-wait --job-file fix.job && bulk jobs resume fix.job"
    )]
    Update(ZefortUpdate),
    /// Attach a tag to many contracts.
    #[command(
        after_help = "Examples:\n  bulk zefort tag reviewed --contracts ct_1,ct_2\n  bulk zefort tag 'to renew' --search acme --create"
    )]
    Tag(ZefortTag),
}

/// Which contracts a Zefort command changes.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub(crate) struct ZefortTarget {
    /// The contracts whose tags match this text.
    #[arg(long, value_name = "TEXT")]
    pub(crate) tag: Option<String>,
    /// These contracts, comma-separated ids.
    #[arg(long, value_delimiter = ',', value_name = "ID,ID")]
    pub(crate) contracts: Option<Vec<String>>,
    /// The contracts a full-text search matches.
    #[arg(long, value_name = "TEXT")]
    pub(crate) search: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ZefortUpdate {
    #[command(flatten)]
    pub(crate) target: ZefortTarget,
    /// Set an attribute: NAME=VALUE (repeatable; a JSON number, boolean or null is sent as such).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub(crate) set: Vec<String>,
    /// Set the end date (YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    pub(crate) end_date: Option<String>,
    /// Set the start date (YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    pub(crate) start_date: Option<String>,
    /// Set the contract status (done marks the contracts reviewed).
    #[arg(long, value_name = "STATUS")]
    pub(crate) status: Option<String>,
    /// Leave the finished task unacknowledged (it stays in the web UI's pending list).
    #[arg(long)]
    pub(crate) no_acknowledge: bool,
    #[command(flatten)]
    pub(crate) job: JobArgs,
}

#[derive(Debug, Args)]
pub(crate) struct ZefortTag {
    /// The tag: its name, or its id (tag_...).
    pub(crate) tag: String,
    /// These contracts, comma-separated ids.
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "ID,ID",
        required_unless_present = "search",
        conflicts_with = "search"
    )]
    pub(crate) contracts: Option<Vec<String>>,
    /// The contracts a full-text search matches.
    #[arg(long, value_name = "TEXT")]
    pub(crate) search: Option<String>,
    /// Create the tag when no tag has this name.
    #[arg(long)]
    pub(crate) create: bool,
    #[command(flatten)]
    pub(crate) job: JobArgs,
}

/// What to do with a submitted vendor job.
#[derive(Debug, Args)]
pub(crate) struct JobArgs {
    /// Save the submitted job here, for `bulk jobs resume` (removed once the work is finished).
    #[arg(long, value_name = "PATH")]
    pub(crate) job_file: Option<PathBuf>,
    /// Submit and exit without waiting (needs --job-file).
    #[arg(long, requires = "job_file")]
    pub(crate) no_wait: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum UnicatCommand {
    /// Delete the selected records (they go to the trash).
    #[command(
        after_help = "Examples:\n  bulk unicat delete --children r-discontinued --exclude r-keep\n  bulk unicat delete --search obsolete --filter definition:is:d-article"
    )]
    Delete(UnicatMutation),
    /// Restore the selected records from the trash.
    #[command(after_help = "Example:\n  bulk unicat undelete --gids r-1,r-2")]
    Undelete(UnicatMutation),
    /// Write the selected records as JSON lines ({"gid": ..., "data": {...}}).
    #[command(
        after_help = "Examples:\n  bulk unicat get --children r-root > records.jsonl\n  bulk unicat get --search obsolete --out obsolete.jsonl"
    )]
    Get(UnicatGet),
}

/// A selection of Unicat records: any combination of the flags (a union).
#[derive(Debug, Args)]
pub(crate) struct UnicatSelectionArgs {
    /// These records, comma-separated gids.
    #[arg(long, value_delimiter = ',', value_name = "GID,GID")]
    pub(crate) gids: Vec<String>,
    /// The children of this record.
    #[arg(long, value_name = "GID")]
    pub(crate) children: Option<String>,
    /// Leave these out of --children or --search, comma-separated gids.
    #[arg(long, value_delimiter = ',', value_name = "GID,GID")]
    pub(crate) exclude: Vec<String>,
    /// The records a search matches.
    #[arg(long, value_name = "TEXT")]
    pub(crate) search: Option<String>,
    /// Narrow --search: FIELD:OP:VALUE, such as definition:is:d-article (repeatable).
    #[arg(long, value_name = "FIELD:OP:VALUE", requires = "search")]
    pub(crate) filter: Vec<String>,
    /// A selection in the API's JSON form, read from a file.
    #[arg(long, value_name = "PATH")]
    pub(crate) selection_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct UnicatMutation {
    #[command(flatten)]
    pub(crate) selection: UnicatSelectionArgs,
    #[command(flatten)]
    pub(crate) job: JobArgs,
}

#[derive(Debug, Args)]
pub(crate) struct UnicatGet {
    #[command(flatten)]
    pub(crate) selection: UnicatSelectionArgs,
    /// Write here instead of stdout.
    #[arg(long, value_name = "PATH")]
    pub(crate) out: Option<PathBuf>,
    /// Records per page (at most 1000).
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub(crate) page_size: u32,
}

#[derive(Debug, Subcommand)]
pub(crate) enum JobsCommand {
    /// Keep waiting for a job saved with --job-file and finish its work.
    #[command(
        long_about = "Keep waiting for a job saved with --job-file and finish its work: a Zoho \
export continues from its last checkpoint into the kept temporary file and is renamed into place; \
a Zefort task is waited for and acknowledged; a Unicat job is followed through the sync feed. \
The job file is removed once the work is finished.",
        after_help = "Example:\n  bulk jobs resume rows.job"
    )]
    Resume {
        /// The job file.
        job_file: PathBuf,
    },
}
