//! The other half of the suite: the same contract tests against a real
//! `spin up`, when a Spin binary is available here.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::process::ProcessGroup;
use std::sync::Once;
use std::time::{Duration, Instant};

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

/// Says once per test binary that the `spin up` half did not run.
pub fn note_skipped() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        eprintln!(
            "note: no spin binary (SPIN_BIN or PATH): skipped the `spin up` half of the suite"
        );
    });
}

/// A `spin up` child process with its own state directory.
///
/// `spin up` forks a `spin trigger http` child that does the serving, so
/// ending `spin up` alone would leave that child running and holding its
/// port. Spin is therefore started in a process group of its own, and the
/// whole group is ended on drop (also when a test panics, as the value is
/// dropped while unwinding).
pub struct SpinProcess {
    group: ProcessGroup,
    port: u16,
    _state_dir: TempDir,
}

impl SpinProcess {
    /// Starts `spin up` for the app in `root` on a free loopback port.
    pub fn start(spin: &Path, root: &Path, variables: &[(String, String)]) -> SpinProcess {
        let port = free_port();
        let state_dir = TempDir::new();
        let mut command = Command::new(spin);
        command
            .args(["up", "--from"])
            .arg(root.join("spin.toml"))
            .args(["--listen", &format!("127.0.0.1:{port}"), "--state-dir"])
            .arg(&state_dir.0)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (name, value) in variables {
            command.env(format!("SPIN_VARIABLE_{}", name.to_uppercase()), value);
        }
        SpinProcess::spawn(command, port, state_dir)
    }

    /// Runs `command` in a new process group and waits until something
    /// listens on `port`. Any program will do: the tests of this module
    /// start a stand-in for Spin this way.
    fn spawn(command: Command, port: u16, state_dir: TempDir) -> SpinProcess {
        let mut process = SpinProcess {
            group: ProcessGroup::spawn(command),
            port,
            _state_dir: state_dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = process.group.wait(Duration::ZERO) {
                panic!("spin up exited before listening on {port}: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "spin up did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        process
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

struct TempDir(PathBuf);

impl TempDir {
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

    /// A stand-in for `spin up`, started through the same code: a shell
    /// that forks a long-lived child listening on the port (as `spin up`
    /// forks `spin trigger http`), records the child's pid and waits. With
    /// `ignoring_sigterm`, both ignore SIGTERM, as a stuck Spin might.
    /// Returns the process and the pids of the shell and of its child.
    fn start_stand_in(ignoring_sigterm: bool) -> (SpinProcess, libc::pid_t, libc::pid_t) {
        let port = free_port();
        let state_dir = TempDir::new();
        let child_pid_file = state_dir.0.join("child.pid");
        // An ignored signal stays ignored in forked and exec'd children.
        let trap = if ignoring_sigterm {
            "trap '' TERM\n"
        } else {
            ""
        };
        let script = format!(
            "{trap}python3 -m http.server --bind 127.0.0.1 {port} >/dev/null 2>&1 &\n\
             echo $! > '{}'\n\
             wait",
            child_pid_file.display()
        );
        let mut command = Command::new("sh");
        command.args(["-c", &script]);
        let process = SpinProcess::spawn(command, port, state_dir);
        let parent = process.group.id();
        let child = read_pid(&child_pid_file);
        assert!(runs(parent) && runs(child), "the stand-in is up");
        (process, parent, child)
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
        crate::process::process_state(pid).is_some_and(|(state, _)| state != 'Z')
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
        let (process, parent, child) = start_stand_in(false);
        let port = process.port;
        drop(process);
        assert_ended(parent, child, port);
    }

    /// Processes that ignore SIGTERM are killed once the grace period is
    /// over.
    #[test]
    fn processes_ignoring_sigterm_are_killed_after_the_grace_period() {
        let (process, parent, child) = start_stand_in(true);
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
            let (process, parent, child) = start_stand_in(false);
            started = Some((parent, child, process.port));
            panic!("a failing test (deliberate)");
        }));
        assert!(outcome.is_err());
        let (parent, child, port) = started.expect("the stand-in started");
        assert_ended(parent, child, port);
    }
}
