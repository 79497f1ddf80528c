//! Ending everything the harness started when it is interrupted.
//!
//! Normally the Drop guards of [`crate::cluster`] end every process group
//! (also while a panic unwinds). A Ctrl-C (SIGINT) or SIGTERM would end the
//! harness without running them, leaving `spin up`, `redis-server` and
//! `haproxy` behind in process groups of their own (the terminal's SIGINT
//! does not reach them). So both signals only raise a flag, and a watcher
//! thread ends the process group of every child this process started, then
//! removes the temporary directories and exits with 130.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    // Only async-signal-safe work here: the watcher does the rest.
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Installs the SIGINT and SIGTERM handlers and starts the watcher.
pub fn install() {
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler only stores to an atomic, which is
    // async-signal-safe; signal(2) takes no pointers we own.
    unsafe {
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
    std::thread::spawn(|| {
        loop {
            std::thread::sleep(Duration::from_millis(100));
            if INTERRUPTED.load(Ordering::SeqCst) {
                eprintln!("\ninterrupted: ending spin up, redis-server and haproxy");
                end_children();
                remove_temp_dirs();
                std::process::exit(130);
            }
        }
    });
}

/// Whether Ctrl-C was pressed (long loops stop early).
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// SIGKILLs the process group of every direct child: each was started as
/// the leader of its own group (`ProcessGroup::spawn`), so this reaches the
/// servers `spin up` forked too.
fn end_children() {
    // SAFETY: getpid has no preconditions.
    let me = unsafe { libc::getpid() };
    for pid in children_of(me) {
        // SAFETY: kill(2) takes no pointers.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
            libc::kill(pid, libc::SIGKILL);
        }
    }
    std::thread::sleep(Duration::from_millis(300));
}

/// The pids whose parent is `parent`, from `/proc/PID/stat`.
fn children_of(parent: libc::pid_t) -> Vec<libc::pid_t> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&pid: &libc::pid_t| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // After `pid (comm)`: state, then the parent's pid.
            let after_comm = stat.rfind(')').map_or("", |at| &stat[at + 1..]);
            after_comm.split_whitespace().nth(1) == Some(&parent.to_string())
        })
        .collect()
}

/// The harness's scratch directory and Spin's state directories (named
/// after this process by `kiln-e2e`), which the Drop guards would remove.
fn remove_temp_dirs() {
    let pid = std::process::id();
    let prefixes = [format!("kiln-spin-{pid}-"), format!("kiln-cluster-{pid}-")];
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        if prefixes.iter().any(|prefix| name.starts_with(prefix)) {
            std::fs::remove_dir_all(entry.path()).ok();
        }
    }
}
