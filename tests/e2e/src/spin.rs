//! The other half of the suite: the same contract tests against a real
//! `spin up`, when a Spin binary is available here ([`binary_for_tests`]).
//!
//! A [`SpinProcess`] runs a [`SpinApp`] (manifest, variables, runtime
//! configuration) in a process group and a state directory of its own; it
//! can be killed mid-work and restarted on the same store, and tells the
//! pid and memory of the server `spin up` forked.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Once;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use crate::process::ProcessGroup;

/// `SPIN_BIN`, else `spin` on `PATH`.
pub fn binary() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os("SPIN_BIN") {
        return Some(bin.into());
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("spin"))
            .find(|candidate| candidate.is_file())
    })
}

/// Set (by `.ci/run`) where the `spin up` half of the suite must run: a
/// missing Spin then fails the test instead of skipping it.
pub const REQUIRED: &str = "KILN_SPIN_REQUIRED";

/// The Spin binary for a test's `spin up` half: `None` where there is none
/// (said once per test binary), unless [`REQUIRED`] is set, where a missing
/// Spin fails the test.
pub fn binary_for_tests() -> Option<PathBuf> {
    let spin = binary();
    if spin.is_none() {
        assert!(
            std::env::var_os(REQUIRED).is_none(),
            "the `spin up` half of the suite must run here ({REQUIRED} is set), \
             but there is no spin binary (SPIN_BIN or PATH; scripts/test puts \
             ../shared/spin/bin on PATH when it exists)"
        );
        note_skipped();
    }
    spin
}

/// Says once per test binary that the `spin up` half did not run.
fn note_skipped() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        eprintln!(
            "note: no spin binary (SPIN_BIN or PATH): skipped the `spin up` half of the suite"
        );
    });
}

/// What `spin up` runs: a manifest, variable overrides and, optionally, a
/// runtime configuration file (for example a key-value store on Redis).
#[derive(Clone, Debug)]
pub struct SpinApp {
    /// The manifest (`spin.toml`, `spin.cloud.toml`, `bench/spin.toml`).
    pub manifest: PathBuf,
    /// Application variables, passed as `SPIN_VARIABLE_<NAME>`.
    pub variables: Vec<(String, String)>,
    /// The text of a runtime configuration file (`--runtime-config-file`).
    pub runtime_config: Option<String>,
    /// A file Spin's standard error is appended to (its notes and the
    /// components' logs), instead of this process's standard error.
    pub stderr_log: Option<PathBuf>,
}

impl SpinApp {
    /// The app of `manifest`, with its defaults and Spin's default store.
    pub fn new(manifest: PathBuf) -> SpinApp {
        SpinApp {
            manifest,
            variables: Vec::new(),
            runtime_config: None,
            stderr_log: None,
        }
    }
}

/// A `spin up` child process with its own state directory.
///
/// `spin up` forks a `spin trigger http` child that does the serving, so
/// ending `spin up` alone would leave that child running and holding its
/// port. Spin is therefore started in a process group of its own, and the
/// whole group is ended on drop (also when a test panics, as the value is
/// dropped while unwinding).
pub struct SpinProcess {
    /// `None` between [`kill`](Self::kill) and [`restart`](Self::restart).
    group: Option<ProcessGroup>,
    port: u16,
    state_dir: TempDir,
    /// How to start it again: the binary and the `spin up` arguments.
    spin: PathBuf,
    app: SpinApp,
}

impl SpinProcess {
    /// Starts `spin up` for `app` on a free loopback port.
    pub fn start(spin: &Path, app: SpinApp) -> SpinProcess {
        let state_dir = TempDir::new();
        if let Some(config) = &app.runtime_config {
            std::fs::write(state_dir.runtime_config(), config)
                .expect("writing the runtime configuration");
        }
        let mut process = SpinProcess {
            group: None,
            port: free_port(),
            state_dir,
            spin: spin.to_owned(),
            app,
        };
        process.restart();
        process
    }

    /// The `spin up` command line for this process's app, port and state.
    fn command(&self) -> Command {
        let mut command = Command::new(&self.spin);
        command
            .args(["up", "--from"])
            .arg(&self.app.manifest)
            .args([
                "--listen",
                &format!("127.0.0.1:{}", self.port),
                "--state-dir",
            ])
            .arg(&self.state_dir.0)
            .stderr(Stdio::inherit());
        if let Some(log) = &self.app.stderr_log {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .unwrap_or_else(|e| panic!("opening {}: {e}", log.display()));
            command.stderr(file);
        }
        if self.app.runtime_config.is_some() {
            command
                .arg("--runtime-config-file")
                .arg(self.state_dir.runtime_config());
        }
        for (name, value) in &self.app.variables {
            command.env(format!("SPIN_VARIABLE_{}", name.to_uppercase()), value);
        }
        command
    }

    /// Kills `spin up` and the server it forked at once with SIGKILL, in
    /// the middle of whatever they run (a crash). What its store holds
    /// stays: [`restart`](Self::restart) serves it again.
    pub fn kill(&mut self) {
        if let Some(group) = self.group.take() {
            group.kill();
        }
    }

