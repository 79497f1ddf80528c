//! `kiln`: Kiln's command-line client.
//!
//! # Layout
//!
//! - `cli`: the commands and options (clap).
//! - `job`: one file through the protocol — submit under its idempotency
//!   key, follow the operation's events, fetch the image, write it.
//! - `batch`: a folder with bounded concurrency, resumable.
//! - `output`: where results go, written atomically, and the batch's record
//!   of what it finished.
//! - `bars`: the progress bars (none when stdout is not a terminal).

mod bars;
mod batch;
mod cli;
mod job;
mod output;

use clap::Parser;
use cli::{Cli, Command};
use kiln_client::{Client, Operation, Retry, Status};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let client = Client::new(&cli.server)
        .with_api_key(cli.api_key.clone())
        .with_retry(Retry {
            attempts: cli.retries.saturating_add(1),
            ..Retry::default()
        });
    let outcome = match &cli.command {
        Command::Process(args) => job::process(&client, args, cli.json),
        Command::Batch(args) => batch::run(&client, args, cli.json),
        Command::Status { id, follow } => status(&client, id, *follow, cli.json),
        Command::Get { id, output } => client
            .image(id)
            .map_err(|err| err.to_string())
            .and_then(|image| output::write_atomically(output, &image.bytes))
            .map(|()| {
                if !cli.json {
                    println!("{}", output.display());
                }
                ExitCode::SUCCESS
            }),
        Command::Cancel { id } => client
            .cancel(id)
            .map(|operation| print_operation(&operation, cli.json))
            .map_err(|err| err.to_string()),
        Command::Delete { id } => client
            .delete(id)
            .map(|()| {
                if !cli.json {
                    println!("deleted {id}");
                }
                ExitCode::SUCCESS
            })
            .map_err(|err| err.to_string()),
    };
    outcome.unwrap_or_else(|message| {
        eprintln!("kiln: {message}");
        ExitCode::FAILURE
    })
}

/// `kiln status ID [--follow]`.
fn status(client: &Client, id: &str, follow: bool, json: bool) -> Result<ExitCode, String> {
    if !follow {
        return client
            .operation(id)
            .map(|operation| print_operation(&operation, json))
            .map_err(|err| err.to_string());
    }
    // A bar on a terminal; for scripts, every state as a line of JSON.
    let bar = bars::Bars::new(1, !json).job(id);
    let operation = client
        .follow(id, |operation| {
            bar.show(operation);
            if json {
                print_operation(operation, true);
            }
        })
        .map_err(|err| err.to_string())?;
    bar.finish(&operation);
    if !json {
        print_operation(&operation, false);
    }
    // `kiln status ID --follow && kiln get ID -o …` fetches only what
    // succeeded.
    Ok(if operation.status == Status::Succeeded {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_operation(operation: &Operation, json: bool) -> ExitCode {
    let text = if json {
        serde_json::to_string(operation)
    } else {
        serde_json::to_string_pretty(operation)
    };
    println!("{}", text.unwrap_or_default());
    ExitCode::SUCCESS
}
