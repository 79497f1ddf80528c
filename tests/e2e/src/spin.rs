//! The other half of the suite: the same contract tests against a real
//! `spin up`, when a Spin binary is available here.

use std::net::TcpListener;
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
pub struct SpinProcess {
    child: Child,
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
        let child = command.spawn().expect("starting spin up");
        let process = SpinProcess {
            child,
            port,
            _state_dir: state_dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
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

impl Drop for SpinProcess {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
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
