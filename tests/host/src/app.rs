//! Loading an application: manifest, routes, and each component compiled once.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, anyhow};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use crate::bindings::SpinHost;
use crate::manifest::{AppManifest, ComponentManifest};
use crate::routes::Router;
use crate::state::HostState;

/// How often running guests yield to the async runtime (the epoch tick).
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Options for [`App::load`].
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// Look up each component's `.wasm` here (by the file name of its `source`) instead of at
    /// `source` relative to the manifest directory. Tests point this at
    /// `$CARGO_TARGET_DIR/wasm32-wasip2/release`.
    pub wasm_dir: Option<PathBuf>,
}

/// A loaded, compiled Spin application; cheap to clone.
///
/// Every component is compiled once (with one process-wide `Engine`, and a process-wide cache
/// keyed by file path, size and modification time, so loading the same app again in another
/// test is cheap) and pre-instantiated; each request then gets a fresh instance, as in Spin.
#[derive(Clone)]
pub struct App {
    inner: Arc<AppInner>,
}

struct AppInner {
    manifest: AppManifest,
    router: Router,
    components: BTreeMap<String, LoadedComponent>,
}

/// A compiled component ready to instantiate.
#[derive(Clone)]
pub(crate) struct LoadedComponent {
    pub pre: ProxyPre<HostState>,
    pub manifest: ComponentManifest,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field(
                "components",
                &self.inner.components.keys().collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl App {
    /// Loads the application described by the manifest at `manifest_path`.
    ///
    /// Fails, naming the problem, if the manifest is invalid or uses something the host does not
    /// implement, if a `.wasm` file is missing or is not a component, if a component does not
    /// export `wasi:http/incoming-handler`, or if it imports an interface the host does not
    /// provide.
    pub fn load(manifest_path: &Path, options: LoadOptions) -> Result<Self> {
        let manifest = AppManifest::from_file(manifest_path)?;
        let manifest_dir = manifest_path.parent().unwrap_or(Path::new("."));
        let linker = linker()?;
        let mut components = BTreeMap::new();
        for (id, component) in &manifest.components {
            let path = match &options.wasm_dir {
                Some(dir) => {
                    let file = Path::new(&component.source).file_name().ok_or_else(|| {
                        anyhow!(
                            "component `{id}`: source {:?} has no file name",
                            component.source
                        )
                    })?;
                    dir.join(file)
                }
                None => manifest_dir.join(&component.source),
            };
            let compiled = compile(&path).with_context(|| format!("component `{id}`"))?;
            let instance_pre = linker
                .instantiate_pre(&compiled)
                .map_err(anyhow::Error::from)
                .with_context(|| {
                    format!(
                        "component `{id}` ({}) imports something the test host does not provide",
                        path.display()
                    )
                })?;
            let pre = ProxyPre::new(instance_pre)
                .map_err(anyhow::Error::from)
                .with_context(|| {
                    format!("component `{id}` does not export wasi:http/incoming-handler@0.2")
                })?;
            components.insert(
                id.clone(),
                LoadedComponent {
                    pre,
                    manifest: component.clone(),
                },
            );
        }
        let router = Router::new(
            manifest
                .triggers
                .iter()
                .filter_map(|t| t.route.as_ref().map(|r| (r, t.component.as_str()))),
        );
        Ok(Self {
            inner: Arc::new(AppInner {
                manifest,
                router,
                components,
            }),
        })
    }

    /// The ids of the application's components.
    pub fn component_ids(&self) -> impl Iterator<Item = &str> {
        self.inner.components.keys().map(String::as_str)
    }

    pub(crate) fn manifest(&self) -> &AppManifest {
        &self.inner.manifest
    }

    pub(crate) fn router(&self) -> &Router {
        &self.inner.router
    }

    pub(crate) fn component(&self, id: &str) -> Option<&LoadedComponent> {
        self.inner.components.get(id)
    }
}

/// The process-wide engine: async, component model, epoch interruption driven by a ticker
/// thread so that long-running guests yield regularly (and can be dropped by `kill`).
pub(crate) fn engine() -> Result<&'static Engine> {
    static ENGINE: OnceLock<std::result::Result<Engine, String>> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let mut config = Config::new();
            config.wasm_component_model(true);
            config.epoch_interruption(true);
            // Instances come from a pool, as in Spin (whose defaults these
            // are): what an instance costs to create and tear down is then
            // what it costs there. Without the address space for the pool,
            // each instance gets its memory from the system instead.
            config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling()));
            let engine = Engine::new(&config)
                .or_else(|_| {
                    config.allocation_strategy(InstanceAllocationStrategy::OnDemand);
                    Engine::new(&config)
                })
                .map_err(|e| format!("{e:#}"))?;
            let ticker = engine.weak();
            std::thread::Builder::new()
                .name("kiln-test-host-epoch".into())
                .spawn(move || {
                    while let Some(engine) = ticker.upgrade() {
                        engine.increment_epoch();
                        drop(engine);
                        std::thread::sleep(EPOCH_TICK);
                    }
                })
                .map_err(|e| format!("cannot start the epoch thread: {e}"))?;
            Ok(engine)
        })
        .as_ref()
        .map_err(|e| anyhow!("cannot create the wasmtime engine: {e}"))
}

/// Spin 4's pooling allocator settings (`spin-core`): room for 1,000
/// instances at once, each memory up to 4 GiB, 2 MiB of each memory slot
/// kept resident between instances.
fn pooling() -> PoolingAllocationConfig {
    const MB: usize = 1 << 20;
    const INSTANCES: u32 = 1_000;
    let mut pooling = PoolingAllocationConfig::default();
    pooling
        .total_component_instances(INSTANCES)
        .total_memories(INSTANCES)
        .total_tables(2 * INSTANCES)
        .total_stacks(INSTANCES)
        .total_core_instances(4 * INSTANCES)
        .table_elements(100_000)
        .max_component_instance_size(10 * MB)
        .max_core_instance_size(10 * MB)
        .max_core_instances_per_component(200)
        .max_tables_per_component(64)
        .max_memories_per_component(32)
        .max_tables_per_module(2)
        .max_memories_per_module(2)
        .max_memory_size(4 << 30)
        .linear_memory_keep_resident(2 * MB)
        .table_keep_resident(MB / 2);
    pooling
}

/// Compiles `path`, reusing an earlier compilation of the same unchanged file.
fn compile(path: &Path) -> Result<Component> {
    type Key = (PathBuf, u64, Option<SystemTime>);
    static CACHE: OnceLock<Mutex<HashMap<Key, Component>>> = OnceLock::new();
    let metadata = std::fs::metadata(path)
        .with_context(|| format!("cannot read {} (was it built?)", path.display()))?;
    let key = (path.to_owned(), metadata.len(), metadata.modified().ok());
    let cache = CACHE.get_or_init(Default::default);
    if let Some(component) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Ok(component.clone());
    }
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let component = Component::new(engine()?, &bytes)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("cannot compile {} as a component", path.display()))?;
    cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, component.clone());
    Ok(component)
}

/// The linker every component is instantiated with: WASI p2 (cli, clocks, random, io,
/// filesystem, sockets), wasi:http, and the host's Spin interfaces.
fn linker() -> Result<Linker<HostState>> {
    let mut linker = Linker::new(engine()?);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    SpinHost::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |state| state)?;
    Ok(linker)
}
