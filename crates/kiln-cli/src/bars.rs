//! Progress bars: one per job, from its operation's events (uploading,
//! queued, percent complete, done), and one for a whole batch. Drawn on
//! stderr, and only when stdout and stderr are terminals: piped or
//! redirected output gets no bars.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use kiln_client::{Operation, Status};
use std::io::IsTerminal;
use std::time::Duration;

/// Whether bars are drawn at all.
pub fn shown() -> bool {
    std::io::stdout().is_terminal() && std::io::stderr().is_terminal()
}

/// The bars of one command.
pub struct Bars {
    visible: bool,
    multi: MultiProgress,
    overall: Option<ProgressBar>,
}

impl Bars {
    /// Bars for `files` files (an overall bar when there are several),
    /// drawn when `wanted` and [`shown`].
    pub fn new(files: u64, wanted: bool) -> Bars {
        let visible = wanted && shown();
        let target = if visible {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let multi = MultiProgress::with_draw_target(target);
        let overall = (files > 1).then(|| {
            let bar = multi.add(ProgressBar::new(files));
            bar.set_style(style("{prefix:>12.bold} [{bar:30.green/white}] {pos}/{len} files, {elapsed} elapsed, {eta} left"));
            bar.set_prefix("batch");
            bar
        });
        Bars {
            visible,
            multi,
            overall,
        }
    }

    /// A bar for one job, named `name`.
    pub fn job(&self, name: &str) -> JobBar {
        let bar = ProgressBar::new(100);
        let bar = match &self.overall {
            // Per-file bars above the overall one.
            Some(overall) => self.multi.insert_before(overall, bar),
            None => self.multi.add(bar),
        };
        bar.set_style(style(
            "{prefix:>12.bold} [{bar:30.cyan/blue}] {percent:>3}% {msg}",
        ));
        bar.set_prefix(shorten(name, 12));
        bar.enable_steady_tick(Duration::from_millis(200));
        JobBar { bar }
    }

    /// One more file is finished (done, skipped or failed).
    pub fn file_finished(&self) {
        if let Some(overall) = &self.overall {
            overall.inc(1);
        }
    }

    /// Prints `line` above the bars (or plainly, without bars).
    pub fn println(&self, line: &str) {
        if self.visible {
            let _ = self.multi.println(line);
        } else {
            println!("{line}");
        }
    }

    /// Removes the overall bar.
    pub fn finish(&self) {
        if let Some(overall) = &self.overall {
            overall.finish_and_clear();
        }
    }
}

/// One job's bar.
pub struct JobBar {
    bar: ProgressBar,
}

impl JobBar {
    /// `sent` of `total` bytes of the upload are sent.
    pub fn uploading(&self, sent: u64, total: u64) {
        self.bar.set_position(sent * 100 / total.max(1));
        self.bar.set_message("uploading");
    }

    /// The server works on it inline (no events until it answers).
    pub fn processing_inline(&self) {
        self.bar.set_position(0);
        self.bar.set_message("processing");
    }

    /// The job is as `operation` says.
    pub fn show(&self, operation: &Operation) {
        let percent = operation.percent_complete.unwrap_or(0);
        self.bar.set_position(u64::from(percent));
        let message = match (operation.status, operation.queue_position) {
            (Status::NotStarted, Some(position)) => format!("queued, #{position}"),
            (Status::NotStarted, None) => "queued".into(),
            (Status::Running, _) => "running".into(),
            (Status::Succeeded, _) => "fetching".into(),
            (Status::Failed, _) => "failed".into(),
            (Status::Canceled, _) => "canceled".into(),
        };
        self.bar.set_message(message);
    }

    /// The job's last state.
    pub fn finish(&self, operation: &Operation) {
        self.show(operation);
        self.bar.finish_and_clear();
    }

    /// The file is done (its result written) or failed: the bar goes.
    pub fn clear(&self) {
        self.bar.finish_and_clear();
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// At most `width` characters, the end kept (file names differ there).
fn shorten(name: &str, width: usize) -> String {
    let count = name.chars().count();
    if count <= width {
        return name.to_owned();
    }
    let tail: String = name.chars().skip(count - (width - 1)).collect();
    format!("…{tail}")
}
