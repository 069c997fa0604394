//! The blocking halves of [`super::Remote`]'s operations, each on one checked-out session.
//!
//! Each failure says whether a retry is safe: a command is retried only if its channel never
//! opened; file transfers always may be, since they only ever replace the whole file.

use super::pool::{millis, Attempt, Conn};
use super::{shell_quote, ExecOutput};
use anyhow::anyhow;
use ssh2::{ErrorCode, FileStat, OpenFlags, OpenType, Session};
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Chunk size for reads and writes: big enough to keep SFTP's pipeline full.
const CHUNK: usize = 256 * 1024;

/// Runs `command` on a new channel of `conn`; see [`super::Remote::exec`].
pub(super) fn exec(
    conn: &Conn,
    label: &str,
    command: &str,
    timeout: Duration,
    open_timeout: Duration,
) -> Result<ExecOutput, Attempt> {
    let session = &conn.session;
    session.set_timeout(millis(open_timeout));
    // Nothing has run yet if this fails, so a stale session is simply replaced.
    let mut channel = session
        .channel_session()
        .map_err(|e| conn.retry(anyhow!("opening a channel to {label}: {e}")))?;
    let deadline = super::deadline_after(timeout);
    let timed_out = || {
        conn.fail(anyhow!(
            "`{command}` on {label} did not finish within {timeout:?} (it may still be running \
             there); if it is only slow, give it a longer timeout"
        ))
    };
    let lost = |e: &dyn std::fmt::Display| {
        if Instant::now() >= deadline {
            return timed_out();
        }
        conn.fail(anyhow!(
            "lost the connection to {label} while running `{command}` ({e}); the command may or \
             may not have run, so it was not retried"
        ))
    };
    let remaining = |session: &Session| {
        let left = deadline.saturating_duration_since(Instant::now());
        session.set_timeout(millis(left));
        !left.is_zero()
    };

    if !remaining(session) {
        return Err(timed_out());
    }
    channel.exec(command).map_err(|e| lost(&e))?;
    // The command gets no input; an open stdin would hang anything that reads it.
    channel.send_eof().map_err(|e| lost(&e))?;
    // Both streams share one flow-control window that only reading opens again, so reading
    // one to its end while the other fills the window would deadlock: read them in turn,
    // without blocking, and wait on the socket when neither has data.
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let mut buf = vec![0; CHUNK];
    let mut done = [false, false];
    session.set_blocking(false);
    while !(done[0] && done[1]) {
        let mut progress = false;
        for (i, out) in [&mut stdout, &mut stderr].into_iter().enumerate() {
            if done[i] {
                continue;
            }
            match channel.stream(i as i32).read(&mut buf) {
                Ok(0) => done[i] = true,
                Ok(n) => {
                    out.extend_from_slice(&buf[..n]);
                    progress = true;
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
                Err(e) => return Err(lost(&e)),
            }
        }
        if Instant::now() >= deadline {
            return Err(timed_out());
        }
        // libssh2 may take in the EOF while reading one stream and then answer "would block"
        // for the other: eof() says nothing more will come, so don't wait on a quiet socket.
        if !progress && channel.eof() {
            break;
        }
        if !progress {
            conn.wait_io(deadline);
        }
    }
    session.set_blocking(true);
    if !remaining(session) {
        return Err(timed_out());
    }
    channel.wait_close().map_err(|e| lost(&e))?;
    let code = match channel.exit_signal() {
        Ok(ssh2::ExitSignal {
            exit_signal: Some(signal),
            ..
        }) => 128 + signal_number(&signal),
        _ => channel.exit_status().map_err(|e| lost(&e))?,
    };
    Ok(ExecOutput {
        code,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    })
}

/// Where an upload's bytes come from; shared, so a retry can read them again.
pub(super) enum Source {
    File(PathBuf),
    Bytes(Arc<Vec<u8>>),
}

/// An SFTP channel on `conn`; failing to open one means a stale session, so it is retried.
fn start_sftp(conn: &Conn, label: &str, io_timeout: Duration) -> Result<ssh2::Sftp, Attempt> {
    conn.session.set_timeout(millis(io_timeout));
    conn.session
        .sftp()
        .map_err(|e| conn.retry(anyhow!("starting SFTP on {label}: {e}")))
}

/// A fresh path in `/tmp` for a file on its way to or from a place only root may write or read.
pub(super) fn staging_path() -> String {
    format!("/tmp/.fissure-transfer-{:016x}", rand::random::<u64>())
}

/// Writes `source` to `remote_path.part`, sets `mode`, and renames it over `remote_path`. With
/// `sudo`, the login user writes a file in `/tmp`, and root copies it into place.
pub(super) fn upload(
    conn: &Conn,
    label: &str,
    source: &Source,
    remote_path: &str,
    mode: i32,
    io_timeout: Duration,
    sudo: bool,
) -> Result<(), Attempt> {
    let sftp = start_sftp(conn, label, io_timeout)?;
    let part = if sudo {
        staging_path()
    } else {
        format!("{remote_path}.part")
    };
    let flags = OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE;
    let mut file = sftp
        .open_mode(Path::new(&part), flags, mode, OpenType::File)
        .map_err(|e| classify(conn, e, format!("creating {part} on {label}")))?;
    let mut reader: Box<dyn Read> = match source {
        Source::File(path) => Box::new(std::fs::File::open(path).map_err(|e| Attempt::Fail {
            error: anyhow!("reading {}: {e}", path.display()),
            keep: true,
        })?),
        Source::Bytes(bytes) => Box::new(&bytes[..]),
    };
    let mut buf = vec![0; CHUNK];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let error = anyhow!("reading the local file: {e}");
                return Err(Attempt::Fail { error, keep: true });
            }
        };
        file.write_all(&buf[..n])
            .map_err(|e| conn.retry(anyhow!("writing {part} on {label}: {e}")))?;
    }
    // Servers without the fsync extension answer with an SFTP status; only a dead link matters.
    if let Err(e) = file.fsync() {
        if let ErrorCode::Session(_) = e.code() {
            return Err(conn.retry(anyhow!("syncing {part} on {label}: {e}")));
        }
    }
    file.close()
        .map_err(|e| classify(conn, e, format!("closing {part} on {label}")))?;
    // Set explicitly: the mode given at creation is cut down by sftp-server's umask.
    let stat = FileStat {
        size: None,
        uid: None,
        gid: None,
        perm: Some(mode as u32),
        atime: None,
        mtime: None,
    };
    sftp.setstat(Path::new(&part), stat)
        .map_err(|e| classify(conn, e, format!("setting the mode of {part} on {label}")))?;
    // SFTP's rename refuses to replace an existing file; mv is rename(2), atomic.
    let mv = if sudo {
        let target_part = format!("{remote_path}.part");
        let as_root = format!(
            "cp -- {staged} {part} && chmod {mode:o} {part} && mv -f -- {part} {to}",
            staged = shell_quote(&part),
            part = shell_quote(&target_part),
            to = shell_quote(remote_path)
        );
        format!(
            "sudo -n /bin/sh -c {}; code=$?; rm -f -- {}; exit $code",
            shell_quote(&as_root),
            shell_quote(&part)
        )
    } else {
        format!(
            "mv -f -- {} {}",
            shell_quote(&part),
            shell_quote(remote_path)
        )
    };
    match exec(conn, label, &mv, io_timeout, io_timeout) {
        Ok(out) if out.code == 0 => Ok(()),
        Ok(out) => Err(Attempt::Fail {
            error: anyhow!(
                "`{mv}` on {label} exited with code {}: {}",
                out.code,
                out.stderr.trim()
            ),
            keep: true,
        }),
        // Uploading again is harmless, whether or not the mv ran.
        Err(Attempt::Fail { error, keep: false }) => Err(conn.retry(error)),
        Err(e) => Err(e),
    }
}