    /// Starts `spin up` again (after [`kill`](Self::kill)) on the same
    /// port, state directory and store, and waits until it serves there.
    pub fn restart(&mut self) {
        self.kill();
        let command = self.command();
        self.group = Some(wait_until_serving(command, self.port));
    }

    /// The pid of the `spin trigger http` server that `spin up` forked (the
    /// process that runs the components), once it listens.
    pub fn server_pid(&self) -> Option<libc::pid_t> {
        let group = self.group.as_ref()?;
        crate::process::running_in_group(group.id())
            .into_iter()
            .find(|&pid| pid != group.id())
    }

    /// The id of the process group `spin up` leads (its pid), while it
    /// runs: for signals to the whole group, or to tell its processes.
    pub fn group_id(&self) -> Option<libc::pid_t> {
        self.group.as_ref().map(ProcessGroup::id)
    }

    /// Starts the server's peak resident memory afresh from what it holds
    /// now (writing 5 to `/proc/PID/clear_refs`), so that a later
    /// [`server_memory`](Self::server_memory) shows the peak of what came
    /// after, not of Spin's start (compiling the components).
    pub fn reset_peak_memory(&self) {
        let pid = self.server_pid().expect("spin up's server runs");
        std::fs::write(format!("/proc/{pid}/clear_refs"), "5")
            .unwrap_or_else(|e| panic!("resetting the peak memory of {pid}: {e}"));
    }

    /// The server's resident memory now and at its peak so far (`VmRSS`
    /// and `VmHWM` of `/proc/PID/status`), in bytes.
    pub fn server_memory(&self) -> Option<ServerMemory> {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.server_pid()?)).ok()?;
        let bytes = |field: &str| -> Option<u64> {
            let line = status.lines().find(|line| line.starts_with(field))?;
            let kib: u64 = line[field.len()..]
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()?;
            Some(kib * 1024)
        };
        Some(ServerMemory {
            resident: bytes("VmRSS:")?,
            peak: bytes("VmHWM:")?,
        })
    }

    /// Waits until the server has been still for half a second: no CPU
    /// time used, no bytes read or written (at most a minute, then the test
    /// fails). Spin does not say when its instances are done, and work after
    /// a response (a job run after its `202`, a processor noticing a cancel,
    /// maintenance writing to the store) shows as CPU time or I/O. An
    /// instance blocked waiting looks still; tests wait for what they can
    /// observe first.
    pub fn wait_idle(&self) {
        const STILL: Duration = Duration::from_millis(500);
        let pid = self.server_pid().expect("spin up's server runs");
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut last = crate::process::activity(pid);
        let mut still_since = Instant::now();
        while still_since.elapsed() < STILL {
            assert!(
                Instant::now() < deadline,
                "spin up's server ({pid}) was still busy after a minute"
            );
            std::thread::sleep(Duration::from_millis(50));
            let now = crate::process::activity(pid);
            if now != last {
                last = now;
                still_since = Instant::now();
            }
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The state directory (`--state-dir`), where Spin's default store
    /// keeps its SQLite file.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir.0
    }
}

/// The memory of the `spin trigger http` server, in bytes.
#[derive(Clone, Copy, Debug)]
pub struct ServerMemory {
    /// Resident now.
    pub resident: u64,
    /// The most it has had resident (its high-water mark).
    pub peak: u64,
}

/// Runs `command` in a new process group and waits until Spin says it
/// serves on `port` (`Serving http://127.0.0.1:PORT` on its standard
/// output) and the port answers: only a listener of this group, not one
/// that took the port meanwhile. The rest of its output is read and
/// dropped until it ends. The tests of this module start a stand-in for
/// Spin this way.
fn wait_until_serving(mut command: Command, port: u16) -> ProcessGroup {
    command.stdout(Stdio::piped());
    let mut group = ProcessGroup::spawn(command);
    let stdout = group.take_stdout().expect("spin up's piped output");
    let serving = format!("Serving http://127.0.0.1:{port}");
    let (said, heard) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.trim() == serving {
                said.send(()).ok();
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match heard.recv_timeout(Duration::from_millis(100)) {
            Ok(()) => break,
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                panic!("spin up closed its output without serving on {port}")
            }
        }
        if let Some(status) = group.wait(Duration::ZERO) {
            panic!("spin up exited before serving on {port}: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "spin up did not serve on {port} within a minute"
        );
    }
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
        "spin up said it serves on {port}, but nothing answers there"
    );
    group
}

/// A loopback port nothing listens on now (the OS picks it; it may be taken
/// again before it is used, which is rare enough for tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

struct TempDir(PathBuf);

impl TempDir {
    fn runtime_config(&self) -> PathBuf {
        self.0.join("runtime-config.toml")
    }

