//! Times [`kiln_image::process`] stage by stage from the progress it
//! reports, so that the native benchmark and the Wasm component that runs
//! the pipeline inside Spin measure with the same code.

use std::ops::ControlFlow;
use std::time::Instant;

use kiln_image::{ImageError, Limits, Op, Output, Stage, process};
use serde::{Deserialize, Serialize};

/// How long one stage took.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StageTime {
    /// `decode`, the operation (`resize(w=1600)`), an animation's frame
    /// (`frame 3`, every operation on it), or `encode`.
    pub stage: String,
    /// Milliseconds from the stage's start to its end.
    pub ms: f64,
}

/// A timed run of the pipeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Timed {
    /// Milliseconds for the whole of `process`, header checks included.
    pub total_ms: f64,
    /// Each stage, in order.
    pub stages: Vec<StageTime>,
    /// The encoded output's size.
    pub bytes: usize,
    /// The output's dimensions.
    pub width: u32,
    /// See `width`.
    pub height: u32,
}

/// Runs `process(bytes, ops)` within the default limits, timing each stage.
pub fn timed_process(bytes: &[u8], ops: &[Op]) -> Result<(Timed, Output), ImageError> {
    let started = Instant::now();
    let mut stage_started = started;
    let mut stages = Vec::new();
    let output = process(bytes, ops, &Limits::default(), &mut |progress| {
        if progress.done == 0.0 {
            stage_started = Instant::now();
        } else if progress.is_stage_end() {
            let stage = match progress.stage {
                Stage::Decode => "decode".to_owned(),
                Stage::Apply { index, .. } => ops[index].to_string(),
                Stage::Frame { index, .. } => format!("frame {index}"),
                Stage::Encode => "encode".to_owned(),
            };
            let ms = stage_started.elapsed().as_secs_f64() * 1000.0;
            stages.push(StageTime { stage, ms });
        }
        ControlFlow::Continue(())
    })?;
    let timed = Timed {
        total_ms: started.elapsed().as_secs_f64() * 1000.0,
        stages,
        bytes: output.bytes.len(),
        width: output.width,
        height: output.height,
    };
    Ok((timed, output))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every stage is timed once, in pipeline order, named as a reader of
    /// the benchmark expects.
    #[test]
    fn every_stage_is_timed_once_in_order() {
        let mut png = Vec::new();
        image::DynamicImage::new_rgb8(40, 30)
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        let ops = kiln_image::parse_ops("resize(w=20),flip(h),format(jpeg)").unwrap();
        let (timed, output) = timed_process(&png, &ops).unwrap();
        let names: Vec<&str> = timed.stages.iter().map(|s| s.stage.as_str()).collect();
        assert_eq!(
            names,
            [
                "decode",
                "resize(w=20,fit=contain)",
                "flip(h)",
                "format(jpeg)",
                "encode"
            ]
        );
        assert_eq!((timed.width, timed.height), (20, 15));
        assert_eq!(timed.bytes, output.bytes.len());
        assert!(
            timed
                .stages
                .iter()
                .all(|s| s.ms >= 0.0 && s.ms <= timed.total_ms)
        );
    }
}
