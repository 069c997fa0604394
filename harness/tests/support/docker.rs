//! Whether a test that needs Docker can run here, shared by the docker and targets tests.

use std::process::Command;

/// Whether these tests can run here; prints why not.
pub fn docker_available(test: &str) -> bool {
    let required = std::env::var("FISSURE_REQUIRE_DOCKER").is_ok_and(|v| v == "1");
    let daemon = Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output();
    let why = match daemon {
        Ok(out) if out.status.success() => {
            if nix::unistd::geteuid().is_root() {
                return true;
            }
            "not root (building the node image needs mmdebstrap --mode=root)".to_string()
        }
        Ok(out) => format!(
            "no Docker daemon: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => format!("no docker command: {e}"),
    };
    assert!(!required, "{test}: FISSURE_REQUIRE_DOCKER=1 but {why}");
    eprintln!("skipped {test}: {why} (set FISSURE_REQUIRE_DOCKER=1 to make this a failure)");
    false
}
