//! [`RedisServer`]: a throwaway `redis-server` for tests, owned and ended by the test.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::kv::KeyValueStore;

/// How long a fresh `redis-server` may take to answer, as itself (a safety bound for a loaded
/// machine, not an expectation).
const STARTUP_LIMIT: Duration = Duration::from_secs(30);

/// A `redis-server` on a free port of `127.0.0.1`, with persistence off, killed and reaped
/// when dropped (also when the test panics).
///
/// ```no_run
/// # fn demo() -> anyhow::Result<()> {
/// use kiln_test_host::RedisServer;
/// let redis = RedisServer::start()?; // fails, saying what to install, without redis-server
/// let kv = redis.store();            // a KeyValueStore on it
/// drop(redis);                       // the server is gone: the store now fails
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct RedisServer {
    process: Child,
    port: u16,
}

impl RedisServer {
    /// Starts `redis-server` (from `PATH`) and waits until it answers (its own process, not another on the port).
    pub fn start() -> Result<Self> {
        // The port is free when picked, but another process may take it before Redis binds
        // it: then Redis exits, and another port is tried.
        for _ in 0..5 {
            if let Some(server) = Self::start_on(free_port()?)? {
                return Ok(server);
            }
        }
        bail!("redis-server exited at start on five free ports in a row")
    }

    fn start_on(port: u16) -> Result<Option<Self>> {
        let process = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--daemonize", "no", "--loglevel", "warning"])
            .arg("--dir")
            .arg(std::env::temp_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => anyhow::anyhow!(
                    "redis-server is not installed, and the Redis tests start their own: \
                     install it with `apt-get install redis-server`"
                ),
                _ => anyhow::Error::new(e).context("cannot start redis-server"),
            })?;
        let mut server = RedisServer { process, port };
        let started = Instant::now();
        while !server.answers_as_itself() {
            if server.process.try_wait()?.is_some() {
                return Ok(None);
            }
            if started.elapsed() > STARTUP_LIMIT {
                bail!("redis-server on port {port} did not answer");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(Some(server))
    }

    /// Whether the server on the port answers, and is this process: another test's server
    /// could have taken the port between `free_port` and our bind (ours then exits).
    fn answers_as_itself(&self) -> bool {
        let server_pid = || -> std::io::Result<Option<u32>> {
            let mut stream = BufReader::new(TcpStream::connect(self.addr())?);
            stream
                .get_ref()
                .set_read_timeout(Some(Duration::from_secs(5)))?;
            stream.get_mut().write_all(b"INFO server\r\n")?;
            // A bulk string: `$<length>\r\n`, then the text.
            let mut header = String::new();
            stream.read_line(&mut header)?;
            let length: usize = header
                .trim()
                .strip_prefix('$')
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            let mut info = vec![0; length];
            stream.read_exact(&mut info)?;
            Ok(String::from_utf8_lossy(&info)
                .lines()
                .find_map(|line| line.strip_prefix("process_id:"))
                .and_then(|pid| pid.trim().parse().ok()))
        };
        matches!(server_pid(), Ok(Some(pid)) if pid == self.process.id())
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://{}", self.addr())
    }

    /// A new [`KeyValueStore::redis`] on this server, with a connection of its own (as a
    /// separate Spin process would have). Panics if the server does not answer.
    pub fn store(&self) -> KeyValueStore {
        KeyValueStore::redis(&self.url())
            .with_context(|| format!("connecting to the test redis-server at {}", self.url()))
            .unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// A new [`KeyValueStore::redis_failing_fast`] on this server, for outage tests. Panics
    /// if the server does not answer.
    pub fn store_failing_fast(&self) -> KeyValueStore {
        KeyValueStore::redis_failing_fast(&self.url())
            .with_context(|| format!("connecting to the test redis-server at {}", self.url()))
            .unwrap_or_else(|e| panic!("{e:#}"))
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // SIGKILL, then reap: nothing to flush (persistence is off), nothing left running.
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

fn free_port() -> Result<u16> {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("cannot bind 127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}
