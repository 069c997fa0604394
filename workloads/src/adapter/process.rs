//! One running adapter program: spawned in a process group of its own with its stderr appended
//! to a log file, spoken to one line at a time, and killed as a whole group (then reaped) when
//! it misbehaves, is restarted, or is dropped.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{ExitStatus, Stdio};
use std::task::Poll;
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::time::{timeout_at, Instant};

use super::wire::{snippet, MAX_LINE};
use super::AdapterCommand;

/// How long a killed adapter may take to be reaped before we stop waiting (the runtime reaps
/// it later in any case).
const REAP_WAIT: Duration = Duration::from_secs(2);

/// How one request/answer round ended.
pub(crate) enum Exchange {
    /// A whole line (without its newline).
    Line(String),
    /// Stdout closed: the adapter exited or closed it.
    Closed { partial: Option<String> },
    /// No answer by the deadline.
    TimedOut,
    /// Writing the request or reading the answer failed (a broken pipe: it is gone).
    Broken(io::Error),
    /// A line longer than [`MAX_LINE`].
    TooLong,
}

/// What the adapter printed while nobody asked.
pub(crate) enum Idle {
    Quiet,
    Closed,
    Printed(String),
}

/// A running adapter.
pub(crate) struct Adapter {
    child: Child,
    pid: u32,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    log: PathBuf,
    /// Set once the process is reaped: its pid (and group id) may then belong to another
    /// process, so it is never signalled again.
    reaped: bool,
}

/// Appends one line of Fissure's own to an adapter log (best effort: the log is for people).
pub(crate) fn note(log: &Path, text: &str) {
    if let Ok(mut file) = OpenOptions::new().create(true).append(true).open(log) {
        let _ = writeln!(file, "--- fissure: {text} ---");
    }
}

