//! Putting a target on the nodes before its first start: a bundled target's launch scripts (and
//! link daemons), or a target file's files, install commands, wipe, launch script and its own
//! fault commands.

use super::file_target::{self, FileTarget};
use super::setup::{self, NodeLayout, CLIENT_PORT};
use super::{RemoteCluster, SETUP_TIMEOUT};
use anyhow::Context;
use nuclei::ssh_faults::commands;

impl RemoteCluster {
    /// Uploads each node's launch script for a mode of Fissure's node binary, and starts the link
    /// daemons when latency goes through them.
    pub(super) async fn install_bundled(
        &self,
        mode: &str,
        node_args: &[Vec<String>],
    ) -> anyhow::Result<()> {
        let fleet = self.faults.fleet();
        let daemon = self.link_daemon();
        let peers = self.peers();
        let mut uploads = tokio::task::JoinSet::new();
        for (i, node) in fleet.remotes().iter().enumerate() {
            let layout = NodeLayout {
                nodes: &peers,
                me: i,
                program: &self.config.program,
                target: mode,
                extra: &node_args[i],
                link_daemon: daemon,
            };
            let (script, links) = (layout.launch_script(), layout.links());
            let node = node.clone();
            let program = self.config.program.clone();
            uploads.spawn(async move {
                node.upload_bytes(script.into_bytes(), commands::LAUNCH_SCRIPT, 0o755)
                    .await?;
                if daemon {
                    let links = serde_json::to_vec_pretty(&links)?;
                    node.upload_bytes(links, setup::LINKS_CONFIG, 0o644).await?;
                    node.exec_ok(
                        &setup::start_link_daemon(&program, CLIENT_PORT),
                        SETUP_TIMEOUT,
                    )
                    .await?;
                }
                anyhow::Ok(())
            });
        }
        while let Some(done) = uploads.join_next().await {
            done.context("a node setup task failed")??;
        }
        Ok(())
    }

    /// Copies a target file's files onto every node, runs its install commands and its wipe, and
    /// uploads each node's launch script.
    pub(super) async fn install_file_target(&self, file: &FileTarget) -> anyhow::Result<()> {
        let fleet = self.faults.fleet();
        let mut uploads = tokio::task::JoinSet::new();
        for (node, commands) in fleet.remotes().iter().zip(&self.commands) {
            let node = node.clone();
            let commands = commands.clone();
            let script = file_target::launch_script(node.node(), &commands.start);
            let mut files = Vec::new();
            for f in &file.def.install.files {
                let from = file.base_dir.join(&f.from);
                let bytes = std::fs::read(&from).with_context(|| {
                    format!(
                        "{}: install.files: cannot read {}",
                        file.def.name,
                        from.display()
                    )
                })?;
                let mode =
                    i32::from_str_radix(f.mode.trim_start_matches("0o"), 8).map_err(|_| {
                        anyhow::anyhow!(
                            "{}: install.files: mode {:?} is not octal",
                            file.def.name,
                            f.mode
                        )
                    })?;
                files.push((bytes, f.to.clone(), mode));
            }
            uploads.spawn(async move {
                for (bytes, to, mode) in files {
                    node.upload_bytes(bytes, &to, mode).await?;
                }
                for command in commands.install.iter().chain(&commands.wipe) {
                    node.exec_ok(command, SETUP_TIMEOUT * 4)
                        .await
                        .with_context(|| format!("on {}: {command}", node.node()))?;
                }
                node.upload_bytes(script.into_bytes(), commands::LAUNCH_SCRIPT, 0o755)
                    .await?;
                for (name, command) in &commands.hooks {
                    let hook =
                        format!("#!/bin/sh\n# The target's own {name} command.\n{command}\n");
                    node.upload_bytes(hook.into_bytes(), &commands::hook(name), 0o755)
                        .await?;
                }
                anyhow::Ok(())
            });
        }
        while let Some(done) = uploads.join_next().await {
            done.context("a node setup task failed")??;
        }
        Ok(())
    }
}
