//! What a scenario runs on, started with one call and ended when dropped:
//! one `redis-server` (AOF on, so a killed server comes back with every
//! acknowledged write), N `spin up` replicas sharing it, and HAProxy in
//! front of them. Every process leads a process group of its own (see
//! `kiln_e2e::process::ProcessGroup`), so dropping a [`Cluster`] — also
//! while a panic unwinds — ends the servers `spin up` forked as well.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kiln_e2e::process::ProcessGroup;
use kiln_e2e::spin::{SpinApp, SpinProcess};

/// What to start.
#[derive(Clone, Debug)]
pub struct Topology {
    /// Names its log files (`<label>-replica0.log`, ...).
    pub label: String,
    /// How many `spin up` replicas.
    pub replicas: usize,
    /// A shared `redis-server` as the store; without it each replica keeps
    /// Spin's default SQLite store (only sensible with one replica).
    pub redis: bool,
    /// HAProxy in front of the replicas; without it clients talk to the
    /// first replica directly.
    pub haproxy: bool,
    /// The manifest every replica runs.
    pub manifest: PathBuf,
    /// Spin variables, passed as `SPIN_VARIABLE_<NAME>` to every replica.
    pub variables: Vec<(String, String)>,
}

/// A running cluster. Fields drop in order: the proxy first, then the
/// replicas, then the store they use, then the scratch directory.
pub struct Cluster {
    haproxy: Option<Haproxy>,
    /// Each replica behind a lock, so that the chaos thread can kill and
    /// restart one while the memory sampler reads the others.
    pub replicas: Vec<Mutex<Replica>>,
    /// Behind a lock for the chaos thread's restart.
    pub redis: Option<Mutex<Redis>>,
    _scratch: ScratchDir,
}

impl Cluster {
    /// Starts redis (if asked), the replicas, then HAProxy (if asked), and
    /// waits until each serves.
    pub fn start(topology: &Topology) -> Cluster {
        let scratch = ScratchDir::new();
        let logs = logs_dir();
        let log = |name: &str| logs.join(format!("{}-{name}.log", topology.label));
        let redis = topology
            .redis
            .then(|| Redis::start(&scratch.0, log("redis")));
        let spin = kiln_e2e::spin::binary()
            .expect("no spin binary (SPIN_BIN or PATH): run through scripts/cluster");
        let mut app = SpinApp::new(topology.manifest.clone());
        app.variables = topology.variables.clone();
        if let Some(redis) = &redis {
            app.runtime_config = Some(kiln_e2e::env::redis_runtime_config(&redis.url()));
        }
        let replicas: Vec<Replica> = (0..topology.replicas)
            .map(|index| {
                let mut app = app.clone();
                app.stderr_log = Some(log(&format!("replica{index}")));
                Replica {
                    process: SpinProcess::start(&spin, app),
                    peak: 0,
                    restarts: 0,
                }
            })
            .collect();
        let haproxy = topology.haproxy.then(|| {
            let ports: Vec<u16> = replicas.iter().map(Replica::port).collect();
            Haproxy::start(&scratch.0, &ports, &log("haproxy"))
        });
        Cluster {
            haproxy,
            replicas: replicas.into_iter().map(Mutex::new).collect(),
            redis: redis.map(Mutex::new),
            _scratch: scratch,
        }
    }

    /// Where clients send requests: HAProxy, or the first replica.
    pub fn base_url(&self) -> String {
        match &self.haproxy {
            Some(proxy) => format!("http://127.0.0.1:{}", proxy.port),
            None => self.replica(0).process.base_url(),
        }
    }

    /// Replica `index`, locked (a poisoned lock is still usable: the
    /// replica itself is fine).
    pub fn replica(&self, index: usize) -> std::sync::MutexGuard<'_, Replica> {
        self.replicas[index]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The Redis URL, when the cluster has one.
    pub fn redis_url(&self) -> Option<String> {
        let redis = self.redis.as_ref()?;
        let redis = redis.lock().unwrap_or_else(|p| p.into_inner());
        Some(redis.url())
    }

