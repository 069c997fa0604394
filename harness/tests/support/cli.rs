//! Running the `fissure` binary from integration tests, each test binary with a state directory
//! of its own (cluster state, keys, ledgers) under Cargo's target tmp dir.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// This test binary's state directory, also set for the library in this process (once, before
/// it reads it).
pub fn state_root() -> &'static PathBuf {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "{}-state-{}",
            env!("CARGO_CRATE_NAME"),
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::env::set_var("FISSURE_STATE_DIR", &dir);
        dir
    })
}

/// `fissure ARGS` with the state directory set, no standard input, and Vagrant quiet.
pub fn fissure_command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_fissure"));
    command
        .args(args)
        .env("FISSURE_STATE_DIR", state_root())
        .env("VAGRANT_CHECKPOINT_DISABLE", "1")
        .stdin(Stdio::null());
    command
}

pub fn fissure(args: &[&str]) -> Output {
    fissure_command(args).output().expect("fissure runs")
}

/// Exit code and both streams, for assertion messages.
pub fn text(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
