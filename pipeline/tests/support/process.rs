//! The real `traceless-pipeline` binary as a child process, killed when dropped.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct PipelineProcess {
    pub child: Child,
    stderr: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl PipelineProcess {
    /// Starts the binary with exactly `env` (plus PATH), stderr captured.
    pub fn spawn(env: &HashMap<String, String>) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_traceless-pipeline"));
        command
            .env_clear()
            .envs(env)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("start traceless-pipeline");
        let stderr = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().unwrap();
        let sink = Arc::clone(&stderr);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        PipelineProcess {
            child,
            stderr,
            reader: Some(reader),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits for the "ready" line and returns the address it listens on.
    pub fn wait_ready(&mut self, timeout: Duration) -> SocketAddr {
        let deadline = Instant::now() + timeout;
        loop {
            let log = self.stderr();
            if let Some(addr) = log.lines().find(|l| l.contains(" ready ")).and_then(|l| {
                l.split_whitespace()
                    .find_map(|w| w.strip_prefix("listen="))
                    .and_then(|a| a.parse().ok())
            }) {
                return addr;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("the pipeline exited ({status}) before it was ready:\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "the pipeline was not ready in {timeout:?}:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the process to exit, with a deadline.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                if let Some(reader) = self.reader.take() {
                    let _ = reader.join();
                }
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the pipeline did not exit in {timeout:?}:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for PipelineProcess {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