    /// Waits until HAProxy serves through every replica again (after the
    /// chaos): each must answer its health check directly.
    pub fn wait_all_serving(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        (0..self.replicas.len()).all(|index| {
            let port = self.replica(index).port();
            while !answers_http(port, "/openapi.json") {
                if Instant::now() > deadline {
                    return false;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            true
        })
    }
}

/// One `spin up`, with the highest `VmHWM` seen of its server over all
/// its lives (a restart starts a new process with a fresh high-water mark).
pub struct Replica {
    /// The `spin up` process group.
    pub process: SpinProcess,
    /// The most memory its `spin trigger http` held, in bytes, over every
    /// restart, as far as the samples saw.
    pub peak: u64,
    /// How many times the chaos killed and restarted it.
    pub restarts: u32,
}

impl Replica {
    /// Its loopback port (the same across restarts).
    pub fn port(&self) -> u16 {
        port_of(&self.process.base_url())
    }

    /// Reads its server's `VmHWM` into [`peak`](Self::peak); the resident
    /// memory now, if it runs.
    pub fn sample(&mut self) -> Option<u64> {
        let memory = self.process.server_memory()?;
        self.peak = self.peak.max(memory.peak);
        Some(memory.resident)
    }
}

fn port_of(base_url: &str) -> u16 {
    base_url
        .rsplit(':')
        .next()
        .and_then(|port| port.parse().ok())
        .expect("a base URL ending in a port")
}

/// A `redis-server` with an append-only file fsynced at every write, in
/// the cluster's scratch directory: killed with SIGKILL and restarted on
/// the same port and directory, it replays the file and has lost nothing
/// it acknowledged.
///
/// (`kiln_test_host::RedisServer` runs without persistence and cannot be
/// restarted on its port, which is what the chaos needs.)
pub struct Redis {
    port: u16,
    dir: PathBuf,
    log: PathBuf,
    group: Option<ProcessGroup>,
    /// How many times it was killed and restarted.
    pub restarts: u32,
}

impl Redis {
    /// How long replaying the append-only file may take.
    const READY_LIMIT: Duration = Duration::from_secs(120);

    fn start(scratch: &Path, log: PathBuf) -> Redis {
        let dir = scratch.join("redis");
        std::fs::create_dir_all(&dir).expect("the redis directory");
        // The port is free when picked, but could be taken before Redis
        // binds it: then Redis exits, and another port is tried.
        for _ in 0..5 {
            let mut redis = Redis {
                port: free_port(),
                dir: dir.clone(),
                log: log.clone(),
                group: None,
                restarts: 0,
            };
            if redis.spawn() {
                return redis;
            }
        }
        panic!("redis-server exited at start on five free ports in a row");
    }

    /// Starts `redis-server` on this port and directory and waits until it
    /// answers `PING` (after loading its file); false if it exited.
    fn spawn(&mut self) -> bool {
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ])
            .args(["--daemonize", "no", "--loglevel", "warning"])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(&self.log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut group = ProcessGroup::spawn(command);
        let deadline = Instant::now() + Self::READY_LIMIT;
        while !redis_pongs(self.port) {
            if group.wait(Duration::ZERO).is_some() {
                return false;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server on {} did not answer within {:?}",
                self.port,
                Self::READY_LIMIT
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        self.group = Some(group);
        true
    }

    /// Kills it with SIGKILL (a crash) and starts it again on the same
    /// port and directory; returns how long it was not answering.
    pub fn kill_and_restart(&mut self) -> Duration {
        let down = Instant::now();
        if let Some(group) = self.group.take() {
            group.kill();
        }
        assert!(
            self.spawn(),
            "redis-server did not come back on port {}",
            self.port
        );
        self.restarts += 1;
        down.elapsed()
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

/// Whether a Redis on `port` answers `PING` with `+PONG` (not `-LOADING`).
fn redis_pongs(port: u16) -> bool {
    let answer = || -> std::io::Result<bool> {
        let mut stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        stream.write_all(b"PING\r\n")?;
        let mut reply = [0u8; 7];
        stream.read_exact(&mut reply)?;
        Ok(&reply == b"+PONG\r\n")
    };
    answer().unwrap_or(false)
}

/// HAProxy in the foreground (`-db`), round robin over the replicas.
struct Haproxy {
    port: u16,
    _group: ProcessGroup,
}

impl Haproxy {
    fn start(scratch: &Path, backends: &[u16], log_file: &Path) -> Haproxy {
        let port = free_port();
        let config = scratch.join("haproxy.cfg");
        std::fs::write(&config, haproxy_config(port, backends)).expect("writing haproxy.cfg");
        let log = std::fs::File::create(log_file).expect("haproxy's log");
        let mut command = Command::new("haproxy");
        command
            .arg("-db")
            .arg("-f")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("the log again"))
            .stderr(log);
        let mut group = ProcessGroup::spawn(command);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !answers_http(port, "/openapi.json") {
            if let Some(status) = group.wait(Duration::ZERO) {
                let log = std::fs::read_to_string(log_file).unwrap_or_default();
                panic!("haproxy exited at start ({status}):\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "haproxy did not serve on {port} within 20 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Haproxy {
            port,
            _group: group,
        }
    }
}

/// The HAProxy configuration. Why each setting:
///
/// - The health check is a real request to a static route, over HTTP/1.1
///   with a `Host` header (Spin refuses a request without one), every
///   250 ms; two failures (or one refused connection, `observe layer4`)
///   take a replica out, so a killed one is out within about a second, and
///   a stopped one (SIGSTOP: it accepts but never answers) once its checks
///   time out.
/// - Only a connection that failed (refused, reset before the request
///   went out) is retried, on another replica (`redispatch`): a POST that
///   may have reached a replica is never sent twice by the proxy. The
///   client retries it itself, with the same `Idempotency-Key`.
/// - 60 s for a server's answer: a synchronous job or a long poll
///   (`Prefer: wait=10`) is a long request.
fn haproxy_config(port: u16, backends: &[u16]) -> String {
    let servers: String = backends
        .iter()
        .enumerate()
        .map(|(index, backend)| format!("    server replica{index} 127.0.0.1:{backend} check\n"))
        .collect();
    format!(
        "global\n\
         \x20   maxconn 4000\n\
         defaults\n\
         \x20   mode http\n\
         \x20   timeout connect 1s\n\
         \x20   timeout client 120s\n\
         \x20   timeout server 60s\n\
         \x20   timeout queue 30s\n\
         \x20   timeout check 1s\n\
         \x20   timeout http-keep-alive 10s\n\
         \x20   retries 3\n\
         \x20   retry-on conn-failure\n\
         \x20   option redispatch 1\n\
         frontend kiln\n\
         \x20   bind 127.0.0.1:{port}\n\
         \x20   default_backend replicas\n\
         backend replicas\n\
         \x20   balance roundrobin\n\
         \x20   option httpchk\n\
         \x20   http-check send meth GET uri /openapi.json ver HTTP/1.1 hdr Host localhost\n\
         \x20   http-check expect status 200\n\
         \x20   default-server inter 250ms fastinter 250ms downinter 500ms fall 2 rise 2 observe layer4 error-limit 1 on-error mark-down\n\
         {servers}"
    )
}

/// Whether `GET path` on `port` answers 200 (within two seconds).
fn answers_http(port: u16, path: &str) -> bool {
    let answer = || -> std::io::Result<bool> {
        let mut stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )?;
        let mut status = [0u8; 12];
        stream.read_exact(&mut status)?;
        Ok(status.ends_with(b" 200"))
    };
    answer().unwrap_or(false)
}

/// Where the processes' logs go, kept after the run:
/// `$CARGO_TARGET_DIR/kiln-cluster/<pid>/` (or `target/…` in the
/// workspace).
pub fn logs_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|dir| {
            if dir.is_relative() {
                kiln_e2e::env::workspace_root().join(dir)
            } else {
                dir
            }
        })
        .unwrap_or_else(|| kiln_e2e::env::workspace_root().join("target"));
    let dir = target
        .join("kiln-cluster")
        .join(std::process::id().to_string());
    std::fs::create_dir_all(&dir).expect("the log directory");
    dir.canonicalize().unwrap_or(dir)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free loopback port")
}

/// The cluster's own temporary directory (Redis's files, HAProxy's
/// configuration and log), removed when dropped. Spin's state directories
/// are `SpinProcess`'s own.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new() -> ScratchDir {
        let dir = std::env::temp_dir().join(format!(
            "kiln-cluster-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4()
        ));
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        ScratchDir(dir)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}
