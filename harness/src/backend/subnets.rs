//! Which private /24 networks are free on this machine: clear of Docker's networks and of the
//! host's routes, so that the docker backend's and Vagrant's node addresses are theirs alone.

use std::net::Ipv4Addr;

/// The IPv4 destinations of the host's routes in every table (`a.b.c.d/n`); none if `ip`
/// cannot tell.
pub async fn host_routes() -> Vec<String> {
    let out = tokio::process::Command::new("ip")
        .args(["-4", "route", "show", "table", "all"])
        .output()
        .await;
    let Ok(out) = out else { return Vec::new() };
    routes(&String::from_utf8_lossy(&out.stdout))
}

/// The destinations in `ip -4 route show` output, skipping `default`, `local`, `broadcast`.
fn routes(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|d| d.contains('/'))
        .map(str::to_string)
        .collect()
}

/// Whether the CIDR `cidr` overlaps the /24 at `net`.
pub fn overlaps(cidr: &str, net: Ipv4Addr) -> bool {
    let Some((addr, len)) = cidr.split_once('/') else {
        return false;
    };
    let (Ok(addr), Ok(len)) = (addr.parse::<Ipv4Addr>(), len.parse::<u32>()) else {
        return false;
    };
    let len = len.min(24);
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    (u32::from(addr) & mask) == (u32::from(net) & mask)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_overlap_by_prefix() {
        let net = Ipv4Addr::new(10, 214, 7, 0);
        assert!(overlaps("10.214.7.0/24", net));
        assert!(overlaps("10.0.0.0/8", net));
        assert!(overlaps("10.214.7.128/25", net));
        assert!(!overlaps("10.214.8.0/24", net));
        assert!(!overlaps("172.17.0.0/16", net));
        assert!(!overlaps("garbage", net));
    }

    #[test]
    fn route_destinations_are_read() {
        let text = "default via 10.0.2.2 dev eth0\n\
                    10.0.2.0/24 dev eth0 proto kernel scope link src 10.0.2.15\n\
                    172.17.0.0/16 dev docker0 proto kernel scope link src 172.17.0.1 linkdown\n\
                    local 127.0.0.0/8 dev lo table local proto kernel scope host src 127.0.0.1\n";
        assert_eq!(routes(text), ["10.0.2.0/24", "172.17.0.0/16"]);
    }
}
