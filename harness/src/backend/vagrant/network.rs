//! The private network's subnet: a /24 that no Docker network and no host route uses, so the
//! nodes' addresses are theirs alone. Vagrant would otherwise quietly attach the docker
//! provider's containers to any existing network containing the address, and a VM network on a
//! routed subnet would shadow part of the host's network.
//!
//! Ranges per provider: docker 10.214.0.0/16 (the docker backend uses 10.213.0.0/16), libvirt
//! 10.215.0.0/16, VirtualBox 192.168.56.0/21 (the only host-only range VirtualBox 6.1.28 and
//! later accepts without `/etc/vbox/networks.conf`). A free /24 is drawn at random, so clusters
//! brought up at the same time rarely pick the same one; if they do, Docker refuses the second
//! network ("Pool overlaps"), and the error says to retry.

use super::shape::Provider;
use crate::backend::docker::engine;
use crate::backend::subnets::{host_routes, overlaps};
use rand::seq::SliceRandom;
use std::net::Ipv4Addr;

/// The /24 networks a provider's clusters may use.
pub fn candidates(provider: Provider) -> Vec<Ipv4Addr> {
    match provider {
        Provider::Docker => (0..=255u8).map(|c| Ipv4Addr::new(10, 214, c, 0)).collect(),
        Provider::Libvirt => (0..=255u8).map(|c| Ipv4Addr::new(10, 215, c, 0)).collect(),
        Provider::Virtualbox => (56..=63u8).map(|c| Ipv4Addr::new(192, 168, c, 0)).collect(),
    }
}

/// The candidates that overlap none of `used` (CIDRs).
pub fn free(candidates: &[Ipv4Addr], used: &[String]) -> Vec<Ipv4Addr> {
    candidates
        .iter()
        .copied()
        .filter(|net| !used.iter().any(|u| overlaps(u, *net)))
        .collect()
}

/// Chooses a free /24 for `provider`, as `a.b.c.0`.
pub async fn choose(provider: Provider) -> anyhow::Result<Ipv4Addr> {
    let mut used = host_routes().await;
    match engine::used_subnets().await {
        Ok(subnets) => used.extend(subnets),
        // The docker provider needs the daemon; VMs only need to avoid its networks if it runs.
        Err(e) if provider == Provider::Docker => return Err(e),
        Err(_) => {}
    }
    let free = free(&candidates(provider), &used);
    free.choose(&mut rand::thread_rng())
        .copied()
        .ok_or_else(|| {
            anyhow::anyhow!(
            "no free /24 for the {provider} cluster's private network: every candidate overlaps a \
             Docker network or a host route (`docker network ls`, `ip route`); remove unused ones \
             (`docker network prune`) or old clusters"
        )
        })
}

/// Node `i`'s address (1-based) in the /24 at `net`: .11, .12, ... (.1 is the gateway).
pub fn node_address(net: Ipv4Addr, i: usize) -> anyhow::Result<Ipv4Addr> {
    let host = 10 + i;
    if !(11..=250).contains(&host) {
        anyhow::bail!("node {i} does not fit a /24: at most 240 nodes");
    }
    let [a, b, c, _] = net.octets();
    Ok(Ipv4Addr::new(a, b, c, host as u8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn used_subnets_and_routes_are_avoided() {
        let used = [
            "10.214.0.0/17".to_string(),
            "10.214.200.0/24".to_string(),
            "172.17.0.0/16".to_string(),
        ];
        let free = free(&candidates(Provider::Docker), &used);
        assert_eq!(free.len(), 256 - 128 - 1);
        assert!(!free.contains(&Ipv4Addr::new(10, 214, 200, 0)));
        assert!(free.contains(&Ipv4Addr::new(10, 214, 201, 0)));
        assert!(super::free(&candidates(Provider::Libvirt), &["10.0.0.0/8".into()]).is_empty());
        assert_eq!(candidates(Provider::Virtualbox).len(), 8);
    }

    #[test]
    fn nodes_start_at_eleven() {
        let net = Ipv4Addr::new(10, 214, 3, 0);
        assert_eq!(node_address(net, 1).unwrap(), Ipv4Addr::new(10, 214, 3, 11));
        assert_eq!(
            node_address(net, 240).unwrap(),
            Ipv4Addr::new(10, 214, 3, 250)
        );
        assert!(node_address(net, 241).is_err());
    }
}
