//! Progress reports from inside [`process`](crate::process)'s stages, so
//! that a caller can renew a lease, move a progress bar or notice a cancel
//! while one long decode, filter or encode runs.
//!
//! Every stage reports when it starts (`done == 0.0`) and ends
//! (`done == 1.0`); the stages that work row by row (blur and sharpen on
//! large frames, JPEG and PNG encoding) report in between too. What a codec
//! does in one call without a hook (decoding, resizing, WebP and GIF
//! encoding) is reported only at its ends, and always comes first in its
//! stage, right after the start report.

use std::ops::ControlFlow;

use crate::error::ImageError;

/// A stage of [`process`](crate::process).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Decoding and orienting the upload.
    Decode,
    /// Applying operation `index` (from 0) of `of`.
    Apply {
        /// Which operation, from 0.
        index: usize,
        /// How many operations there are.
        of: usize,
    },
    /// Decoding, transforming (every operation) and encoding frame
    /// `index` (from 0) of an animation of `of` frames, which go through
    /// one at a time; the `Encode` stage then only closes the file.
    Frame {
        /// Which frame, from 0.
        index: usize,
        /// How many frames there are.
        of: usize,
    },
    /// Encoding the output.
    Encode,
}

/// Where [`process`](crate::process) is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Progress {
    /// The stage under way.
    pub stage: Stage,
    /// How much of it is done, from 0.0 (just started) to 1.0 (finished).
    pub done: f32,
}

impl Progress {
    /// Whether this report closes its stage.
    pub fn is_stage_end(&self) -> bool {
        self.done >= 1.0
    }
}

/// The callback [`process`](crate::process) reports to; returning
/// [`ControlFlow::Break`] stops processing with [`ImageError::Canceled`].
pub type OnProgress<'a> = dyn FnMut(Progress) -> ControlFlow<()> + 'a;

/// The smallest advance within a stage worth a report: callers read the
/// clock on each one, so reporting every row would only cost time.
const MIN_STEP: f32 = 1.0 / 128.0;

/// Reports the progress of one stage to the caller's callback.
pub(crate) struct Reporter<'a, 'b> {
    on_progress: &'a mut OnProgress<'b>,
    stage: Stage,
    last: f32,
}

impl<'a, 'b> Reporter<'a, 'b> {
    /// Starts `stage`: reports `done == 0.0`.
    pub(crate) fn start(
        on_progress: &'a mut OnProgress<'b>,
        stage: Stage,
    ) -> Result<Self, ImageError> {
        let mut reporter = Reporter {
            on_progress,
            stage,
            last: 0.0,
        };
        reporter.send(0.0)?;
        Ok(reporter)
    }

    /// Reports that `done` of the stage is done (skipped when it moved less
    /// than [`MIN_STEP`] since the last report).
    pub(crate) fn report(&mut self, done: f32) -> Result<(), ImageError> {
        if done - self.last < MIN_STEP {
            return Ok(());
        }
        self.send(done.min(0.999))
    }

    /// Reports `done` of `rows` rows done.
    pub(crate) fn rows(&mut self, done: u32, rows: u32) -> Result<(), ImageError> {
        self.report(done as f32 / rows.max(1) as f32)
    }

    /// Ends the stage: reports `done == 1.0`.
    pub(crate) fn finish(mut self) -> Result<(), ImageError> {
        self.send(1.0)
    }

    fn send(&mut self, done: f32) -> Result<(), ImageError> {
        self.last = done;
        match (self.on_progress)(Progress {
            stage: self.stage,
            done,
        }) {
            ControlFlow::Continue(()) => Ok(()),
            ControlFlow::Break(()) => Err(ImageError::Canceled),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded(run: impl FnOnce(&mut OnProgress<'_>)) -> Vec<f32> {
        let mut seen = Vec::new();
        run(&mut |p: Progress| {
            seen.push(p.done);
            ControlFlow::Continue(())
        });
        seen
    }

    #[test]
    fn a_stage_reports_its_start_and_its_end() {
        let seen = recorded(|callback| {
            Reporter::start(callback, Stage::Encode)
                .unwrap()
                .finish()
                .unwrap();
        });
        assert_eq!(seen, [0.0, 1.0]);
    }

    #[test]
    fn reports_within_a_stage_are_thinned_out_and_never_claim_the_end() {
        let seen = recorded(|callback| {
            let mut reporter = Reporter::start(callback, Stage::Decode).unwrap();
            for row in 0..=10_000 {
                reporter.rows(row, 10_000).unwrap();
            }
            reporter.finish().unwrap();
        });
        assert!(seen.len() <= 130, "{} reports", seen.len());
        assert!(seen.len() > 100, "{} reports", seen.len());
        assert_eq!(seen.iter().filter(|&&d| d >= 1.0).count(), 1);
        assert!(seen.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn a_break_from_the_callback_is_a_cancel() {
        let mut calls = 0;
        let mut callback = |_: Progress| {
            calls += 1;
            if calls == 2 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        };
        let mut reporter = Reporter::start(&mut callback, Stage::Encode).unwrap();
        assert_eq!(reporter.report(0.5), Err(ImageError::Canceled));
    }
}
