//! A set of link proxies running inside one node, steered by a file.
//!
//! On Docker/VM nodes whose kernel lacks tc netem, latency, jitter and loss fall back to
//! Fissure's own [`LinkProxy`]s, run on the node by this daemon. The controller reaches the node
//! only over SSH, so it steers the daemon by rewriting a small JSON faults file
//! ([`LinkFaults`]) that the daemon re-reads every poll. Partitions are not the daemon's job:
//! iptables does them.
//!
//! The controller should replace the faults file atomically (write a temporary file, then
//! rename it over): an empty file means "no faults", so a reader that catches a truncate-then-
//! write halfway would briefly restore the links.

use super::{Direction, LinkProxy};
use crate::control::LinkQuality;
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::time::MissedTickBehavior;

#[cfg(test)]
#[path = "daemon_tests.rs"]
mod tests;

/// How often [`run_from_files`] re-reads the faults file.
pub const DEFAULT_POLL: Duration = Duration::from_millis(100);

/// What proxies to run, written once when the node is set up.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LinksConfig {
    pub links: Vec<LinkSpec>,
}

/// One proxy: connections to `listen` are forwarded to `upstream`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LinkSpec {
    /// The key in the faults file: "client", or the peer's node id ("n2").
    pub name: String,
    /// Where to listen, e.g. "10.0.0.2:7001" or "127.0.0.1:7202".
    pub listen: String,
    /// Where to forward to.
    pub upstream: String,
}

/// The faults now in force, rewritten by the controller at any time: link name -> quality per
/// direction. A link not listed, or an empty/missing file, is perfect.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct LinkFaults(pub BTreeMap<String, DirectedQuality>);

/// One link's quality in each direction ([`Direction`]); a direction left out is perfect.
/// Unknown fields are refused, so a typo ("foward") is reported instead of silently healing.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DirectedQuality {
    #[serde(default)]
    pub forward: LinkQuality,
    #[serde(default)]
    pub backward: LinkQuality,
}

impl DirectedQuality {
    pub fn get(&self, direction: Direction) -> LinkQuality {
        match direction {
            Direction::Forward => self.forward,
            Direction::Backward => self.backward,
        }
    }
}

impl LinkFaults {
    /// Reads and checks a faults file; a missing or blank file means no faults.
    pub fn read(path: &Path) -> anyhow::Result<LinkFaults> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(LinkFaults::default()),
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot read link faults file {}", path.display()))
            }
        };
        LinkFaults::parse(&text).with_context(|| format!("link faults file {}", path.display()))
    }

    /// Parses and checks the faults file's text; blank text means no faults.
    pub fn parse(text: &str) -> anyhow::Result<LinkFaults> {
        if text.trim().is_empty() {
            return Ok(LinkFaults::default());
        }
        let faults: LinkFaults = serde_json::from_str(text).context(
            "not valid JSON of the form \
             {\"n2\": {\"forward\": {\"latency\": 200, \"jitter\": 0, \"loss\": 0.0}}}",
        )?;
        faults.check()?;
        Ok(faults)
    }

    /// The file's contents, for the controller to write.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("link faults always serialize")
    }

    /// The quality of link `name` (perfect if not listed).
    pub fn quality(&self, name: &str) -> DirectedQuality {
        self.0.get(name).copied().unwrap_or_default()
    }

    /// Refuses what [`LinkProxy::set_quality`] would, before anything is applied, so a bad file
    /// is never half applied.
    fn check(&self) -> anyhow::Result<()> {
        for (name, quality) in &self.0 {
            for direction in Direction::BOTH {
                let loss = quality.get(direction).loss;
                if !(0.0..=1.0).contains(&loss) {
                    anyhow::bail!(
                        "link {name} {direction:?}: loss must be a share between 0 and 1 \
                         (e.g. 0.1 for 10%), not {loss}"
                    );
                }
            }
        }
        Ok(())
    }
}

/// The running proxies of one node; dropping it closes every listener and connection.
pub struct LinkDaemon {
    links: Vec<(String, LinkProxy)>,
    faults_file: PathBuf,
    /// The last good faults, in force on every proxy.
    applied: LinkFaults,
    /// The last reading error reported, so a bad file is warned about once, not every poll.
    last_error: Option<String>,
}