/// Copies `remote_path` into `local.part`, syncs it, and renames it to `local`.
pub(super) fn download(
    conn: &Conn,
    label: &str,
    remote_path: &str,
    local: &Path,
    io_timeout: Duration,
) -> Result<(), Attempt> {
    let sftp = start_sftp(conn, label, io_timeout)?;
    let mut file = sftp
        .open(Path::new(remote_path))
        .map_err(|e| classify(conn, e, format!("opening {remote_path} on {label}")))?;
    let mut part = local.as_os_str().to_owned();
    part.push(".part");
    let part = PathBuf::from(part);
    let local_error = |what: &str, e: std::io::Error| {
        let _ = std::fs::remove_file(&part);
        Attempt::Fail {
            error: anyhow!("{what} {}: {e}", part.display()),
            keep: true,
        }
    };
    let mut out = std::fs::File::create(&part).map_err(|e| local_error("creating", e))?;
    let mut buf = vec![0; CHUNK];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let _ = std::fs::remove_file(&part);
                return Err(conn.retry(anyhow!("reading {remote_path} on {label}: {e}")));
            }
        };
        out.write_all(&buf[..n])
            .map_err(|e| local_error("writing", e))?;
    }
    out.sync_all().map_err(|e| local_error("syncing", e))?;
    std::fs::rename(&part, local).map_err(|e| local_error("renaming", e))
}

/// An SFTP status is the server's answer (no such file, permission denied): final, and the
/// session is fine. Anything else is the link failing: retry on a fresh session.
fn classify(conn: &Conn, e: ssh2::Error, what: String) -> Attempt {
    match e.code() {
        ErrorCode::SFTP(_) => Attempt::Fail {
            error: anyhow!("{what}: {e}"),
            keep: true,
        },
        ErrorCode::Session(_) => conn.retry(anyhow!("{what}: {e}")),
    }
}

/// Linux signal numbers, for the shell's `128 + n` exit code convention.
fn signal_number(name: &str) -> i32 {
    const SIGNALS: [&str; 15] = [
        "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2",
        "PIPE", "ALRM", "TERM",
    ];
    let name = name.trim_start_matches("SIG");
    SIGNALS
        .iter()
        .position(|s| *s == name)
        .map_or(127, |i| i as i32 + 1)
}

#[cfg(test)]
mod tests {
    #[test]
    fn signal_numbers() {
        assert_eq!(super::signal_number("KILL"), 9);
        assert_eq!(super::signal_number("SIGTERM"), 15);
        assert_eq!(super::signal_number("HUP"), 1);
        assert_eq!(super::signal_number("WEIRD"), 127);
    }
}
