//! What a scenario hands back, and the small formatting helpers of the
//! report blocks: percentiles, sizes, the `TARGET` lines.

use std::time::Duration;

/// A scenario's outcome: the targets it measured and the invariants that
/// failed (any failure makes the exit status non-zero).
#[derive(Default)]
pub struct Outcome {
    /// `TARGET <name>: <figures> — met|NOT met` lines.
    pub targets: Vec<Target>,
    /// Broken invariants: lost, wrong or duplicated jobs, leftover keys.
    pub failures: Vec<String>,
}

impl Outcome {
    /// Records an invariant: `failure` is kept (and printed) unless `held`.
    pub fn check(&mut self, held: bool, failure: impl Into<String>) {
        if !held {
            let failure = failure.into();
            println!("  INVARIANT FAILED: {failure}");
            self.failures.push(failure);
        }
    }

    /// Adds a target line.
    pub fn target(&mut self, name: &str, figures: String, met: Verdict) {
        self.targets.push(Target {
            name: name.to_owned(),
            figures,
            met,
        });
    }
}

/// Whether a target was met.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// It was.
    Met,
    /// It was not.
    NotMet,
    /// It could not be measured (said why in the figures).
    NotMeasured,
}

impl Verdict {
    /// `Met` when `met`, else `NotMet`.
    pub fn from(met: bool) -> Verdict {
        if met { Verdict::Met } else { Verdict::NotMet }
    }
}

/// One summary line.
pub struct Target {
    /// The target's name.
    pub name: String,
    /// What was measured.
    pub figures: String,
    /// The verdict.
    pub met: Verdict,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let verdict = match self.met {
            Verdict::Met => "met",
            Verdict::NotMet => "NOT met",
            Verdict::NotMeasured => "not measured",
        };
        write!(f, "TARGET {}: {} — {verdict}", self.name, self.figures)
    }
}

/// The `p`th percentile (0..=100) of `samples`, nearest rank; zero when
/// there are none.
pub fn percentile(samples: &[Duration], p: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// `p50 … / p99 …` of `samples`, in milliseconds or seconds.
pub fn p50_p99(samples: &[Duration]) -> String {
    format!(
        "p50 {} / p99 {} (n={})",
        duration(percentile(samples, 50.0)),
        duration(percentile(samples, 99.0)),
        samples.len()
    )
}

/// `850 ms` or `12.3 s`.
pub fn duration(d: Duration) -> String {
    if d < Duration::from_secs(10) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// Bytes in MiB, one decimal.
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// Prints a scenario's heading.
pub fn heading(title: &str) {
    println!("\n==== {title} ====");
}
