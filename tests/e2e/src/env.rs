//! [`Env`]: the app under test, started fresh for each test.

use crate::client::{Client, Reply};
use crate::spin::{SpinApp, SpinProcess};
use crate::store::StoreView;
use kiln_test_host::{App, FaultHandle, Host, KeyValueStore, LoadOptions, Quotas};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Operations slow enough (on a 1000×1000 image) for a job to be caught
/// while it runs.
pub const SLOW_OPS: &str = "?ops=blur(sigma=30),blur(sigma=30),blur(sigma=30),format(png)";

/// The workspace root, where `spin.toml` is.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Where `scripts/test` built the components: `$KILN_WASM_DIR`, else
/// `$CARGO_TARGET_DIR/wasm32-wasip2/release`, else `target/…` in the
/// workspace.
pub fn wasm_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("KILN_WASM_DIR") {
        return dir.into();
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|dir| {
            if dir.is_relative() {
                workspace_root().join(dir)
            } else {
                dir
            }
        })
        .unwrap_or_else(|| workspace_root().join("target"));
    target.join("wasm32-wasip2").join("release")
}

/// The app of `spin.toml`, compiled once per test binary.
pub fn app() -> &'static App {
    static APP: OnceLock<App> = OnceLock::new();
    APP.get_or_init(|| load(Manifest::Default))
}

/// The app of `spin.cloud.toml` (the Fermyon Cloud profile), compiled once
/// per test binary.
pub fn cloud_app() -> &'static App {
    static APP: OnceLock<App> = OnceLock::new();
    APP.get_or_init(|| load(Manifest::Cloud))
}

/// Which of the two manifests an [`Env`] runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Manifest {
    /// `spin.toml`: the private processor, through service chaining.
    #[default]
    Default,
    /// `spin.cloud.toml`: jobs run in-process, within Fermyon Cloud's quotas.
    Cloud,
}

impl Manifest {
    fn file_name(self) -> &'static str {
        match self {
            Manifest::Default => "spin.toml",
            Manifest::Cloud => "spin.cloud.toml",
        }
    }

    fn app(self) -> &'static App {
        match self {
            Manifest::Default => app(),
            Manifest::Cloud => cloud_app(),
        }
    }
}

fn load(manifest: Manifest) -> App {
    let name = manifest.file_name();
    App::load(
        &workspace_root().join(name),
        LoadOptions {
            wasm_dir: Some(wasm_dir()),
        },
    )
    .unwrap_or_else(|e| {
        panic!(
            "cannot load {name} with the components in {}: {e:#}\n\
             build them first: run `scripts/test`",
            wasm_dir().display()
        )
    })
}

/// Variable overrides, platform quotas and the store for an [`Env`].
#[derive(Clone, Default)]
pub struct EnvBuilder {
    variables: Vec<(String, String)>,
    quotas: Option<Quotas>,
    store: Option<KeyValueStore>,
    manifest: Manifest,
}

