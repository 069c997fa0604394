//! Whether a test that needs Vagrant (with its docker provider) can run here, shared by the
//! vagrant tests.

use std::process::{Command, Stdio};

/// Whether this can run here; prints why not, or fails under `FISSURE_REQUIRE_VAGRANT=1`.
#[allow(dead_code)] // the libvirt tests check their own prerequisites
pub fn vagrant_available(test: &str) -> bool {
    let required = std::env::var("FISSURE_REQUIRE_VAGRANT").is_ok_and(|v| v == "1");
    let ok = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .env("VAGRANT_CHECKPOINT_DISABLE", "1")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("no {program} command: {e}"))
            .and_then(|out| {
                if out.status.success() {
                    Ok(())
                } else {
                    Err(format!(
                        "`{program} {}` failed: {}",
                        args.join(" "),
                        String::from_utf8_lossy(&out.stderr).trim()
                    ))
                }
            })
    };
    let why = match (
        ok("vagrant", &["--version"]),
        ok("docker", &["version", "--format", "{{.Server.Version}}"]),
    ) {
        (Err(why), _) | (_, Err(why)) => why,
        _ if !nix::unistd::geteuid().is_root() => {
            "not root (building the node image needs mmdebstrap --mode=root)".to_string()
        }
        _ => return true,
    };
    assert!(!required, "{test}: FISSURE_REQUIRE_VAGRANT=1 but {why}");
    eprintln!("skipped {test}: {why} (set FISSURE_REQUIRE_VAGRANT=1 to make this a failure)");
    false
}

/// A cluster name no other run shares (`<tag><pid>-<nanos>-<test>`), and a fresh folder for its
/// Vagrantfile, removed when dropped.
#[allow(dead_code)] // not every test binary that includes this makes clusters this way
pub fn fresh_cluster(tag: &str, test: &str) -> (String, tempfile::TempDir) {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let name = format!("{tag}{}-{nanos:x}-{test}", std::process::id());
    let dir = tempfile::Builder::new()
        .prefix("fissure-vagrant-test-")
        .tempdir()
        .unwrap();
    (name, dir)
}
