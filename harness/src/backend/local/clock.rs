//! How a local node's wall clock is skewed: libfaketime when it is installed (the clock the
//! whole process sees moves, as on the docker and SSH backends), else the target's own
//! `--clock-offset-file`. Exactly one of the two per cluster, so a skew is never applied twice.

use anyhow::Context;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where distributions put the preload library.
const FAKETIME_LIBRARIES: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
    "/usr/lib64/faketime/libfaketime.so.1",
];

/// The mechanism a cluster's nodes are started with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClockMechanism {
    /// `LD_PRELOAD` this libfaketime; offsets go to `FAKETIME_TIMESTAMP_FILE`.
    Faketime { library: PathBuf },
    /// The target's `--clock-offset-file` (milliseconds as text).
    OffsetFile,
}

impl ClockMechanism {
    /// libfaketime if installed, else the offset file.
    pub fn detect() -> ClockMechanism {
        FAKETIME_LIBRARIES
            .iter()
            .map(Path::new)
            .find(|p| p.is_file())
            .map_or(ClockMechanism::OffsetFile, |p| ClockMechanism::Faketime {
                library: p.to_path_buf(),
            })
    }

    pub fn name(&self) -> &'static str {
        match self {
            ClockMechanism::Faketime { .. } => "libfaketime",
            ClockMechanism::OffsetFile => "offset-file",
        }
    }

    /// The node's clock file under its directory.
    pub fn file(&self, node_dir: &Path) -> PathBuf {
        match self {
            ClockMechanism::Faketime { .. } => node_dir.join("faketime.rc"),
            ClockMechanism::OffsetFile => node_dir.join("clock-offset-ms"),
        }
    }

    /// Sets up `command` to read its clock from `file`: environment or flag.
    pub fn configure(&self, command: &mut Command, file: &Path) {
        match self {
            ClockMechanism::Faketime { library } => {
                // FAKETIME in the environment would take priority over the file.
                command
                    .env_remove("FAKETIME")
                    .env("LD_PRELOAD", library)
                    .env("FAKETIME_TIMESTAMP_FILE", file)
                    // Timers and timeouts stay real: skew must break only what trusts the
                    // wall clock.
                    .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
                    // Re-read the file every second rather than every 10 s (or on every call).
                    .env("FAKETIME_CACHE_DURATION", "1")
                    // No shared memory segments, which a SIGKILLed node would leave behind.
                    .env("FAKETIME_DISABLE_SHM", "1");
            }
            ClockMechanism::OffsetFile => {
                command.arg("--clock-offset-file").arg(file);
            }
        }
    }

    /// What the clock file holds for an offset of `offset_ms`.
    pub fn contents(&self, offset_ms: i64) -> String {
        match self {
            // libfaketime's relative offset: signed seconds with a fraction ("+1.500").
            ClockMechanism::Faketime { .. } => {
                nuclei::ssh_faults::commands::faketime_offset(offset_ms)
            }
            ClockMechanism::OffsetFile => format!("{offset_ms}\n"),
        }
    }

    /// Writes the offset atomically (a reader never sees half a file).
    pub fn write(&self, file: &Path, offset_ms: i64) -> anyhow::Result<()> {
        let partial = file.with_extension("partial");
        std::fs::write(&partial, self.contents(offset_ms))
            .and_then(|()| std::fs::rename(&partial, file))
            .with_context(|| {
                format!(
                    "cannot write the clock file {} (is its directory writable?)",
                    file.display()
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_written_in_each_mechanisms_syntax() {
        let faketime = ClockMechanism::Faketime {
            library: PathBuf::from("/x/libfaketime.so.1"),
        };
        assert_eq!(faketime.contents(1500), "+1.500\n");
        assert_eq!(faketime.contents(-250), "-0.250\n");
        assert_eq!(faketime.contents(0), "+0.000\n");
        assert_eq!(faketime.contents(-61_005), "-61.005\n");
        assert_eq!(ClockMechanism::OffsetFile.contents(-250), "-250\n");
        assert_eq!(faketime.name(), "libfaketime");
        assert_eq!(ClockMechanism::OffsetFile.name(), "offset-file");
    }
}
