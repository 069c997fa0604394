//! The local cluster's network: one [`LinkProxy`] per ordered pair of nodes (the proxy node i
//! dials to reach node j) and one client proxy per node, and how grudges and degradations map
//! onto their directions.

use anyhow::bail;
use nuclei::control::{Grudge, LinkQuality, NodeId};
use nuclei::link::{Direction, LinkProxy};
use std::collections::BTreeMap;
use std::time::Duration;

pub struct Network {
    ids: Vec<NodeId>,
    /// `peers[(i, j)]`: the proxy node i uses to reach node j (forward: i → j).
    peers: BTreeMap<(usize, usize), LinkProxy>,
    /// `clients[i]`: where clients reach node i (forward: client → node).
    clients: Vec<LinkProxy>,
    /// The current degradation of each degraded node.
    degraded: BTreeMap<usize, LinkQuality>,
}

impl Network {
    /// Starts every proxy; `peer_addrs[j]` and `client_addrs[j]` are node j's own listeners.
    pub async fn start(
        ids: Vec<NodeId>,
        peer_addrs: &[String],
        client_addrs: &[String],
    ) -> anyhow::Result<Network> {
        let n = ids.len();
        let mut peers = BTreeMap::new();
        for from in 0..n {
            for (to, upstream) in peer_addrs.iter().enumerate() {
                if from != to {
                    peers.insert((from, to), start_proxy(upstream).await?);
                }
            }
        }
        let mut clients = Vec::new();
        for upstream in client_addrs {
            clients.push(start_proxy(upstream).await?);
        }
        Ok(Network {
            ids,
            peers,
            clients,
            degraded: BTreeMap::new(),
        })
    }

