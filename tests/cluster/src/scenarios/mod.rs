//! The four scenarios, one module each, and what they share: the run's
//! settings, the Spin variables every replica gets, and the workloads.

pub mod backlog;
pub mod burst;
pub mod chaos;
pub mod scale;

use std::path::PathBuf;

use crate::cluster::Topology;
use crate::load::Work;

/// How the run was asked for (command line).
pub struct Settings {
    /// `--short`: small counts, for a run of minutes.
    pub short: bool,
    /// `--var name=value`, passed to every replica after the defaults.
    pub variables: Vec<(String, String)>,
    /// `--jobs N`: overrides the job count of burst, chaos and scale.
    pub jobs: Option<usize>,
    /// `--backlog-jobs N`: overrides the backlog's seeded jobs.
    pub backlog_jobs: Option<usize>,
    /// `--manifest FILE`: the app (default: the workspace's `spin.toml`).
    pub manifest: PathBuf,
    /// `--corpus DIR`: the photos (`photo-4mp.jpg`, `photo-16mp.jpg`).
    pub corpus: PathBuf,
    /// `--seed N`: the workload mix and the chaos schedule.
    pub seed: u64,
}

impl Settings {
    /// `full` jobs, `short` with `--short`, unless `--jobs` says.
    pub fn jobs(&self, full: usize, short: usize) -> usize {
        self.jobs.unwrap_or(if self.short { short } else { full })
    }

    /// The value a replica gets for Spin variable `name` (the last
    /// `--var` wins over the scenario's defaults), if set.
    pub fn variable(&self, name: &str, defaults: &[(&str, &str)]) -> Option<String> {
        self.variables
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .or_else(|| {
                defaults
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| (*v).to_owned())
            })
    }

    /// A topology with the run's variables: webhooks on (signed with the
    /// end-to-end suite's secret, to any port of 127.0.0.1), then the
    /// scenario's `defaults`, then `--var`s (setting a variable the
    /// manifest does not declare is harmless).
    pub fn topology(
        &self,
        label: &str,
        replicas: usize,
        redis: bool,
        haproxy: bool,
        defaults: &[(&str, &str)],
    ) -> Topology {
        let mut variables = vec![
            (
                "webhook_secret".to_owned(),
                kiln_e2e::webhooks::SECRET.to_owned(),
            ),
            (
                "webhook_allowed_hosts".to_owned(),
                "http://127.0.0.1:*".to_owned(),
            ),
        ];
        variables.extend(
            defaults
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned())),
        );
        variables.extend(self.variables.iter().cloned());
        Topology {
            label: label.to_owned(),
            replicas,
            redis,
            haproxy,
            manifest: self.manifest.clone(),
            variables,
        }
    }

    fn photo(&self, name: &str) -> Vec<u8> {
        let path = self.corpus.join(name);
        std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "reading {}: {e} (make the corpus: ../shared/corpus/make.sh {})",
                path.display(),
                self.corpus.display()
            )
        })
    }

    /// Light work: the 4 MP photo to a 200 px PNG (JPEG shrink-on-load
    /// makes it cheap: tens of milliseconds).
    pub fn light(&self) -> Work {
        Work {
            name: "light (4 MP JPEG -> 200 px PNG)",
            image: self.photo("photo-4mp.jpg"),
            ops: "resize(w=200),format(png)",
        }
    }

    /// Heavy work: the 16 MP photo to 1600 px, sharpened (half a second).
    pub fn heavy(&self) -> Work {
        Work {
            name: "heavy (16 MP JPEG -> 1600 px sharpened)",
            image: self.photo("photo-16mp.jpg"),
            ops: "resize(w=1600),sharpen(sigma=1)",
        }
    }
}

/// A small JPEG blown up to 6000×4500 (27 MP) and blurred: a tiny upload
/// whose job needs hundreds of MB and about 13 s of CPU. The burst and the
/// backlog (when jobs queue) use it.
pub fn huge_output() -> Work {
    Work {
        name: "27 MP output (64x48 JPEG -> resize(w=6000),blur(sigma=40))",
        image: kiln_e2e::images::jpeg(64, 48),
        ops: "resize(w=6000),blur(sigma=40)",
    }
}

/// A tiny job: a 64×48 JPEG made smaller. It measures what serving a burst
/// costs (instances, connections) apart from the work.
pub fn tiny() -> Work {
    Work {
        name: "tiny (64x48 JPEG -> 32 px)",
        image: kiln_e2e::images::jpeg(64, 48),
        ops: "resize(w=32)",
    }
}