impl LinkDaemon {
    /// Binds every listener (error names the link and address), applies the faults file once.
    pub async fn start(config: LinksConfig, faults_file: PathBuf) -> anyhow::Result<LinkDaemon> {
        let mut links: Vec<(String, LinkProxy)> = Vec::with_capacity(config.links.len());
        for spec in config.links {
            if links.iter().any(|(name, _)| *name == spec.name) {
                anyhow::bail!(
                    "link {} is listed twice in the links config; names must be unique",
                    spec.name
                );
            }
            let proxy = LinkProxy::start_on(&spec.listen, spec.upstream.clone())
                .await
                .with_context(|| {
                    format!(
                        "link {}: cannot listen on {} (to forward to {})",
                        spec.name, spec.listen, spec.upstream
                    )
                })?;
            links.push((spec.name, proxy));
        }
        let mut daemon = LinkDaemon {
            links,
            faults_file,
            applied: LinkFaults::default(),
            last_error: None,
        };
        daemon.reload();
        Ok(daemon)
    }

    /// Re-reads the faults file every `poll` and applies any change to every proxy, until
    /// `stop` completes. A bad file is logged and the last good faults stay; connections are
    /// never dropped.
    pub async fn run(
        mut self,
        poll: Duration,
        stop: impl Future<Output = ()>,
    ) -> anyhow::Result<()> {
        tokio::pin!(stop);
        // The file is tiny: re-reading and comparing the parsed value every poll is robust where
        // mtime granularity is coarse.
        let mut ticks = tokio::time::interval(poll.max(Duration::from_millis(1)));
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = &mut stop => return Ok(()),
                _ = ticks.tick() => self.reload(),
            }
        }
    }

    /// Each link's name and the address it listens on.
    pub fn addrs(&self) -> Vec<(String, SocketAddr)> {
        self.links
            .iter()
            .map(|(name, proxy)| (name.clone(), proxy.addr()))
            .collect()
    }

    fn reload(&mut self) {
        match LinkFaults::read(&self.faults_file) {
            Ok(faults) => {
                self.last_error = None;
                if faults != self.applied {
                    self.apply(faults);
                }
            }
            Err(e) => {
                let message = format!("{e:#}");
                if self.last_error.as_ref() != Some(&message) {
                    tracing::warn!("{message}; keeping the previous link faults");
                    self.last_error = Some(message);
                }
            }
        }
    }

    fn apply(&mut self, faults: LinkFaults) {
        for name in faults.0.keys() {
            if !self.links.iter().any(|(link, _)| link == name) {
                tracing::warn!("link faults name {name}, which this node has no proxy for");
            }
        }
        for (name, proxy) in &self.links {
            let quality = faults.quality(name);
            for direction in Direction::BOTH {
                // Checked when read, so this cannot fail; log rather than crash if it ever does.
                if let Err(e) = proxy.set_quality(direction, quality.get(direction)) {
                    tracing::warn!("link {name} {direction:?}: {e:#}");
                }
            }
        }
        tracing::info!(
            "link faults now in force: {}",
            serde_json::to_string(&faults).unwrap_or_default()
        );
        self.applied = faults;
    }
}

/// The whole process: reads the config JSON file, starts, runs until SIGTERM or SIGINT.
pub async fn run_from_files(config: &Path, faults: &Path) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let text = std::fs::read_to_string(config)
        .with_context(|| format!("cannot read links config {}", config.display()))?;
    let links: LinksConfig = serde_json::from_str(&text).with_context(|| {
        format!(
            "links config {} is not valid JSON of the form \
             {{\"links\": [{{\"name\": \"n2\", \"listen\": \"10.0.0.2:7002\", \"upstream\": \"10.0.0.3:7002\"}}]}}",
            config.display()
        )
    })?;
    // Installed before binding, so a stop request during start-up is not the default kill.
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let specs: BTreeMap<String, String> = links
        .links
        .iter()
        .map(|spec| (spec.name.clone(), spec.upstream.clone()))
        .collect();
    let daemon = LinkDaemon::start(links, faults.to_path_buf()).await?;
    for (name, addr) in daemon.addrs() {
        let upstream = specs.get(&name).map(String::as_str).unwrap_or("?");
        tracing::info!("link {name}: {addr} -> {upstream}");
    }
    tracing::info!("watching link faults in {}", faults.display());
    let stop = async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: stopping the link proxies"),
            _ = int.recv() => tracing::info!("SIGINT: stopping the link proxies"),
        }
    };
    daemon.run(DEFAULT_POLL, stop).await
}
