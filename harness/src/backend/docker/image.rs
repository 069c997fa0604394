//! The node image, built without a registry (DESIGN.md §6): no image can be pulled and
//! `docker build` needs a base image, so Fissure makes a minimal Debian root filesystem with
//! mmdebstrap and `docker import`s it. The tag carries a hash of the recipe, so a changed recipe
//! gets a new image and an unchanged one is built once.
//!
//! The image has no SSH host keys (each container makes its own at start) and raised sshd
//! session limits; the `fissure` binary is not in it (it changes with every build: clusters
//! mount it, see [`super::cluster`]).

use super::engine;
use anyhow::{bail, Context};
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The image's repository; the tag is the recipe's hash.
pub const REPOSITORY: &str = "fissure-node";
/// Bump to force a new image when the build steps change in ways the inputs below don't show.
const RECIPE_VERSION: &str = "1";
/// What a node needs: sshd for control, iproute2 (tc) and iptables for network faults, procps
/// for process state, libfaketime for clock faults; sudo, so that a container can stand in for
/// a host that logs in as someone other than root (the ssh backend's tests).
const PACKAGES: &[&str] = &[
    "openssh-server",
    "iproute2",
    "iptables",
    "procps",
    "faketime",
    "sudo",
];
const ENTRYPOINT: &str = include_str!("entrypoint.sh");
const SSHD_CONFIG: &str = include_str!("sshd.conf");
/// Where the entrypoint goes in the image.
const ENTRYPOINT_PATH: &str = "/usr/local/sbin/fissure-entrypoint";

/// The Debian suite nodes run: the host's own when it is Debian (the `fissure` binary, built on
/// the host, needs the same C library), else bookworm; `FISSURE_NODE_SUITE` overrides.
pub fn suite() -> String {
    if let Ok(suite) = std::env::var("FISSURE_NODE_SUITE") {
        return suite;
    }
    let release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let field = |name: &str| {
        release
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim_matches('"').to_string())
    };
    match (field("ID="), field("VERSION_CODENAME=")) {
        (Some(id), Some(codename)) if id == "debian" && !codename.is_empty() => codename,
        _ => "bookworm".into(),
    }
}

/// Every package of an image: the base ones, then a target's (sorted, without repeats).
fn packages(extra: &[String]) -> Vec<String> {
    let mut extra: Vec<String> = extra
        .iter()
        .filter(|p| !PACKAGES.contains(&p.as_str()))
        .cloned()
        .collect();
    extra.sort();
    extra.dedup();
    PACKAGES
        .iter()
        .map(|p| p.to_string())
        .chain(extra)
        .collect()
}

/// The image reference for the base recipe: `fissure-node:<12 hex digits>`.
pub fn reference() -> String {
    reference_with(&[])
}

/// The image reference for the base recipe plus a target's Debian packages (a target file's
/// `install.packages`): another set of packages is another image.
pub fn reference_with(extra: &[String]) -> String {
    let mut hash = Sha256::new();
    for part in [
        RECIPE_VERSION,
        &suite(),
        &packages(extra).join(","),
        ENTRYPOINT,
        SSHD_CONFIG,
    ] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    let digest = hash.finalize();
    let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("{REPOSITORY}:{hex}")
}

/// The node image, built first if it is not cached.
pub async fn ensure() -> anyhow::Result<String> {
    ensure_with(&[]).await
}

/// The node image with a target's packages, built first if it is not cached.
pub async fn ensure_with(extra: &[String]) -> anyhow::Result<String> {
    let reference = reference_with(extra);
    engine::daemon_version().await?;
    if engine::image_exists(&reference).await? {
        tracing::debug!(image = %reference, "node image cached");
        return Ok(reference);
    }
    build_with(extra).await
}

/// Builds the node image now (even if cached) and returns its reference.
pub async fn build() -> anyhow::Result<String> {
    build_with(&[]).await
}

