//! Running `vagrant` in a cluster's folder.
//!
//! Every run is in the folder itself (never `VAGRANT_CWD` or `VAGRANT_VAGRANTFILE` from the
//! caller's environment, which would point Vagrant at other machines), with Vagrant's version
//! check off (it would wait on an unreachable server) and colour off (the output is parsed and
//! quoted in errors). Output is logged line by line as it comes, so a slow `up` shows progress
//! with `RUST_LOG=debug`, and kept to tell the cause of a failure ([`super::failure`]).

use super::failure::{classify, Failure};
use super::shape::Provider;
use std::path::Path;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;

/// The lines of a failed run's output quoted in its error.
const QUOTED_LINES: usize = 25;

/// What a vagrant run printed.
#[derive(Debug, Default)]
pub struct Output {
    pub stdout: String,
    pub stderr: String,
}

/// The context an error needs to say what to do: the provider and its box or image.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    pub provider: Provider,
    pub machine: Option<&'a str>,
}

/// Runs `vagrant <args>` in `dir`, returning its output, or an error that names the cause and
/// its fix (or quotes Vagrant's last lines when the cause is not one Fissure knows).
pub async fn vagrant(dir: &Path, args: &[&str], context: Context<'_>) -> anyhow::Result<Output> {
    let shown = format!("vagrant {}", args.join(" "));
    let mut child = Command::new("vagrant")
        .args(args)
        .current_dir(dir)
        .env("VAGRANT_CHECKPOINT_DISABLE", "1")
        .env("VAGRANT_NO_COLOR", "1")
        .env_remove("VAGRANT_CWD")
        .env_remove("VAGRANT_VAGRANTFILE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                anyhow::anyhow!(
                    "cannot run `{shown}`: {}",
                    Failure::NotInstalled
                        .fix(context.provider, None)
                        .unwrap_or_default()
                )
            } else {
                anyhow::anyhow!("cannot run `{shown}`: {e}")
            }
        })?;
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let (stdout, stderr, status) =
        tokio::join!(collect(stdout, "out"), collect(stderr, "err"), child.wait());
    let status = status.map_err(|e| anyhow::anyhow!("waiting for `{shown}`: {e}"))?;
    let output = Output { stdout, stderr };
    if status.success() {
        return Ok(output);
    }
    Err(explain(&shown, dir, &output, context))
}

/// Reads a stream to its end, logging each line.
async fn collect(stream: impl AsyncRead + Unpin, which: &'static str) -> String {
    let mut lines = BufReader::new(stream).lines();
    let mut all = String::new();
    while let Ok(Some(line)) = lines.next_line().await {
        tracing::debug!(target: "vagrant", stream = which, "{line}");
        all.push_str(&line);
        all.push('\n');
    }
    all
}

/// The error for a failed run: the cause and its fix when known, then Vagrant's own last lines.
fn explain(shown: &str, dir: &Path, output: &Output, context: Context<'_>) -> anyhow::Error {
    let text = format!("{}\n{}", output.stdout, output.stderr);
    let cause = classify(&text).fix(context.provider, context.machine);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = lines[lines.len().saturating_sub(QUOTED_LINES)..].join("\n");
    match cause {
        Some(fix) => anyhow::anyhow!(
            "`{shown}` in {} failed: {fix}\nvagrant said:\n{tail}",
            dir.display()
        ),
        None => anyhow::anyhow!(
            "`{shown}` in {} failed; vagrant said:\n{tail}\n(run it there yourself to see \
             everything, with --debug for more)",
            dir.display()
        ),
    }
}

/// `vagrant --version` ("Vagrant 2.3.4" → "2.3.4"), or why there is none.
pub async fn version() -> anyhow::Result<String> {
    let output = Command::new("vagrant")
        .arg("--version")
        .env("VAGRANT_CHECKPOINT_DISABLE", "1")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                anyhow::anyhow!(
                    "{}",
                    Failure::NotInstalled
                        .fix(Provider::Docker, None)
                        .unwrap_or_default()
                )
            } else {
                anyhow::anyhow!("cannot run vagrant: {e}")
            }
        })?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        anyhow::bail!(
            "`vagrant --version` failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(text.trim().trim_start_matches("Vagrant ").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_known_failure_leads_with_its_fix_and_quotes_the_end() {
        let mut stderr = String::new();
        for i in 0..40 {
            stderr.push_str(&format!("line {i}\n"));
        }
        stderr.push_str("Stderr: Unable to find image 'fissure-node:abc' locally\n");
        let output = Output {
            stdout: "Bringing machine 'n1' up with 'docker' provider...\n".into(),
            stderr,
        };
        let context = Context {
            provider: Provider::Docker,
            machine: Some("fissure-node:abc"),
        };
        let error = explain("vagrant up", Path::new("/c"), &output, context).to_string();
        assert!(error.starts_with("`vagrant up` in /c failed: the image fissure-node:abc"));
        assert!(error.contains("fissure image ensure"), "{error}");
        assert!(
            error.contains("line 39") && !error.contains("line 10\n"),
            "{error}"
        );
        let unknown = Output {
            stdout: String::new(),
            stderr: "odd\n".into(),
        };
        let error = explain("vagrant up", Path::new("/c"), &unknown, context).to_string();
        assert!(error.contains("vagrant said:\nodd"), "{error}");
    }
}
