//! The other half of the suite: the same contract tests against a real
//! `spin up`, when a Spin binary is available here.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
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
            if let Ok(Some(status)) = process.group.leader.try_wait() {
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

/// A child process leading a process group of its own; dropping it ends
/// every process in the group: SIGTERM, a grace period to shut down, then
/// SIGKILL for whatever still runs. The leader is reaped.
struct ProcessGroup {
    leader: Child,
}

impl ProcessGroup {
    /// Long enough for `spin up` to shut down cleanly (well under a second
    /// when idle); only a process ignoring SIGTERM waits it out.
    const GRACE: Duration = Duration::from_secs(3);

    fn spawn(mut command: Command) -> ProcessGroup {
        // Group id = the child's pid, so the group is known without asking.
        command.process_group(0);
        let leader = command.spawn().expect("starting spin up");
        ProcessGroup { leader }
    }

    fn id(&self) -> libc::pid_t {
        libc::pid_t::try_from(self.leader.id()).expect("pids fit in pid_t")
    }

    fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill(2) takes no pointers; a negative pid names the
        // process group, which exists at least as long as its unreaped
        // leader does.
        unsafe {
            libc::kill(-self.id(), signal);
        }
    }

    /// Waits until no process of the group runs, for at most `timeout`.
    fn wait_until_ended(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if running_in_group(self.id()).is_empty() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.signal(libc::SIGTERM);
        if !self.wait_until_ended(Self::GRACE) {
            self.signal(libc::SIGKILL);
            self.wait_until_ended(Self::GRACE);
        }
        self.leader.wait().ok();
    }
}

/// The pids of the processes in process group `group` that still run.
///
/// Read from `/proc` rather than probed with `kill(-group, 0)`, because
/// that also counts zombies: an exited child of an exited parent is
/// reparented to PID 1, and not every PID 1 (in containers, sandboxes)
/// reaps them. A zombie runs nothing and holds no port.
fn running_in_group(group: libc::pid_t) -> Vec<libc::pid_t> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&pid| {
            process_state(pid).is_some_and(|(state, pgrp)| pgrp == group && state != 'Z')
        })
        .collect()
}

/// A process's state letter and process group, from `/proc/PID/stat`; `None`
/// once it is gone.
fn process_state(pid: libc::pid_t) -> Option<(char, libc::pid_t)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid pgrp …`; comm may hold spaces and parentheses.
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = fields.next()?.chars().next()?;
    let _ppid = fields.next()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some((state, pgrp))
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
        process_state(pid).is_some_and(|(state, _)| state != 'Z')
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