impl EnvBuilder {
    /// Overrides an application variable of the manifest.
    pub fn variable(mut self, name: &str, value: &str) -> Self {
        self.variables.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Turns API keys on: `keys` as (name, key) pairs, given to the app
    /// as an operator gives them, by their SHA-256 (`api_keys`).
    pub fn api_keys(self, keys: &[(&str, &str)]) -> Self {
        let hashed: Vec<String> = keys
            .iter()
            .map(|(name, key)| {
                let hash: String = Sha256::digest(key.as_bytes())
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                format!("{name}:{hash}")
            })
            .collect();
        self.variable("api_keys", &hashed.join(","))
    }

    /// Runs the app on the test host under a platform's `quotas` (see
    /// [`Quotas`]); `spin up` has none, so only [`start`](Self::start) uses
    /// them.
    pub fn quotas(mut self, quotas: Quotas) -> Self {
        self.quotas = Some(quotas);
        self
    }

    /// Runs the Fermyon Cloud profile (`spin.cloud.toml`): on the test host
    /// under Fermyon Cloud's published quotas, which
    /// [`quotas`](Self::quotas) may scale down afterwards; on `spin up`
    /// without them (Spin has none).
    pub fn cloud(mut self) -> Self {
        self.manifest = Manifest::Cloud;
        self.quotas = Some(Quotas::fermyon_cloud());
        self
    }

    /// Serves the app from `kv` (for example a [`KeyValueStore::redis`], or the store of
    /// another [`Env`] to run two hosts on one store) instead of a fresh in-memory store.
    /// On `spin up`, `kv` must be a Redis store: Spin then uses that Redis through a
    /// runtime configuration made from `runtime-config.redis.toml`.
    pub fn store(mut self, kv: KeyValueStore) -> Self {
        self.store = Some(kv);
        self
    }

    /// Starts the app on the test host, with a fresh in-memory store unless one was given.
    pub fn start(self) -> Env {
        let runtime = host_runtime();
        let kv = self.store.clone().unwrap_or_default();
        let host = start_host(&runtime, &self, &kv);
        let client = Client::new(host.base_url());
        Env {
            client,
            target: Target::Host {
                runtime,
                host: Some(host),
                kv,
                settings: Box::new(self),
            },
        }
    }

    /// The app on `spin up` (`spin` is the binary), with this builder's
    /// manifest, variables and store (Spin's default SQLite store in a state
    /// directory of its own, or the Redis given to [`store`](Self::store)).
    pub fn start_spin(self, spin: &Path) -> Env {
        let mut app = SpinApp::new(workspace_root().join(self.manifest.file_name()));
        app.variables = self.variables;
        if let Some(kv) = &self.store {
            let url = kv
                .redis_url()
                .expect("`spin up` takes a Redis store, not the test host's in-memory one");
            app.runtime_config = Some(redis_runtime_config(url));
        }
        let process = SpinProcess::start(spin, app);
        Env {
            client: Client::new(process.base_url()),
            target: Target::Spin {
                process,
                kv: self.store,
            },
        }
    }
}

/// `runtime-config.redis.toml`, the file the README deploys replicas with,
/// pointed at the Redis at `url` instead of the default port.
pub fn redis_runtime_config(url: &str) -> String {
    let file = workspace_root().join("runtime-config.redis.toml");
    let text = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
    let default_url = "\"redis://127.0.0.1:6379\"";
    assert!(
        text.contains(default_url),
        "{} no longer names {default_url}",
        file.display()
    );
    text.replace(default_url, &format!("\"{url}\""))
}

/// The runtime a test host runs on: multi-threaded, as Spin's, with two
/// workers, one per core of the development machine.
pub fn host_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn start_host(
    runtime: &tokio::runtime::Runtime,
    settings: &EnvBuilder,
    kv: &KeyValueStore,
) -> Host {
    let mut builder = Host::builder(settings.manifest.app().clone()).store(kv.clone());
    for (name, value) in &settings.variables {
        builder = builder.variable(name, value);
    }
    if let Some(quotas) = &settings.quotas {
        builder = builder.quotas(quotas.clone());
    }
    runtime
        .block_on(builder.start())
        .unwrap_or_else(|e| panic!("starting the test host: {e:#}"))
}

/// Runs `test` against the test host and, when a `spin` binary is available
/// (`SPIN_BIN` or `spin` on `PATH`), against `spin up` as well; where
/// `KILN_SPIN_REQUIRED` is set, a missing Spin fails instead (see
/// [`crate::spin::binary_for_tests`]).
pub fn for_each_target(builder: impl Fn() -> EnvBuilder, test: impl Fn(&Env)) {
    for env in targets(builder) {
        test(&env);
    }
}

/// The targets of [`for_each_target`], each started when it is reached (so
/// one runs at a time), for a test that needs to own its app (to kill and
/// restart it).
pub fn targets(builder: impl Fn() -> EnvBuilder) -> impl Iterator<Item = Env> {
    let mut reached = 0;
    std::iter::from_fn(move || {
        reached += 1;
        let env = match reached {
            1 => Some(builder().start()),
            2 => crate::spin::binary_for_tests().map(|spin| builder().start_spin(&spin)),
            _ => None,
        }?;
        // Captured, so shown only with a failure: which target it was on.
        println!("target: {} at {}", env.name(), env.base_url());
        Some(env)
    })
}

enum Target {
    Host {
        runtime: tokio::runtime::Runtime,
        host: Option<Host>,
        kv: KeyValueStore,
        /// What every (re)start of the host uses.
        settings: Box<EnvBuilder>,
    },
    /// `spin up`, stopped when dropped; `kv` is its Redis store, if any.
    Spin {
        process: SpinProcess,
        kv: Option<KeyValueStore>,
    },
}

/// The app under test, with a client for it.
pub struct Env {
    client: Client,
    target: Target,
}

impl Env {
    /// The app on the test host, with `spin.toml`'s defaults.
    pub fn start() -> Env {
        EnvBuilder::default().start()
    }

