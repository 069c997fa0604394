//! Every node of a cluster at once: setup steps run on all nodes in parallel, and a failure
//! reports every node that failed, not just the first.

use super::{ExecOutput, Remote};
use crate::control::NodeId;
use anyhow::{anyhow, bail};
use std::future::Future;
use std::time::Duration;

/// The nodes of a cluster, in order.
#[derive(Clone, Debug)]
pub struct Fleet {
    remotes: Vec<Remote>,
}

impl Fleet {
    pub fn new(remotes: Vec<Remote>) -> Fleet {
        Fleet { remotes }
    }

    pub fn get(&self, node: &str) -> anyhow::Result<&Remote> {
        self.remotes
            .iter()
            .find(|r| r.node() == node)
            .ok_or_else(|| {
                anyhow!(
                    "no node named {node}; the nodes are {}",
                    self.nodes().join(", ")
                )
            })
    }

    pub fn nodes(&self) -> Vec<NodeId> {
        self.remotes.iter().map(|r| r.node().to_string()).collect()
    }

    pub fn remotes(&self) -> &[Remote] {
        &self.remotes
    }

    /// Runs `command` on every node in parallel; one result per node, in node order.
    pub async fn exec_all(
        &self,
        command: &str,
        timeout: Duration,
    ) -> Vec<(NodeId, anyhow::Result<ExecOutput>)> {
        let command = command.to_string();
        self.on_all(move |remote| {
            let command = command.clone();
            async move { remote.exec(&command, timeout).await }
        })
        .await
    }

    /// Runs `command` on every node in parallel and returns each node's stdout; if any node
    /// fails or exits non-zero, one error lists them all.
    pub async fn exec_ok_all(
        &self,
        command: &str,
        timeout: Duration,
    ) -> anyhow::Result<Vec<(NodeId, String)>> {
        let cmd = command.to_string();
        let results = self
            .on_all(move |remote| {
                let cmd = cmd.clone();
                async move { remote.exec_ok(&cmd, timeout).await }
            })
            .await;
        collect(results, &format!("`{command}`"))
    }

    /// Waits for every node to accept SSH (see [`Remote::wait_ready`]), all at once.
    pub async fn wait_ready(&self, limit: Duration) -> anyhow::Result<()> {
        let results = self
            .on_all(move |remote| async move { remote.wait_ready(limit).await })
            .await;
        collect(results, "waiting for SSH").map(|_| ())
    }

    async fn on_all<T, F, Fut>(&self, f: F) -> Vec<(NodeId, anyhow::Result<T>)>
    where
        T: Send + 'static,
        F: Fn(Remote) -> Fut,
        Fut: Future<Output = anyhow::Result<T>> + Send + 'static,
    {
        let tasks: Vec<_> = self
            .remotes
            .iter()
            .map(|r| (r.node().to_string(), tokio::spawn(f(r.clone()))))
            .collect();
        let mut results = Vec::with_capacity(tasks.len());
        for (node, task) in tasks {
            let result = task
                .await
                .unwrap_or_else(|e| Err(anyhow!("task for {node} failed: {e}")));
            results.push((node, result));
        }
        results
    }
}

/// All values, or one error naming every node that failed.
fn collect<T>(
    results: Vec<(NodeId, anyhow::Result<T>)>,
    what: &str,
) -> anyhow::Result<Vec<(NodeId, T)>> {
    let total = results.len();
    let mut values = Vec::with_capacity(total);
    let mut failures = Vec::new();
    for (node, result) in results {
        match result {
            Ok(value) => values.push((node, value)),
            Err(e) => failures.push(format!("  {node}: {e:#}")),
        }
    }
    if !failures.is_empty() {
        bail!(
            "{what} failed on {} of {total} nodes:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collect_lists_every_failure() {
        let results = vec![
            ("n1".to_string(), Ok(1)),
            ("n2".to_string(), Err(anyhow!("boom"))),
            ("n3".to_string(), Err(anyhow!("bang"))),
        ];
        let msg = format!("{:#}", collect(results, "`true`").unwrap_err());
        assert!(msg.contains("failed on 2 of 3 nodes"), "{msg}");
        assert!(
            msg.contains("n2: boom") && msg.contains("n3: bang"),
            "{msg}"
        );
        let ok = collect(vec![("n1".to_string(), Ok(1))], "x").unwrap();
        assert_eq!(ok, vec![("n1".to_string(), 1)]);
    }
}