    /// The addresses node i must be given as `--peers`: id=proxy for every other node.
    pub fn peer_flag(&self, i: usize) -> String {
        (0..self.ids.len())
            .filter(|&j| j != i)
            .map(|j| format!("{}={}", self.ids[j], self.peers[&(i, j)].addr()))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The proxy node `from` reaches node `to` through.
    pub fn peer_addr(&self, from: usize, to: usize) -> String {
        self.peers[&(from, to)].addr().to_string()
    }

    pub fn client_addr(&self, i: usize) -> String {
        self.clients[i].addr().to_string()
    }

    /// Points every proxy in front of node i at its new listeners (after a restart on fresh
    /// ports).
    pub fn move_node(&self, i: usize, peer_addr: &str, client_addr: &str) {
        for ((_, to), proxy) in &self.peers {
            if *to == i {
                proxy.set_upstream(peer_addr);
            }
        }
        self.clients[i].set_upstream(client_addr);
    }

    fn index(&self, id: &str) -> anyhow::Result<usize> {
        match self.ids.iter().position(|n| n == id) {
            Some(i) => Ok(i),
            None => bail!(
                "no node {id:?} in this cluster; its nodes are {}",
                self.ids.join(", ")
            ),
        }
    }

    /// Replaces the grudge: packets from b dropped at a cut b → a on b's proxy to a (forward)
    /// and on a's proxy to b (backward: a's requests still reach b, b's answers are lost).
    pub fn partition(&self, grudge: &Grudge) -> anyhow::Result<()> {
        let mut cut = BTreeMap::new();
        for (receiver, senders) in &grudge.0 {
            let a = self.index(receiver)?;
            for sender in senders {
                let b = self.index(sender)?;
                if a != b {
                    cut.insert((b, a, Direction::Forward), ());
                    cut.insert((a, b, Direction::Backward), ());
                }
            }
        }
        for (&(from, to), proxy) in &self.peers {
            for direction in Direction::BOTH {
                let on = cut.contains_key(&(from, to, direction));
                proxy.set_direction_blackholed(direction, on);
            }
        }
        Ok(())
    }

    /// Degrades every link into and out of `nodes`, client links included, replacing their
    /// earlier degradation. A link between two degraded nodes suffers both (latencies add,
    /// losses compound), as netem on both nodes' interfaces would make it.
    pub fn degrade(&mut self, nodes: &[NodeId], quality: LinkQuality) -> anyhow::Result<()> {
        if !(0.0..=1.0).contains(&quality.loss) {
            bail!(
                "link loss must be a share between 0 and 1 (e.g. 0.1 for 10%), not {}",
                quality.loss
            );
        }
        let indexes = nodes
            .iter()
            .map(|id| self.index(id))
            .collect::<anyhow::Result<Vec<_>>>()?;
        for i in indexes {
            if quality.is_perfect() {
                self.degraded.remove(&i);
            } else {
                self.degraded.insert(i, quality);
            }
        }
        self.apply_qualities()
    }

    /// Every link back to full quality.
    pub fn restore(&mut self) -> anyhow::Result<()> {
        self.degraded.clear();
        self.apply_qualities()
    }

    fn apply_qualities(&self) -> anyhow::Result<()> {
        let of = |i: usize| self.degraded.get(&i).copied().unwrap_or_default();
        for (&(from, to), proxy) in &self.peers {
            let quality = combine(of(from), of(to));
            for direction in Direction::BOTH {
                proxy.set_quality(direction, quality)?;
            }
        }
        for (i, proxy) in self.clients.iter().enumerate() {
            for direction in Direction::BOTH {
                proxy.set_quality(direction, of(i))?;
            }
        }
        Ok(())
    }

    /// Heals partitions and restores every link.
    pub fn heal(&mut self) {
        self.degraded.clear();
        for proxy in self.peers.values().chain(&self.clients) {
            proxy.heal();
        }
    }

    /// Stops every proxy, closing every connection through them.
    pub fn shutdown(&mut self) {
        for proxy in self.peers.values_mut().chain(self.clients.iter_mut()) {
            proxy.shutdown();
        }
    }

    /// (from, to, forward cut, backward cut) for every peer proxy, for tests and status.
    pub fn cuts(&self) -> Vec<(NodeId, NodeId, bool, bool)> {
        self.peers
            .iter()
            .map(|(&(from, to), proxy)| {
                (
                    self.ids[from].clone(),
                    self.ids[to].clone(),
                    proxy.is_direction_blackholed(Direction::Forward),
                    proxy.is_direction_blackholed(Direction::Backward),
                )
            })
            .collect()
    }
}

async fn start_proxy(upstream: &str) -> anyhow::Result<LinkProxy> {
    LinkProxy::start(upstream)
        .await
        .map_err(|e| anyhow::anyhow!("cannot start a link proxy to {upstream} on loopback: {e}"))
}

/// Two degradations in a row: delays add, a packet survives only if it survives both.
fn combine(a: LinkQuality, b: LinkQuality) -> LinkQuality {
    let add = |x: Duration, y: Duration| x.saturating_add(y);
    LinkQuality {
        latency: add(a.latency, b.latency),
        jitter: add(a.jitter, b.jitter),
        loss: 1.0 - (1.0 - a.loss) * (1.0 - b.loss),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<NodeId> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    async fn network(n: usize) -> Network {
        let addrs: Vec<String> = (0..n).map(|i| format!("127.0.0.1:{}", 9 + i)).collect();
        Network::start(ids(n), &addrs, &addrs).await.unwrap()
    }

    #[tokio::test]
    async fn a_grudge_cuts_exactly_its_directions() {
        let net = network(3).await;
        // n1 drops what n2 sends.
        let mut grudge = Grudge::default();
        grudge.drop_one_way(&["n2".to_string()], &["n1".to_string()]);
        net.partition(&grudge).unwrap();
        for (from, to, forward, backward) in net.cuts() {
            let want = match (from.as_str(), to.as_str()) {
                ("n2", "n1") => (true, false), // n2's requests to n1
                ("n1", "n2") => (false, true), // n2's answers to n1
                _ => (false, false),
            };
            assert_eq!((forward, backward), want, "{from} -> {to}");
        }
        // A new grudge replaces the old one.
        let all: Vec<NodeId> = ids(3);
        net.partition(&Grudge::between(&all[..1], &all[1..]))
            .unwrap();
        for (from, to, forward, backward) in net.cuts() {
            let crosses = (from == "n1") != (to == "n1");
            assert_eq!((forward, backward), (crosses, crosses), "{from} -> {to}");
        }
        net.partition(&Grudge::default()).unwrap();
        assert!(net.cuts().iter().all(|c| !c.2 && !c.3));
        let mut unknown = Grudge::default();
        unknown.drop_one_way(&["n9".to_string()], &["n1".to_string()]);
        let error = net.partition(&unknown).unwrap_err().to_string();
        assert!(
            error.contains("n9") && error.contains("n1, n2, n3"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn degradation_reaches_every_link_of_the_nodes() {
        let mut net = network(3).await;
        let slow = LinkQuality {
            latency: Duration::from_millis(40),
            jitter: Duration::from_millis(5),
            loss: 0.5,
        };
        net.degrade(&["n1".to_string()], slow).unwrap();
        for (&(from, to), proxy) in &net.peers {
            let want = if from == 0 || to == 0 {
                slow
            } else {
                LinkQuality::default()
            };
            for direction in Direction::BOTH {
                assert_eq!(proxy.quality(direction), want, "{from}->{to}");
            }
        }
        assert_eq!(net.clients[0].quality(Direction::Backward), slow);
        assert!(net.clients[1].quality(Direction::Forward).is_perfect());
        net.degrade(&["n2".to_string()], slow).unwrap();
        let both = net.peers[&(0, 1)].quality(Direction::Forward);
        assert_eq!(both.latency, Duration::from_millis(80));
        assert!((both.loss - 0.75).abs() < 1e-9);
        net.restore().unwrap();
        for proxy in net.peers.values().chain(&net.clients) {
            assert!(proxy.quality(Direction::Forward).is_perfect());
            assert!(proxy.quality(Direction::Backward).is_perfect());
        }
        let bad = LinkQuality {
            loss: 2.0,
            ..LinkQuality::default()
        };
        assert!(net.degrade(&["n1".to_string()], bad).is_err());
        assert!(net.degrade(&["n7".to_string()], slow).is_err());
    }
}
