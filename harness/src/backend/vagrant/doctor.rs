//! `doctor` for the Vagrant backend: whether a cluster on a provider can come up here, as plain
//! data (name, ok, what was seen, the fix), for a command to print or a test to assert on.
//! Each check runs the same command a person would to see for themselves.

use super::command;
use super::failure::Failure;
use super::shape::{default_box, Provider};
use crate::backend::docker::{engine, image};
use std::process::Stdio;
use tokio::process::Command;

/// One check's result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    /// What was found: a version, a list, or the failure.
    pub detail: String,
    /// What to do when not ok.
    pub fix: Option<String>,
}

impl Check {
    fn pass(name: &str, detail: impl Into<String>) -> Check {
        Check {
            name: name.to_string(),
            ok: true,
            detail: detail.into(),
            fix: None,
        }
    }

    fn fail(name: &str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            name: name.to_string(),
            ok: false,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

/// Everything a cluster on `provider` from `machine` (box or image; `None`: the default)
/// needs: vagrant, the provider, and the box or image.
pub async fn doctor(provider: Provider, machine: Option<&str>) -> Vec<Check> {
    let mut checks = Vec::new();
    match command::version().await {
        Ok(version) => checks.push(Check::pass("vagrant", format!("vagrant {version}"))),
        Err(e) => {
            checks.push(Check::fail(
                "vagrant",
                format!("{e:#}"),
                Failure::NotInstalled
                    .fix(provider, None)
                    .unwrap_or_default(),
            ));
            return checks;
        }
    }
    match provider {
        Provider::Docker => {
            let daemon = engine::daemon_version().await;
            let up = daemon.is_ok();
            checks.push(match daemon {
                Ok(version) => Check::pass("docker daemon", format!("Docker {version}")),
                Err(e) => Check::fail(
                    "docker daemon",
                    format!("{e:#}"),
                    Failure::DockerDaemon
                        .fix(provider, None)
                        .unwrap_or_default(),
                ),
            });
            if up {
                checks.push(image_check(machine).await);
            }
        }
        Provider::Libvirt => {
            checks.push(plugin_check().await);
            checks.push(
                program_check(
                    "libvirtd",
                    "virsh",
                    &["-c", "qemu:///system", "version"],
                    &Failure::LibvirtdDown
                        .fix(provider, None)
                        .unwrap_or_default(),
                )
                .await,
            );
            checks.push(box_check(provider, machine).await);
        }
        Provider::Virtualbox => {
            checks.push(
                program_check(
                    "virtualbox",
                    "VBoxManage",
                    &["--version"],
                    &Failure::VirtualBoxMissing
                        .fix(provider, None)
                        .unwrap_or_default(),
                )
                .await,
            );
            checks.push(box_check(provider, machine).await);
        }
    }
    checks
}

/// Runs `program args` and passes on success with its first output line.
async fn program_check(name: &str, program: &str, args: &[&str], fix: &str) -> Check {
    let shown = format!("{program} {}", args.join(" "));
    match run(program, args).await {
        Ok(out) => Check::pass(name, out.lines().next().unwrap_or("").trim().to_string()),
        Err(why) => Check::fail(name, format!("`{shown}`: {why}"), fix),
    }
}

/// vagrant-libvirt is listed by `vagrant plugin list`.
async fn plugin_check() -> Check {
    let name = "vagrant-libvirt plugin";
    let fix = Failure::ProviderMissing
        .fix(Provider::Libvirt, None)
        .unwrap_or_default();
    match run("vagrant", &["plugin", "list"]).await {
        Ok(out) => match out.lines().find(|l| l.starts_with("vagrant-libvirt")) {
            Some(line) => Check::pass(name, line.trim()),
            None => Check::fail(name, "not in `vagrant plugin list`", fix),
        },
        Err(why) => Check::fail(name, format!("`vagrant plugin list`: {why}"), fix),
    }
}

/// The box is in `vagrant box list` for this provider.
async fn box_check(provider: Provider, machine: Option<&str>) -> Check {
    let default = default_box();
    let wanted = machine.unwrap_or(&default);
    let name = "box";
    let fix = Failure::BoxMissing
        .fix(provider, Some(wanted))
        .unwrap_or_default();
    match run("vagrant", &["box", "list"]).await {
        Ok(out) if has_box(&out, wanted, provider) => {
            Check::pass(name, format!("{wanted} ({provider})"))
        }
        Ok(_) => Check::fail(
            name,
            format!("{wanted} for {provider} is not in `vagrant box list`"),
            fix,
        ),
        Err(why) => Check::fail(name, format!("`vagrant box list`: {why}"), fix),
    }
}

/// Whether `vagrant box list` output (`debian/bookworm64 (libvirt, 12.20240905.1)`) has the
/// box for the provider.
fn has_box(list: &str, wanted: &str, provider: Provider) -> bool {
    list.lines().any(|line| {
        let mut parts = line.split_whitespace();
        parts.next() == Some(wanted)
            && parts.next().is_some_and(|p| {
                p.trim_start_matches('(').trim_end_matches([',', ')']) == provider.name()
            })
    })
}

/// The node image is in the local Docker.
async fn image_check(machine: Option<&str>) -> Check {
    let reference = machine.map(str::to_string).unwrap_or_else(image::reference);
    let fix = Failure::ImageMissing
        .fix(Provider::Docker, Some(&reference))
        .unwrap_or_default();
    match engine::image_exists(&reference).await {
        Ok(true) => Check::pass("node image", reference),
        Ok(false) => Check::fail("node image", format!("{reference} is not built"), fix),
        Err(e) => Check::fail("node image", format!("{e:#}"), fix),
    }
}

/// Runs a program to its end: its stdout, or why it failed.
async fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let output = Command::new(program)
        .args(args)
        .env("VAGRANT_CHECKPOINT_DISABLE", "1")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => format!("{program} is not installed"),
            _ => e.to_string(),
        })?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).to_string())
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let stdout = String::from_utf8_lossy(&output.stdout);
        let said = if stderr.trim().is_empty() {
            stdout
        } else {
            stderr
        };
        Err(format!(
            "exit {}: {}",
            output.status.code().unwrap_or(-1),
            said.trim()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxes_are_matched_by_name_and_provider() {
        let list = "debian/bookworm64 (libvirt, 12.20240905.1)\n\
                    fissure/bookworm  (libvirt, 0)\n\
                    generic/debian12  (virtualbox, 4.3.12, (amd64))\n";
        assert!(has_box(list, "debian/bookworm64", Provider::Libvirt));
        assert!(has_box(list, "fissure/bookworm", Provider::Libvirt));
        assert!(!has_box(list, "debian/bookworm64", Provider::Virtualbox));
        assert!(has_box(list, "generic/debian12", Provider::Virtualbox));
        assert!(!has_box(
            "There are no installed boxes! Use `vagrant box add` to add some.",
            "debian/bookworm64",
            Provider::Libvirt
        ));
    }
}
