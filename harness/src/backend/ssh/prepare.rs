//! Making a host the user gave ready for Fissure: root through sudo, the tools faults need, a
//! target's Debian packages, and Fissure's own binary. Idempotent, so `cluster up` after a
//! partial failure simply finishes the job.

use anyhow::{bail, Context};
use nuclei::remote::{shell_quote, Fleet, Remote};
use nuclei::ssh_faults::commands::NODE_DIR;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Where Fissure's binary lives on a host (its own directory: a host's `/opt` is not ours).
pub const NODE_PROGRAM: &str = "/var/lib/fissure/bin/fissure";

/// Overrides the binary uploaded to hosts, e.g. a statically linked build for hosts whose C
/// library is older than this machine's.
pub const NODE_BINARY_ENV: &str = "FISSURE_NODE_BINARY";

const CHECK_TIMEOUT: Duration = Duration::from_secs(30);
const INSTALL_TIMEOUT: Duration = Duration::from_secs(600);

/// What faults and the launch scripts run on a node, and the Debian package of each.
const TOOLS: &[(&str, &str)] = &[
    ("iptables", "iptables"),
    ("ip", "iproute2"),
    ("tc", "iproute2"),
    ("pkill", "procps"),
    ("ps", "procps"),
    ("nohup", "coreutils"),
    ("sha256sum", "coreutils"),
];

/// libfaketime's library, which clock faults preload (where Debian's `faketime` puts it).
const FAKETIME_GLOB: &str =
    "/usr/lib/*/faketime/libfaketime.so.1 /usr/lib/faketime/libfaketime.so.1";

/// The command that prints what a host lacks: `tool <package>` lines for missing tools, and
/// `package <name>` lines for a target's packages that are not installed.
pub fn probe_missing(packages: &[String]) -> String {
    let mut parts: Vec<String> = TOOLS
        .iter()
        .map(|(tool, package)| {
            format!("command -v {tool} >/dev/null 2>&1 || echo 'tool {tool} {package}'")
        })
        .collect();
    parts.push(format!(
        "ls {FAKETIME_GLOB} >/dev/null 2>&1 || echo 'tool libfaketime faketime'"
    ));
    for package in packages {
        let quoted = shell_quote(package);
        parts.push(format!(
            "dpkg-query -W -f='${{Status}}' {quoted} 2>/dev/null | grep -q 'install ok installed' \
             || echo package {quoted}"
        ));
    }
    parts.join("; ")
}

/// The Debian packages to install from [`probe_missing`]'s answer, sorted, without repeats.
pub fn packages_to_install(answer: &str) -> Vec<String> {
    let mut packages: Vec<String> = answer
        .lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["tool", _, package] => Some(package.to_string()),
                ["package", package] => Some(package.to_string()),
                _ => None,
            }
        })
        .collect();
    packages.sort();
    packages.dedup();
    packages
}

/// Prepares every host of `fleet` side by side (the binary hashed once for all).
pub async fn prepare_hosts(fleet: &Fleet, packages: &[String]) -> anyhow::Result<()> {
    let binary = Arc::new(Binary::this()?);
    let mut preparing = tokio::task::JoinSet::new();
    for node in fleet.remotes() {
        let (node, binary, packages) = (node.clone(), binary.clone(), packages.to_vec());
        preparing.spawn(async move {
            prepare_host(&node, &packages, &binary)
                .await
                .with_context(|| format!("preparing {}", node.node()))
        });
    }
    while let Some(done) = preparing.join_next().await {
        done.context("a host preparation task failed")??;
    }
    Ok(())
}

/// Checks root access, installs what is missing, and uploads Fissure's binary.
async fn prepare_host(node: &Remote, packages: &[String], binary: &Binary) -> anyhow::Result<()> {
    let target = node.target();
    let who = format!("{} on {}", target.user, target.node);
    let root = node.exec("id -u", CHECK_TIMEOUT).await?;
    if root.code != 0 || root.stdout.trim() != "0" {
        bail!(
            "{who} cannot act as root{}: faults need root. Log in as root, or give {} \
             passwordless sudo (a line `{} ALL=(ALL) NOPASSWD: ALL` in /etc/sudoers.d/fissure)",
            if root.stderr.trim().is_empty() {
                String::new()
            } else {
                format!(" ({})", root.stderr.trim())
            },
            target.user,
            target.user
        );
    }
    check_platform(node).await?;
    let answer = node
        .exec_ok(&probe_missing(packages), CHECK_TIMEOUT)
        .await?;
    let missing = packages_to_install(&answer);
    if !missing.is_empty() {
        install(node, &missing).await?;
    }
    upload_binary(node, binary).await
}

