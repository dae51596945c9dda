//! Servers the host tests start as processes (`node server.js`, `wasmtime
//! serve`), and the directories they keep their data in.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A directory of its own under `parent` (a test's `CARGO_TARGET_TMPDIR`),
/// removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// `parent/<prefix>-<pid>-<n>`, empty.
    pub fn new(parent: &Path, prefix: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = parent.join(format!("{prefix}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst)));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running server: its stdout as lines on a channel, its stderr kept.
pub struct Process {
    child: Option<Child>,
    /// Lines of stdout after the one that said the server was ready.
    lines: Mutex<Receiver<String>>,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Process {
    /// Spawns `command` with stdout and stderr piped and waits up to `wait`
    /// for a line, on either, that `ready` accepts; returns the process and
    /// what `ready` made of the line (an address, say).
    pub fn start(
        command: &mut Command,
        wait: Duration,
        ready: impl Fn(&str) -> Option<String>,
    ) -> Result<(Process, String), String> {
        let program = command.get_program().to_string_lossy().into_owned();
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {program}: {e}"))?;
        let (out_tx, lines) = channel();
        let stdout = child.stdout.take().expect("piped stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if out_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let (err_tx, err_lines) = channel();
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut pipe = child.stderr.take().expect("piped stderr");
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut text = String::new();
            let mut buf = [0u8; 8192];
            let keep = |line: String| {
                let _ = err_tx.send(line.clone());
                sink.lock().unwrap().push(line);
            };
            while let Ok(n @ 1..) = pipe.read(&mut buf) {
                text.push_str(&String::from_utf8_lossy(&buf[..n]));
                while let Some(end) = text.find('\n') {
                    keep(text[..end].to_owned());
                    text.drain(..=end);
                }
            }
            if !text.is_empty() {
                keep(text);
            }
        });

        let mut process = Process { child: Some(child), lines: Mutex::new(lines), stderr };
        let deadline = Instant::now() + wait;
        loop {
            let line = process
                .lines
                .get_mut()
                .unwrap()
                .try_recv()
                .or_else(|_| err_lines.recv_timeout(Duration::from_millis(20)));
            if let Ok(line) = line {
                if let Some(found) = ready(&line) {
                    return Ok((process, found));
                }
                continue;
            }
            let exited = process.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() || Instant::now() > deadline {
                process.kill();
                std::thread::sleep(Duration::from_millis(50));
                return Err(format!("{program} did not start ({exited:?}):\n{}", process.log()));
            }
        }
    }

    /// The next line of stdout, waiting at most `timeout`.
    pub fn next_line(&self, timeout: Duration) -> Result<String, RecvTimeoutError> {
        self.lines.lock().unwrap().recv_timeout(timeout)
    }

    /// Everything the process wrote to stderr so far.
    pub fn log(&self) -> String {
        self.stderr.lock().map(|l| l.join("\n")).unwrap_or_default()
    }

    /// SIGKILL, no goodbye: what was acknowledged must be on disk.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the process and returns its whole log, once the reader has
    /// read the last line.
    pub fn stop_and_read_log(&mut self) -> String {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Arc::strong_count(&self.stderr) > 1 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.log()
    }

    /// Keeps `earlier`'s log in front of this one's: a restarted server's
    /// log is the whole story.
    pub fn continues(&mut self, earlier: &Process) {
        let before = earlier.stderr.lock().unwrap().clone();
        self.stderr.lock().unwrap().splice(0..0, before);
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Calls `start` until it succeeds, for a server restarted on the port it
/// had (which may be held for a moment after a kill), at most ten seconds.
pub fn restart<T>(mut start: impl FnMut() -> Result<T, String>) -> Result<T, String> {
    let mut last = String::new();
    for _ in 0..40 {
        match start() {
            Ok(started) => return Ok(started),
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    Err(last)
}
