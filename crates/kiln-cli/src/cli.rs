//! The commands and their options.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Kiln's command-line client: sharpen, compress, resize and convert
/// images on a Kiln server, one file or a whole folder.
#[derive(Parser, Debug)]
#[command(name = "kiln", version)]
pub struct Cli {
    /// The server's base URL.
    #[arg(
        long,
        env = "KILN_URL",
        default_value = "http://127.0.0.1:3000",
        global = true
    )]
    pub server: String,
    /// An API key, when the server asks for one (sent as a Bearer token).
    #[arg(long, env = "KILN_API_KEY", hide_env_values = true, global = true)]
    pub api_key: Option<String>,
    /// How many times a request is retried after no answer, a 429 or a
    /// 503 (waiting what Retry-After asks, else backing off from 250 ms);
    /// 0 reports every failure at once.
    #[arg(long, default_value_t = 9, global = true)]
    pub retries: u32,
    /// Machine-readable output: one JSON object per line, no bars.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Process one or more files, with a progress bar per job.
    Process(ProcessArgs),
    /// Process a whole folder, resumably: a rerun skips what a previous
    /// run finished and never makes a second job for a file.
    Batch(BatchArgs),
    /// Show an operation; with --follow, until it finishes.
    Status {
        /// The operation's id.
        id: String,
        /// Follow its events until it finishes.
        #[arg(long)]
        follow: bool,
    },
    /// Fetch a processed image.
    Get {
        /// The job's id.
        id: String,
        /// Where to write it.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Cancel an unfinished job.
    Cancel {
        /// The operation's id.
        id: String,
    },
    /// Delete a job, its upload and its image.
    Delete {
        /// The job's id.
        id: String,
    },
}

/// How each file is processed.
#[derive(Args, Debug, Clone)]
pub struct JobOptions {
    /// The operations, e.g. 'resize(w=800),sharpen(sigma=1),format(webp)'
    /// (the server's defaults when absent).
    #[arg(long)]
    pub ops: Option<String>,
    /// Ask for 202 Accepted at once and follow the job's events
    /// (queue position, percent complete) instead of an inline answer.
    #[arg(long = "async")]
    pub asynchronous: bool,
    /// Without --async: how long the server may work inline before it
    /// answers 202 (its own max_wait_seconds when absent).
    #[arg(long, value_name = "SECONDS", conflicts_with = "asynchronous")]
    pub wait: Option<u64>,
    /// The output format: auto lets the server choose from --accept.
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// The media types this client takes, for --format auto.
    #[arg(long, default_value = "image/avif,image/webp,image/jpeg,image/png")]
    pub accept: String,
}

#[derive(Args, Debug)]
pub struct ProcessArgs {
    /// The images.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// A folder for the results, or (with one file) the result's path.
    /// Without it, each result is written next to its file as
    /// NAME.kiln.EXT.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub job: JobOptions,
}

#[derive(Args, Debug)]
pub struct BatchArgs {
    /// The folder of images.
    pub dir: PathBuf,
    /// The folder for the results (created if missing), mirroring DIR.
    #[arg(long)]
    pub out: PathBuf,
    /// Files processed at once.
    #[arg(short = 'j', long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: u16,
    /// Include subfolders.
    #[arg(short, long)]
    pub recursive: bool,
    #[command(flatten)]
    pub job: JobOptions,
}

impl JobOptions {
    /// The ops as sent: --format appended as `format(..)` when given.
    pub fn ops(&self) -> Option<String> {
        match (&self.ops, &self.format) {
            (ops, None) => ops.clone(),
            (None, Some(format)) => Some(format!("format({format})")),
            (Some(ops), Some(format)) => Some(format!("{ops},format({format})")),
        }
    }

    /// `Accept`, sent only where the server consults it.
    pub fn accept(&self) -> Option<&str> {
        self.ops()
            .is_some_and(|ops| ops.replace(' ', "").contains("format(auto)"))
            .then_some(self.accept.as_str())
    }
}