async fn install(node: &Remote, packages: &[String]) -> anyhow::Result<()> {
    let list = packages.join(" ");
    let has_apt = node
        .exec("command -v apt-get >/dev/null", CHECK_TIMEOUT)
        .await?;
    if has_apt.code != 0 {
        bail!(
            "{} lacks {list} and has no apt-get: install them there (Fissure installs with apt \
             on Debian and Ubuntu only)",
            node.node()
        );
    }
    tracing::info!(node = node.node(), "installing {list}");
    let command = install_command(&list);
    node.exec_ok(&command, INSTALL_TIMEOUT)
        .await
        .with_context(|| {
            format!(
                "installing {list} on {}: install them by hand, or check that the host reaches \
                 its apt mirror",
                node.node()
            )
        })?;
    Ok(())
}

/// Installs `list` (Debian packages, space separated) with apt, updating the index only if a
/// plain install fails; the end of apt's log goes to stderr when it fails.
fn install_command(list: &str) -> String {
    // Packages must not start daemons of their own (Debian's etcd-server starts etcd on
    // localhost): Fissure starts the target itself. policy-rc.d says so to invoke-rc.d and
    // deb-systemd-invoke for the length of the install, unless the host has one already.
    format!(
        "export DEBIAN_FRONTEND=noninteractive; ours=; \
         if [ ! -e /usr/sbin/policy-rc.d ]; then \
           printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d && \
           chmod 755 /usr/sbin/policy-rc.d && ours=1; \
         fi; \
         {{ apt-get install -y -q --no-install-recommends {list} >/tmp/fissure-apt.log 2>&1 || \
           {{ apt-get update -q >>/tmp/fissure-apt.log 2>&1 && \
              apt-get install -y -q --no-install-recommends {list} >>/tmp/fissure-apt.log 2>&1; }}; }}; \
         rc=$?; [ -n \"$ours\" ] && rm -f /usr/sbin/policy-rc.d; \
         [ $rc = 0 ] || {{ tail -n 20 /tmp/fissure-apt.log >&2; exit 1; }}"
    )
}

/// The binary must run there: same architecture, and a C library at least as new as the one it
/// was linked against (unless the user gave a binary of their own, e.g. a static build).
async fn check_platform(node: &Remote) -> anyhow::Result<()> {
    let answer = node
        .exec_ok(
            "uname -m; getconf GNU_LIBC_VERSION 2>/dev/null || echo none",
            CHECK_TIMEOUT,
        )
        .await?;
    let mut lines = answer.lines();
    let arch = lines.next().unwrap_or("").trim();
    let libc = lines.next().unwrap_or("").trim();
    if arch != std::env::consts::ARCH {
        bail!(
            "{} is {arch}, and this fissure binary is built for {}: build one for {arch} and \
             give it in {NODE_BINARY_ENV}",
            node.node(),
            std::env::consts::ARCH
        );
    }
    if std::env::var_os(NODE_BINARY_ENV).is_some() {
        return Ok(());
    }
    let ours = local_libc();
    if let (Some(theirs), Some(ours)) = (libc_version(libc), ours.as_deref().and_then(libc_version))
    {
        if theirs < ours {
            bail!(
                "{} has {libc}, older than this machine's glibc {}.{}: the fissure binary may not \
                 run there. Build a static one (RUSTFLAGS='-C target-feature=+crt-static' cargo \
                 build --release -p harness --target {}-unknown-linux-gnu) and give its path in \
                 {NODE_BINARY_ENV}",
                node.node(),
                ours.0,
                ours.1,
                std::env::consts::ARCH
            );
        }
    }
    Ok(())
}