impl Adapter {
    /// Starts `command` with `env` added, stdin and stdout piped, stderr appended to `log`.
    /// Errors say what to fix; nothing has been sent when it fails.
    pub(crate) fn spawn(
        command: &AdapterCommand,
        env: &[(String, String)],
        log: &Path,
    ) -> Result<Adapter, String> {
        if let Some(dir) = log.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                format!(
                    "cannot create the adapter log folder {}: {e}",
                    dir.display()
                )
            })?;
        }
        let stderr = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| format!("cannot open the adapter log {}: {e}", log.display()))?;
        let mut child = Command::new(&command.program)
            .args(&command.args)
            .envs(command.env.iter().map(|(k, v)| (k, v)))
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            // Its own group, so a kill reaches whatever it started too (a shell wrapper's
            // interpreter, helpers); and the runtime kills it if we are dropped unawares.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| spawn_error(command, &e))?;
        let (Some(pid), Some(stdin), Some(stdout)) =
            (child.id(), child.stdin.take(), child.stdout.take())
        else {
            return Err(format!(
                "the adapter {} started without pipes",
                command.program
            ));
        };
        note(log, &format!("started {} (pid {pid})", command.display()));
        Ok(Adapter {
            child,
            pid,
            stdin,
            stdout: BufReader::with_capacity(64 << 10, stdout),
            log: log.to_path_buf(),
            reaped: false,
        })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    pub(crate) fn log(&self) -> &Path {
        &self.log
    }

    /// Its exit status if it has exited (reaping it).
    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        match self.child.try_wait() {
            Ok(Some(status)) => {
                self.reaped = true;
                Some(status)
            }
            _ => None,
        }
    }

    /// What is waiting on its stdout right now, without waiting for more.
    pub(crate) async fn idle_output(&mut self) -> Idle {
        let stdout = &mut self.stdout;
        std::future::poll_fn(|cx| {
            Poll::Ready(match Pin::new(&mut *stdout).poll_fill_buf(cx) {
                Poll::Pending => Idle::Quiet,
                Poll::Ready(Ok([])) | Poll::Ready(Err(_)) => Idle::Closed,
                Poll::Ready(Ok(bytes)) => {
                    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(400)]);
                    Idle::Printed(snippet(&text, 200))
                }
            })
        })
        .await
    }

    /// Writes `request` (one line) and reads one line back, all by `deadline`.
    pub(crate) async fn exchange(&mut self, request: &str, deadline: Instant) -> Exchange {
        let round = async {
            self.stdin.write_all(request.as_bytes()).await?;
            self.stdin.flush().await?;
            read_line(&mut self.stdout).await
        };
        match timeout_at(deadline, round).await {
            Err(_) => Exchange::TimedOut,
            Ok(Err(e)) => Exchange::Broken(e),
            Ok(Ok(Line::Whole(bytes))) => {
                Exchange::Line(String::from_utf8_lossy(&bytes).into_owned())
            }
            Ok(Ok(Line::Eof(partial))) => Exchange::Closed {
                partial: (!partial.is_empty())
                    .then(|| snippet(&String::from_utf8_lossy(&partial), 200)),
            },
            Ok(Ok(Line::TooLong)) => Exchange::TooLong,
        }
    }

    /// Kills its whole process group and reaps it (waiting a bounded time); its exit status
    /// when it was reaped. `why` goes into its log.
    pub(crate) async fn kill(mut self, why: &str) -> Option<ExitStatus> {
        note(&self.log, &format!("killing pid {}: {why}", self.pid));
        let status = if self.reaped {
            None
        } else {
            self.signal_group();
            let _ = self.child.start_kill();
            match tokio::time::timeout(REAP_WAIT, self.child.wait()).await {
                Ok(Ok(status)) => {
                    self.reaped = true;
                    Some(status)
                }
                _ => None,
            }
        };
        status
    }

    /// Sends SIGKILL to its process group, unless it is reaped. The group cannot be reused
    /// while its leader is unreaped (a zombie keeps its pid), so this never hits a stranger.
    fn signal_group(&self) {
        if !self.reaped {
            if let Ok(pid) = i32::try_from(self.pid) {
                let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
    }
}

impl Drop for Adapter {
    fn drop(&mut self) {
        // The group first (helpers included); the child's own kill_on_drop follows, and
        // the runtime reaps it in the background, so no zombie stays behind.
        self.signal_group();
    }
}

fn spawn_error(command: &AdapterCommand, e: &io::Error) -> String {
    if e.kind() == io::ErrorKind::NotFound {
        format!(
            "cannot start the adapter {}: program {:?} not found (not an executable file at \
             that path, not on PATH, or its #! interpreter is missing)",
            command.display(),
            command.program
        )
    } else {
        format!("cannot start the adapter {}: {e}", command.display())
    }
}

enum Line {
    Whole(Vec<u8>),
    Eof(Vec<u8>),
    TooLong,
}

/// One line of at most [`MAX_LINE`] bytes, without its newline.
async fn read_line(reader: &mut (impl AsyncBufRead + Unpin)) -> io::Result<Line> {
    let mut line = Vec::new();
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            return Ok(Line::Eof(line));
        }
        if let Some(end) = buf.iter().position(|&b| b == b'\n') {
            line.extend_from_slice(&buf[..end]);
            reader.consume(end + 1);
            return Ok(Line::Whole(line));
        }
        let n = buf.len();
        line.extend_from_slice(buf);
        reader.consume(n);
        if line.len() > MAX_LINE {
            return Ok(Line::TooLong);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_are_split_at_newlines_and_eof_keeps_the_rest() {
        let mut input: &[u8] = b"{\"id\":1}\nsecond\npartial";
        let mut reader = BufReader::with_capacity(4, &mut input);
        let mut got = Vec::new();
        loop {
            match read_line(&mut reader).await.unwrap() {
                Line::Whole(line) => got.push(String::from_utf8(line).unwrap()),
                Line::Eof(rest) => {
                    got.push(format!("eof:{}", String::from_utf8(rest).unwrap()));
                    break;
                }
                Line::TooLong => panic!("not too long"),
            }
        }
        assert_eq!(got, ["{\"id\":1}", "second", "eof:partial"]);
    }

    #[tokio::test]
    async fn a_missing_program_is_an_error_that_names_it() {
        let dir = std::env::temp_dir().join(format!("fissure-adapter-{}", std::process::id()));
        let command = AdapterCommand {
            program: "/nonexistent/fissure-adapter".into(),
            args: vec![],
            env: vec![],
        };
        let err = match Adapter::spawn(&command, &[], &dir.join("a.log")) {
            Ok(_) => panic!("started a program that does not exist"),
            Err(e) => e,
        };
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            err.contains("not found") && err.contains("/nonexistent/fissure-adapter"),
            "{err}"
        );
    }
}