/// Builds the node image with a target's packages now (even if cached).
pub async fn build_with(extra: &[String]) -> anyhow::Result<String> {
    engine::daemon_version().await?;
    let reference = reference_with(extra);
    let packages = packages(extra);
    tokio::task::spawn_blocking(move || build_blocking(&reference, &packages).map(|()| reference))
        .await
        .context("the image build task failed")?
}

/// The apt sources mmdebstrap reads packages from: `FISSURE_DEBIAN_MIRROR` (a URL or a sources
/// file), else this host's own apt sources (which reach its registry as configured), else
/// mmdebstrap's default.
fn mirror() -> Option<String> {
    if let Ok(mirror) = std::env::var("FISSURE_DEBIAN_MIRROR") {
        return Some(mirror);
    }
    let deb822 = "/etc/apt/sources.list.d/debian.sources";
    if std::path::Path::new(deb822).is_file() {
        return Some(deb822.into());
    }
    let list = std::fs::read_to_string("/etc/apt/sources.list").unwrap_or_default();
    list.lines()
        .any(|l| l.trim_start().starts_with("deb "))
        .then(|| "/etc/apt/sources.list".into())
}

/// mmdebstrap, installed with apt when missing and we may (saying so).
fn ensure_mmdebstrap() -> anyhow::Result<()> {
    if which("mmdebstrap").is_some() {
        return Ok(());
    }
    let root = nix::unistd::geteuid().is_root();
    if !root || which("apt-get").is_none() {
        bail!(
            "mmdebstrap is needed to build the node image and is not installed: \
             run `sudo apt-get install -y mmdebstrap` (Debian/Ubuntu), then retry"
        );
    }
    eprintln!("mmdebstrap is not installed: installing it with `apt-get install -y mmdebstrap`");
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends", "mmdebstrap"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .status()
    };
    let installed = install().is_ok_and(|s| s.success()) || {
        let _ = Command::new("apt-get")
            .arg("update")
            .stdin(Stdio::null())
            .status();
        install().is_ok_and(|s| s.success())
    };
    if !installed || which("mmdebstrap").is_none() {
        bail!(
            "could not install mmdebstrap: run `apt-get update && apt-get install -y mmdebstrap`"
        );
    }
    Ok(())
}

pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// The id of the image tagged `reference`, if there is one.
fn image_id(reference: &str) -> Option<String> {
    let out = Command::new("docker")
        .args(["image", "ls", "-q", reference])
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (!id.is_empty()).then_some(id)
}