    /// Variable overrides, then [`EnvBuilder::start`].
    pub fn builder() -> EnvBuilder {
        EnvBuilder::default()
    }

    /// Which runtime serves the app, for assertion messages.
    pub fn name(&self) -> &'static str {
        match self.target {
            Target::Host { .. } => "test host",
            Target::Spin { kv: None, .. } => "spin up",
            Target::Spin { kv: Some(_), .. } => "spin up on Redis",
        }
    }

    /// `http://127.0.0.1:PORT` of the app.
    pub fn base_url(&self) -> &str {
        self.client.base_url()
    }

    /// Sends any request.
    pub fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        self.client.send(method, path, headers, body)
    }

    /// `GET path` as a Server-Sent Events stream, read as it arrives.
    pub fn events(&self, path: &str, headers: &[(&str, &str)]) -> crate::events::EventStream {
        self.client.events(path, headers)
    }

    /// `GET path`.
    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.send("GET", path, headers, &[])
    }

    /// `POST /images{query}` with `Content-Type: content_type`.
    pub fn submit(
        &self,
        query: &str,
        content_type: &str,
        body: &[u8],
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut all = vec![("content-type", content_type)];
        all.extend_from_slice(headers);
        self.send("POST", &format!("/images{query}"), &all, body)
    }

    /// `POST /images{query}` of a PNG with `Prefer: respond-async`; asserts
    /// the `202`.
    pub fn submit_async(&self, query: &str, png: &[u8]) -> Reply {
        self.submit_async_as(query, "image/png", png)
    }

    /// `POST /images{query}` with `Content-Type: content_type` and `Prefer:
    /// respond-async`; asserts the `202`.
    pub fn submit_async_as(&self, query: &str, content_type: &str, body: &[u8]) -> Reply {
        let reply = self.submit(query, content_type, body, &[("prefer", "respond-async")]);
        assert_eq!(
            reply.status,
            202,
            "{}: {}",
            self.name(),
            String::from_utf8_lossy(&reply.body)
        );
        reply
    }

    /// Long-polls the operation at `path` until it is finished; panics
    /// after `timeout`.
    pub fn wait_until_finished(&self, path: &str, timeout: Duration) -> Reply {
        let deadline = Instant::now() + timeout;
        loop {
            let reply = self.get(path, &[("prefer", "wait=5")]);
            assert_eq!(
                reply.status,
                200,
                "GET {path}: {}",
                String::from_utf8_lossy(&reply.body)
            );
            let status = reply.json()["status"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if ["succeeded", "failed", "canceled"].contains(&status.as_str()) {
                return reply;
            }
            assert!(
                Instant::now() < deadline,
                "{path} still {status} after {timeout:?}"
            );
        }
    }

    /// Asserts that a good request still works (after a bad one).
    pub fn assert_still_serving(&self) {
        let reply = self.submit("", "image/png", &crate::images::png(8, 8), &[]);
        assert_eq!(
            reply.status,
            201,
            "{}: the app stopped serving",
            self.name()
        );
    }

    /// Polls until the operation at `path` is running; panics if it is not
    /// seen running within ten seconds (use [`SLOW_OPS`] on a large image).
    pub fn wait_until_running(&self, path: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let reply = self.get(path, &[]);
            match reply.json()["status"].as_str().unwrap_or_default() {
                "running" => return,
                "notStarted" if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                other => panic!("{path} was not caught running: {other}"),
            }
        }
    }

    /// The test host. Panics when the target is `spin up`: fault injection
    /// and the counters of instances exist only on the test host.
    pub fn host(&self) -> &Host {
        match &self.target {
            Target::Host {
                host: Some(host), ..
            } => host,
            _ => panic!("this test needs the test host"),
        }
    }

    /// The test host, if that is the target: for what only it can tell
    /// (invocations, timeouts) in a test that runs on `spin up` too.
    pub fn test_host(&self) -> Option<&Host> {
        match &self.target {
            Target::Host { host, .. } => host.as_ref(),
            Target::Spin { .. } => None,
        }
    }

    /// The test host's fault switches.
    pub fn faults(&self) -> FaultHandle {
        self.host().faults().clone()
    }

    /// The store shared by every component (and kept across restarts): the
    /// test host's, or the Redis of a `spin up` on Redis. Panics for a
    /// `spin up` on its own SQLite store: read that through
    /// [`store`](Self::store).
    pub fn kv(&self) -> &KeyValueStore {
        match &self.target {
            Target::Host { kv, .. } | Target::Spin { kv: Some(kv), .. } => kv,
            Target::Spin { kv: None, .. } => {
                panic!("this test needs the test host or Spin on Redis (see Env::store)")
            }
        }
    }

    /// What the app has stored, read from outside, on any target: the test
    /// host's store, Spin's Redis, or the SQLite file of Spin's default
    /// store in its state directory.
    pub fn store(&self) -> StoreView<'_> {
        match &self.target {
            Target::Host { kv, .. } | Target::Spin { kv: Some(kv), .. } => StoreView::Kv(kv),
            Target::Spin { process, kv: None } => StoreView::spin_sqlite(process.state_dir()),
        }
    }

    /// Job `id`'s record as the components stored it: `attempts` counts its
    /// claims, `status` and `last_updated_at` its state.
    pub fn job_record(&self, id: &str) -> serde_json::Value {
        let raw = self
            .store()
            .get(&format!("kiln:job:{id}"))
            .unwrap_or_else(|| panic!("{}: no record for job {id}", self.name()));
        serde_json::from_slice(&raw).expect("a job record in JSON")
    }

    /// How many times job `id` was claimed (its record's `attempts`).
    pub fn claims(&self, id: &str) -> u64 {
        self.job_record(id)["attempts"]
            .as_u64()
            .expect("a number of claims")
    }

    /// The keys in the store that belong to job `id` (its record, chunks and
    /// index entries).
    pub fn keys_of(&self, id: &str) -> Vec<String> {
        self.store()
            .keys()
            .into_iter()
            .filter(|k| k.contains(id))
            .collect()
    }

    /// `spin up`, when that is the target (for its server's pid, say).
    pub fn spin_process(&self) -> Option<&SpinProcess> {
        match &self.target {
            Target::Spin { process, .. } => Some(process),
            Target::Host { .. } => None,
        }
    }

    /// Waits until no component instance is running any more (work after a
    /// response included). The test host knows; `spin up` does not say, so
    /// there it waits until Spin's server uses no CPU and does no I/O (see
    /// [`SpinProcess::wait_idle`]).
    pub fn settle(&self) {
        match &self.target {
            Target::Host {
                runtime,
                host: Some(host),
                ..
            } => runtime.block_on(host.wait_idle()),
            Target::Host { host: None, .. } => {}
            Target::Spin { process, .. } => process.wait_idle(),
        }
    }

    /// Kills the host abruptly, in-flight guest work included (a crash):
    /// the test host's tasks, or `spin up`'s whole process group with
    /// SIGKILL. The store keeps what was written. Requests to this `Env`
    /// fail until [`restart`](Self::restart).
    pub fn kill(&mut self) {
        match &mut self.target {
            Target::Host { runtime, host, .. } => {
                if let Some(old) = host.take() {
                    runtime.block_on(old.kill());
                }
            }
            Target::Spin { process, .. } => process.kill(),
        }
    }

    /// Kills the host abruptly, in-flight guest work included (a crash),
    /// and starts a new one on the same store (for `spin up`, on the same
    /// port and state directory).
    pub fn restart(&mut self) {
        self.kill();
        match &mut self.target {
            Target::Host {
                runtime,
                host,
                kv,
                settings,
            } => {
                let new = start_host(runtime, settings, kv);
                self.client = Client::new(new.base_url());
                *host = Some(new);
            }
            Target::Spin { process, .. } => {
                process.restart();
                // Same port, but the pooled connections died with the old server.
                self.client = Client::new(process.base_url());
            }
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Target::Host { runtime, host, .. } = &mut self.target
            && let Some(host) = host.take()
        {
            runtime.block_on(host.kill());
        }
    }
}
