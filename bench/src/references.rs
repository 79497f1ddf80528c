//! The reference components of `bench/spin.toml` (the one-`set`/one-`get`
//! floor and the bare pipeline), served beside Kiln on the test host or on
//! `spin up`.

use std::path::{Path, PathBuf};

use kiln_bench_timing::Timed;
use kiln_e2e::client::Client;
use kiln_e2e::spin::{SpinApp, SpinProcess};
use kiln_test_host::{App, ComponentStats, Host, LoadOptions};

/// `bench/`, where `spin.toml` of the reference components is.
pub fn bench_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// The reference app running somewhere, with a client for it.
pub struct References {
    client: Client,
    target: Target,
}

enum Target {
    Host {
        runtime: tokio::runtime::Runtime,
        host: Option<Host>,
    },
    Spin {
        _process: SpinProcess,
    },
}

impl References {
    /// On the test host, with the `.wasm` files the e2e suite uses.
    pub fn on_host() -> References {
        let options = LoadOptions {
            wasm_dir: Some(kiln_e2e::env::wasm_dir()),
        };
        let app = App::load(&bench_dir().join("spin.toml"), options)
            .unwrap_or_else(|e| panic!("loading bench/spin.toml (run bench/run): {e:#}"));
        let runtime = kiln_e2e::env::host_runtime();
        let host = runtime
            .block_on(Host::builder(app).start())
            .unwrap_or_else(|e| panic!("starting the test host: {e:#}"));
        References {
            client: Client::new(host.base_url()),
            target: Target::Host {
                runtime,
                host: Some(host),
            },
        }
    }

    /// On `spin up`.
    pub fn on_spin(spin: &Path) -> References {
        let process = SpinProcess::start(spin, SpinApp::new(bench_dir().join("spin.toml")));
        References {
            client: Client::new(process.base_url()),
            target: Target::Spin { _process: process },
        }
    }

    /// A client for it.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// One run of Kiln's pipeline in the bare pipeline component: `bytes`
    /// (of `content_type`) through `ops`, and the timings it reports.
    pub fn pipeline(&self, content_type: &str, bytes: &[u8], ops: &str) -> Timed {
        let reply = self.client.send(
            "POST",
            &format!("/pipeline?ops={ops}"),
            &[("content-type", content_type)],
            bytes,
        );
        assert_eq!(
            reply.status,
            200,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
        serde_json::from_slice(&reply.body).expect("the pipeline's timings")
    }

    /// A component's counters, on the test host.
    pub fn stats(&self, component: &str) -> Option<ComponentStats> {
        match &self.target {
            Target::Host { host, .. } => host.as_ref().map(|host| host.stats(component)),
            Target::Spin { .. } => None,
        }
    }
}

impl Drop for References {
    fn drop(&mut self) {
        if let Target::Host { runtime, host } = &mut self.target
            && let Some(host) = host.take()
        {
            runtime.block_on(host.shutdown());
        }
    }
}
