//! Agent processes for tests: start the real `skiff` binary on a free port,
//! read its address from its first line of output, stop it with SIGTERM or
//! SIGKILL.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct AgentProcess {
    pub child: Child,
    pub url: String,
    pub stdout: std::sync::Arc<parking_lot::Mutex<Vec<String>>>,
}

pub fn skiff_bin() -> &'static str {
    env!("CARGO_BIN_EXE_skiff")
}

impl AgentProcess {
    /// Start `skiff agent --listen 127.0.0.1:0 --store STORE EXTRA...`.
    pub fn start(store: &str, extra: &[&str]) -> AgentProcess {
        Self::start_with_env(store, extra, &[], &[])
    }

    /// Like `start`, with variables set (`env`) and removed (`unset`).
    pub fn start_with_env(
        store: &str,
        extra: &[&str],
        env: &[(&str, &str)],
        unset: &[&str],
    ) -> AgentProcess {
        let mut cmd = Command::new(skiff_bin());
        for k in unset {
            cmd.env_remove(k);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .args(["agent", "--listen", "127.0.0.1:0", "--store", store])
            // Test-friendly defaults that flags in `extra` may override.
            .env("SKIFF_TAIL_INTERVAL_MS", "20")
            .env("SKIFF_LINGER_MS", "2")
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start skiff agent");
        let stdout = child.stdout.take().expect("stdout");
        let lines = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let keep = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("skiff agent listening on ") {
                    let _ = tx.send(addr.to_string());
                }
                keep.lock().push(line);
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("agent did not start: {:?}", lines.lock()));
        AgentProcess {
            child,
            url,
            stdout: lines,
        }
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill {sig} failed");
    }

    /// SIGTERM, then wait (bounded) for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        self.signal("-TERM");
        let deadline = skiff::clock::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                skiff::clock::now() < deadline,
                "agent did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: the process dies at once, mid-whatever.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run the CLI; returns (exit success, stdout, stderr).
pub fn cli(url: &str, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    use std::io::Write;
    let mut child = Command::new(skiff_bin())
        .args(args)
        .env("SKIFF_URL", url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run skiff");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().expect("wait");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}