    fn new() -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "kiln-spin-{}-{}",
            std::process::id(),
            kiln::JobId::random()
        ));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::panic::{AssertUnwindSafe, catch_unwind};

    /// A stand-in for `spin up`, started through the same code: a `spin`
    /// script that forks a long-lived child listening on the `--listen`
    /// port (as `spin up` forks `spin trigger http`), records the child's
    /// pid, says `Serving http://…` once the port answers, and waits. With `ignoring_sigterm`, both ignore SIGTERM, as a
    /// stuck Spin might.
    fn start_stand_in(ignoring_sigterm: bool) -> StandIn {
        let scripts = TempDir::new();
        let child_pid_file = scripts.0.join("child.pid");
        // An ignored signal stays ignored in forked and exec'd children.
        let trap = if ignoring_sigterm { "trap '' TERM" } else { "" };
        let script = format!(
            "#!/bin/sh\n\
             {trap}\n\
             while [ $# -gt 0 ]; do [ \"$1\" = --listen ] && listen=$2; shift; done\n\
             python3 -m http.server --bind 127.0.0.1 \"${{listen##*:}}\" >/dev/null 2>&1 &\n\
             echo $! > '{}'\n\
             until python3 -c \"import socket; socket.create_connection(('127.0.0.1', ${{listen##*:}}))\" 2>/dev/null; do sleep 0.05; done\n\
             echo \"Serving http://$listen\"\n\
             wait\n",
            child_pid_file.display()
        );
        let stand_in = scripts.0.join("spin");
        std::fs::write(&stand_in, script).expect("writing the stand-in");
        std::fs::set_permissions(
            &stand_in,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .expect("making the stand-in executable");
        let process = SpinProcess::start(&stand_in, SpinApp::new("spin.toml".into()));
        let parent = process.group.as_ref().expect("started").id();
        let child = read_pid(&child_pid_file);
        assert!(runs(parent) && runs(child), "the stand-in is up");
        assert_eq!(process.server_pid(), Some(child));
        StandIn {
            process,
            parent,
            child,
            _scripts: scripts,
        }
    }

    /// A stand-in Spin (dropped before its script), and the pids of the
    /// script and of the child it forked.
    struct StandIn {
        process: SpinProcess,
        parent: libc::pid_t,
        child: libc::pid_t,
        _scripts: TempDir,
    }

    /// The pid in `file`, once the shell has written it.
    fn read_pid(file: &Path) -> libc::pid_t {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let written = std::fs::read_to_string(file).unwrap_or_default();
            if let Ok(pid) = written.trim().parse() {
                return pid;
            }
            assert!(Instant::now() < deadline, "no pid in {}", file.display());
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Whether `pid` is a process that still runs (a zombie does not).
    fn runs(pid: libc::pid_t) -> bool {
        crate::process::is_running(pid)
    }

    fn assert_ended(parent: libc::pid_t, child: libc::pid_t, port: u16) {
        assert!(!runs(parent), "spin up ({parent}) still runs");
        assert!(!runs(child), "its forked child ({child}) still runs");
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "something still listens on {port}"
        );
    }

    /// Dropping a `SpinProcess` ends the children Spin forked, not only
    /// `spin up` itself: nothing keeps running or holding its port.
    #[test]
    fn dropping_a_spin_process_ends_the_children_it_forked() {
        let StandIn {
            process,
            parent,
            child,
            _scripts,
        } = start_stand_in(false);
        let port = process.port;
        drop(process);
        assert_ended(parent, child, port);
    }

    /// Processes that ignore SIGTERM are killed once the grace period is
    /// over.
    #[test]
    fn processes_ignoring_sigterm_are_killed_after_the_grace_period() {
        let StandIn {
            process,
            parent,
            child,
            _scripts,
        } = start_stand_in(true);
        let port = process.port;
        drop(process);
        assert_ended(parent, child, port);
    }

    /// The same when the test using it panics: the process group is ended
    /// while unwinding.
    #[test]
    fn a_panicking_test_still_ends_the_children_spin_forked() {
        let mut started = None;
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let stand_in = start_stand_in(false);
            started = Some((stand_in.parent, stand_in.child, stand_in.process.port));
            panic!("a failing test (deliberate)");
        }));
        assert!(outcome.is_err());
        let (parent, child, port) = started.expect("the stand-in started");
        assert_ended(parent, child, port);
    }

    /// `kill` ends both processes at once, SIGTERM ignored or not, and
    /// `restart` serves on the same port again.
    #[test]
    fn kill_ends_spin_at_once_and_restart_serves_on_the_same_port() {
        let StandIn {
            mut process,
            parent,
            child,
            _scripts,
        } = start_stand_in(true);
        let port = process.port;
        let started = Instant::now();
        process.kill();
        assert!(
            started.elapsed() < ProcessGroup::GRACE,
            "kill waited for SIGTERM's grace period"
        );
        assert_ended(parent, child, port);
        process.restart();
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
        let restarted = process.server_pid().expect("the new child");
        assert_ne!(restarted, child);
        drop(process);
        assert!(!runs(restarted));
    }
}