fn build_blocking(reference: &str, packages: &[String]) -> anyhow::Result<()> {
    ensure_mmdebstrap()?;
    if !nix::unistd::geteuid().is_root() {
        bail!("building the node image needs root (mmdebstrap --mode=root): run `sudo fissure image build`");
    }
    let started = Instant::now();
    let replaced = image_id(reference);
    // Imported under a provisional tag, and tagged for real only once both mmdebstrap and the
    // import succeeded: a failed build never leaves a broken image under the cached tag.
    let building = format!("{reference}-building");
    let work = tempfile::tempdir().context("cannot make a temporary directory")?;
    let entrypoint = work.path().join("entrypoint.sh");
    let sshd = work.path().join("sshd.conf");
    std::fs::write(&entrypoint, ENTRYPOINT)?;
    std::fs::write(&sshd, SSHD_CONFIG)?;
    let hooks = [
        // Host keys are made per container at start: one image, distinct keys.
        "rm -f \"$1\"/etc/ssh/ssh_host_*".to_string(),
        format!(
            "upload {} /etc/ssh/sshd_config.d/fissure.conf",
            sshd.display()
        ),
        format!("upload {} {ENTRYPOINT_PATH}", entrypoint.display()),
        format!("chmod 755 \"$1\"{ENTRYPOINT_PATH}"),
        "rm -rf \"$1\"/var/lib/apt/lists/* \"$1\"/var/cache/apt/*.bin".to_string(),
    ];
    let mut mmdebstrap = Command::new("mmdebstrap");
    mmdebstrap.args([
        "--mode=root",
        "--variant=minbase",
        "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
        &format!("--include={}", packages.join(",")),
    ]);
    for hook in &hooks {
        mmdebstrap.arg(format!("--customize-hook={hook}"));
    }
    mmdebstrap.args([suite().as_str(), "-"]);
    if let Some(mirror) = mirror() {
        mmdebstrap.arg(mirror);
    }
    tracing::info!(image = reference, "building the node image: {mmdebstrap:?}");
    let mut debootstrap = mmdebstrap
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run mmdebstrap")?;
    let tarball = debootstrap.stdout.take().expect("piped");
    let stderr = debootstrap.stderr.take().expect("piped");
    let import = Command::new("docker")
        .args([
            "import",
            "--change",
            &format!("CMD [\"{ENTRYPOINT_PATH}\"]"),
            "--change",
            &format!("LABEL fissure.recipe={reference}"),
            "-",
            &building,
        ])
        .stdin(Stdio::from(tarball))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run docker import")?;
    let spinner = indicatif::ProgressBar::new_spinner();
    spinner.set_message(format!("building {reference} with mmdebstrap"));
    spinner.enable_steady_tick(Duration::from_millis(120));
    let mut log = Vec::new();
    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
        tracing::debug!(target: "mmdebstrap", "{line}");
        if let Some(step) = line.strip_prefix("I: ") {
            spinner.set_message(format!("building {reference}: {step}"));
        }
        log.push(line);
    }
    let built = debootstrap.wait().context("waiting for mmdebstrap")?;
    let imported = import
        .wait_with_output()
        .context("waiting for docker import")?;
    spinner.finish_and_clear();
    let docker_quiet = |args: &[&str]| {
        Command::new("docker")
            .args(args)
            .stdin(Stdio::null())
            .output()
    };
    if !(built.success() && imported.status.success()) {
        let _ = docker_quiet(&["image", "rm", &building]);
    }
    if !built.success() {
        let tail = log[log.len().saturating_sub(15)..].join("\n");
        bail!(
            "mmdebstrap failed ({built}); its output ends:\n{tail}\n\
             check that apt can reach the package registry (apt-get update), or set \
             FISSURE_DEBIAN_MIRROR"
        );
    }
    if !imported.status.success() {
        bail!(
            "docker import failed: {}",
            engine::explain(String::from_utf8_lossy(&imported.stderr).trim())
        );
    }
    let tagged = docker_quiet(&["tag", &building, reference]).context("running docker tag")?;
    if !tagged.status.success() {
        bail!(
            "docker tag {building} {reference} failed: {}",
            String::from_utf8_lossy(&tagged.stderr).trim()
        );
    }
    let _ = docker_quiet(&["image", "rm", &building]);
    if let Some(old) = replaced.filter(|old| image_id(reference).as_ref() != Some(old)) {
        // The rebuilt tag moved to the new image; the old one would linger untagged.
        let _ = docker_quiet(&["image", "rm", &old]);
    }
    let took = started.elapsed();
    tracing::info!(
        image = reference,
        secs = took.as_secs_f64(),
        "node image built"
    );
    eprintln!("built {reference} in {:.1} s", took.as_secs_f64());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_is_stable_and_names_the_repository() {
        let a = reference();
        assert_eq!(a, reference());
        let (repo, tag) = a.split_once(':').unwrap();
        assert_eq!(repo, REPOSITORY);
        assert_eq!(tag.len(), 12);
        assert!(tag.chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn the_recipe_raises_sshd_limits_and_drops_baked_host_keys() {
        assert!(SSHD_CONFIG.contains("MaxSessions"));
        assert!(SSHD_CONFIG.contains("MaxStartups"));
        assert!(ENTRYPOINT.contains("ssh-keygen -q -t ed25519"));
        assert!(SSHD_CONFIG.contains("HostKey /etc/ssh/ssh_host_ed25519_key"));
        assert!(ENTRYPOINT.contains("FISSURE_AUTHORIZED_KEY"));
    }
}