fn local_libc() -> Option<String> {
    let out = std::process::Command::new("getconf")
        .arg("GNU_LIBC_VERSION")
        .output()
        .ok()?;
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// `glibc 2.36` → (2, 36).
fn libc_version(text: &str) -> Option<(u32, u32)> {
    let version = text.strip_prefix("glibc ")?;
    let (major, minor) = version.split_once('.')?;
    let minor: String = minor.chars().take_while(char::is_ascii_digit).collect();
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// The binary the hosts run, and its SHA-256.
struct Binary {
    path: PathBuf,
    digest: String,
}

impl Binary {
    fn this() -> anyhow::Result<Binary> {
        let path = node_binary()?;
        let digest = file_digest(&path)?;
        Ok(Binary { path, digest })
    }
}

/// The binary the hosts run: [`NODE_BINARY_ENV`], else this very one.
pub fn node_binary() -> anyhow::Result<PathBuf> {
    match std::env::var_os(NODE_BINARY_ENV) {
        Some(path) => {
            let path = PathBuf::from(path);
            if !path.is_file() {
                bail!("{NODE_BINARY_ENV}={} is not a file", path.display());
            }
            Ok(path)
        }
        None => std::env::current_exe().context("cannot find the fissure binary to upload"),
    }
}

/// Uploads the binary unless the host has the same one already (a digest compare: reusing a
/// cluster costs no transfer).
async fn upload_binary(node: &Remote, binary: &Binary) -> anyhow::Result<()> {
    let theirs = node
        .exec(
            &format!("sha256sum {NODE_PROGRAM} 2>/dev/null | cut -d' ' -f1"),
            CHECK_TIMEOUT,
        )
        .await?;
    if theirs.stdout.trim() == binary.digest {
        return Ok(());
    }
    node.exec_ok(&format!("mkdir -p {NODE_DIR}/bin"), CHECK_TIMEOUT)
        .await?;
    node.upload(&binary.path, NODE_PROGRAM, 0o755).await
}

/// The SHA-256 of a file, in hex, by `sha256sum` (coreutils, on every host that runs us).
fn file_digest(path: &Path) -> anyhow::Result<String> {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .context("cannot run sha256sum")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let digest = text.split_whitespace().next().unwrap_or("").to_string();
    if !out.status.success() || digest.len() != 64 {
        bail!("cannot hash {}", path.display());
    }
    Ok(digest)
}

/// Everything Fissure leaves on a host, removed: the target and link daemon stopped, our
/// iptables chains and files gone. (Faults themselves are healed first, from the ledger.)
pub fn clean_host() -> String {
    use crate::backend::remote::setup;
    use nuclei::ssh_faults::commands;
    let stop_hook = commands::hook("stop");
    format!(
        "if [ -f {stop_hook} ]; then sh {stop_hook}; fi; {}; {}; {}; rm -rf {NODE_DIR}; \
         rm -f /tmp/.fissure-transfer-* /tmp/fissure-apt.log; true",
        setup::stop_process(commands::PID_FILE, 30),
        setup::stop_process(setup::LINKS_PID, 10),
        commands::remove_chains(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_tools_and_packages_become_one_install() {
        let answer = "tool tc iproute2\ntool ip iproute2\ntool libfaketime faketime\n\
                      package etcd-server\n";
        assert_eq!(
            packages_to_install(answer),
            ["etcd-server", "faketime", "iproute2"]
        );
        assert!(packages_to_install("").is_empty());
        let probe = probe_missing(&["etcd-server".into()]);
        assert!(probe.contains("command -v iptables") && probe.contains("'etcd-server'"));
    }

    #[test]
    fn installs_keep_package_daemons_from_starting() {
        let command = install_command("etcd-server etcd-client");
        assert!(command.contains("/usr/sbin/policy-rc.d") && command.contains("exit 101"));
        let syntax = std::process::Command::new("sh")
            .args(["-n", "-c", &command])
            .output()
            .unwrap();
        assert!(
            syntax.status.success(),
            "{}",
            String::from_utf8_lossy(&syntax.stderr)
        );
    }

    #[test]
    fn glibc_versions_compare_as_numbers() {
        assert_eq!(libc_version("glibc 2.36"), Some((2, 36)));
        assert_eq!(libc_version("glibc 2.9"), Some((2, 9)));
        assert!(libc_version("glibc 2.9") < libc_version("glibc 2.36"));
        assert_eq!(libc_version("none"), None);
    }

    #[test]
    fn cleaning_a_host_stops_and_removes_everything_of_ours() {
        let clean = clean_host();
        assert!(clean.contains("rm -rf /var/lib/fissure"));
        assert!(clean.contains("FISSURE-PARTITION"));
        assert!(clean.contains("node.pid") && clean.contains("links.pid"));
    }
}
