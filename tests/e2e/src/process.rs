//! Processes a test starts, each leading a process group of its own, so
//! that the test ends them and every child they started (`spin up` forks
//! the server that does the work; a browser forks many), and the rule for
//! tests that need a tool from outside cargo.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A child process leading a process group of its own; dropping it ends
/// every process in the group: SIGTERM, a grace period to shut down, then
/// SIGKILL for whatever still runs. The leader is reaped.
pub struct ProcessGroup {
    leader: Child,
}

impl ProcessGroup {
    /// Long enough for `spin up` to shut down cleanly (well under a second
    /// when idle); only a process ignoring SIGTERM waits it out.
    pub(crate) const GRACE: Duration = Duration::from_secs(3);

    /// Starts `command` as the leader of a new process group.
    pub fn spawn(mut command: Command) -> ProcessGroup {
        // Group id = the child's pid, so the group is known without asking.
        command.process_group(0);
        let leader = command
            .spawn()
            .unwrap_or_else(|e| panic!("starting {:?}: {e}", command.get_program()));
        ProcessGroup { leader }
    }

    /// Waits for the leader to exit, for at most `timeout`; `None` if it
    /// still runs (dropping the group then ends it).
    pub fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.leader.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Ends every process in the group at once with SIGKILL (a crash, not
    /// a shutdown), and waits until none runs.
    pub fn kill(self) {
        self.signal(libc::SIGKILL);
        assert!(
            self.wait_until_ended(Self::GRACE),
            "process group {} still runs after SIGKILL",
            self.id()
        );
        // Dropping sends SIGTERM to a group that no longer runs, and reaps
        // the leader.
    }

    /// The leader's standard output, if it was piped and not taken yet.
    pub fn take_stdout(&mut self) -> Option<std::process::ChildStdout> {
        self.leader.stdout.take()
    }

    /// The group's id (its leader's pid).
    pub fn id(&self) -> libc::pid_t {
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

/// Whether a test that needs a tool from outside cargo (a browser, a
/// Python venv) skips here: `missing` says why it cannot run, and it skips
/// with a note, unless `$required` is set (`.ci/run` sets it), where it
/// fails instead, so that CI never skips it.
pub fn skip_without_tool(missing: Option<String>, required: &str, test: &str) -> bool {
    let Some(why) = missing else {
        return false;
    };
    assert!(
        std::env::var_os(required).is_none(),
        "{test} must run here ({required} is set): {why}"
    );
    eprintln!("note: {why}: {test} skipped");
    true
}

/// Prints a tool's report (Schemathesis's summary, the browser's line)
/// even from a passing test: written to stderr directly, as the harness
/// captures only `print!` and `eprint!`.
pub fn report(text: &str) {
    use std::io::Write;
    let mut stderr = std::io::stderr().lock();
    writeln!(stderr, "{text}").ok();
}

/// Runs `command` to its end in a process group of its own, with no input
/// and its output (stdout and stderr) written to `log`; the group is ended
/// after `timeout`. Its output if it exited successfully; else how it
/// ended, then its output.
pub fn run_logged(mut command: Command, log: &Path, timeout: Duration) -> Result<String, String> {
    let log_file =
        std::fs::File::create(log).unwrap_or_else(|e| panic!("creating {}: {e}", log.display()));
    command
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().expect("the log again"))
        .stderr(log_file);
    let mut group = ProcessGroup::spawn(command);
    let status = group.wait(timeout);
    drop(group);
    let output = std::fs::read_to_string(log).unwrap_or_default();
    match status {
        Some(status) if status.success() => Ok(output),
        Some(status) => Err(format!("{status}:\n{output}")),
        None => Err(format!("not finished within {timeout:?}, ended:\n{output}")),
    }
}

/// The pids of the processes in process group `group` that still run.
///
/// Read from `/proc` rather than probed with `kill(-group, 0)`, because
/// that also counts zombies: an exited child of an exited parent is
/// reparented to PID 1, and not every PID 1 (in containers, sandboxes)
/// reaps them. A zombie runs nothing and holds no port.
pub(crate) fn running_in_group(group: libc::pid_t) -> Vec<libc::pid_t> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&pid| process_group(pid) == Some(group) && is_running(pid))
        .collect()
}

/// Whether `pid` still runs anything: a zombie does not, but a process
/// whose main thread has exited is shown as a zombie while its other
/// threads still run (a killed server's threads may still hold its port),
/// so each of its threads is looked at.
pub fn is_running(pid: libc::pid_t) -> bool {
    let Ok(threads) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    threads.filter_map(Result::ok).any(|thread| {
        stat_fields(&thread.path().join("stat"))
            .is_some_and(|fields| !matches!(fields[0].as_str(), "Z" | "X"))
    })
}

/// A process's group, from `/proc/PID/stat`; `None` once it is gone.
fn process_group(pid: libc::pid_t) -> Option<libc::pid_t> {
    stat_fields(&proc_stat(pid))?[2].parse().ok()
}

fn proc_stat(pid: libc::pid_t) -> std::path::PathBuf {
    format!("/proc/{pid}/stat").into()
}

/// What a process has done so far: its CPU time in clock ticks (user and
/// system) and the bytes it has read and written (`rchar`, `wchar` of
/// `/proc/PID/io`, sockets and files alike). Zeros once it is gone.
pub(crate) fn activity(pid: libc::pid_t) -> [u64; 3] {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap_or_default();
    let counter = |name: &str| {
        io.lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or(0)
    };
    [cpu_ticks(pid), counter("rchar:"), counter("wchar:")]
}

/// The CPU time a process has used (user and system, in clock ticks); 0
/// once it is gone.
fn cpu_ticks(pid: libc::pid_t) -> u64 {
    // Fields 14 and 15 of `/proc/PID/stat` (utime, stime): 11 and 12 after
    // the state letter.
    stat_fields(&proc_stat(pid)).map_or(0, |fields| {
        fields[11..13]
            .iter()
            .filter_map(|field| field.parse::<u64>().ok())
            .sum()
    })
}

/// The fields of a `stat` file of `/proc` after `pid (comm)`, from the
/// state letter on (comm may hold spaces and parentheses).
fn stat_fields(file: &Path) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(file).ok()?;
    let fields: Vec<String> = stat[stat.rfind(')')? + 1..]
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    (fields.len() > 12).then_some(fields)
}
