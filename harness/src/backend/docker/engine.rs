//! The Docker Engine, through the `docker` CLI.
//!
//! Why the CLI and not the Engine API (bollard): the node image is made by piping mmdebstrap's
//! tarball into `docker import`, a CLI pipeline either way; every command Fissure runs is one a
//! person can paste to see what Fissure saw; and the CLI negotiates the API version with
//! whatever daemon is there (this machine's is 20.10, older than what current bollard assumes).
//! The cost, a process per call, is a few milliseconds against container start-ups of seconds.

use anyhow::{bail, Context};
use std::process::Stdio;
use tokio::process::Command;

/// Runs `docker <args>` and returns its stdout, trimmed. The error quotes docker's stderr and
/// says what to do when the daemon is not there.
pub async fn docker(args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| not_installed(&e))?;
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).trim().to_string());
    }
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
    bail!("`docker {}` failed: {}", args.join(" "), explain(&stderr))
}

fn not_installed(e: &std::io::Error) -> anyhow::Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        anyhow::anyhow!(
            "the docker command is not installed: install Docker (Debian: apt-get install docker.io) \
             or use --backend local"
        )
    } else {
        anyhow::anyhow!("cannot run docker: {e}")
    }
}

/// Adds what to do to docker's own words where we can tell.
pub fn explain(stderr: &str) -> String {
    if stderr.contains("Cannot connect to the Docker daemon") || stderr.contains("docker.sock") {
        format!(
            "{stderr}\nthe Docker daemon is not running or not reachable: start it \
             (systemctl start docker, or dockerd &), check DOCKER_HOST, or use --backend local"
        )
    } else if stderr.contains("permission denied") {
        format!("{stderr}\nrun as root or add your user to the docker group")
    } else {
        stderr.to_string()
    }
}

/// The daemon's version, or an error that says how to get one running.
pub async fn daemon_version() -> anyhow::Result<String> {
    docker(&["version", "--format", "{{.Server.Version}}"])
        .await
        .context("no Docker daemon")
}

/// True if an image with this reference exists locally.
pub async fn image_exists(reference: &str) -> anyhow::Result<bool> {
    let listed = docker(&["image", "ls", "-q", reference]).await?;
    Ok(!listed.is_empty())
}

/// Names of the containers carrying `label=value`, running or not.
pub async fn containers_labelled(label: &str, value: &str) -> anyhow::Result<Vec<String>> {
    let filter = format!("label={label}={value}");
    let out = docker(&["ps", "-a", "--filter", &filter, "--format", "{{.Names}}"]).await?;
    Ok(out.lines().map(str::to_string).collect())
}

/// Every IPv4 subnet any Docker network uses now.
pub async fn used_subnets() -> anyhow::Result<Vec<String>> {
    let ids = docker(&["network", "ls", "-q"]).await?;
    let ids: Vec<&str> = ids.lines().collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut args = vec![
        "network",
        "inspect",
        "--format",
        "{{range .IPAM.Config}}{{.Subnet}} {{end}}",
    ];
    args.extend(ids);
    let out = docker(&args).await?;
    Ok(out.split_whitespace().map(str::to_string).collect())
}
