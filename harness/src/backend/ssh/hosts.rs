//! The hosts of an SSH cluster, as users give them: `--hosts root@10.0.0.1,admin@10.0.0.2:2222`
//! with one `--ssh-key`, or a hosts file naming each host's login, key and peer address. Pure
//! parsing, tested without hosts.
//!
//! A host has two addresses that often differ: where the controller logs in (NAT, a management
//! network, Vagrant's forwarded ports on 127.0.0.1) and where the other nodes and the clients
//! reach it (`peer`). The SSH address is `[user@]host[:port]`; a peer address different from
//! the SSH host follows it after `=`: `vagrant@127.0.0.1:2222=192.168.56.11`.

use anyhow::{bail, Context};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// One host: how to log in and where its peers reach it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostSpec {
    /// Node name: n1, n2, ... in the order given.
    pub id: String,
    pub ssh_host: String,
    pub ssh_port: u16,
    pub user: String,
    /// The private key file (a path: the key itself is never copied anywhere).
    pub key: PathBuf,
    /// Where peers and clients reach the host (an IP address).
    pub peer: String,
}

/// Parses `--hosts`: comma-separated `[user@]host[:port][=peer]`, every host logging in with
/// `key`. The user defaults to root, the port to 22, the peer address to the SSH host.
pub fn parse_list(list: &str, key: &Path) -> anyhow::Result<Vec<HostSpec>> {
    let entries: Vec<&str> = list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if entries.is_empty() {
        bail!("--hosts is empty: give the hosts as user@host[:port], comma separated");
    }
    let hosts = entries
        .iter()
        .enumerate()
        .map(|(i, entry)| parse_one(i, entry, key))
        .collect::<anyhow::Result<Vec<_>>>()?;
    check_distinct(&hosts)?;
    Ok(hosts)
}

fn parse_one(i: usize, entry: &str, key: &Path) -> anyhow::Result<HostSpec> {
    let bad = |why: &str| {
        anyhow::anyhow!(
            "--hosts entry {} ({entry:?}): {why}; write [user@]host[:port][=peer-address], e.g. \
             admin@10.0.0.2:2222 or vagrant@127.0.0.1:2222=192.168.56.11",
            i + 1
        )
    };
    let (login, peer) = match entry.split_once('=') {
        Some((login, peer)) => (login, Some(peer.trim())),
        None => (entry, None),
    };
    let (user, address) = match login.split_once('@') {
        Some((user, address)) => (user, address),
        None => ("root", login),
    };
    if user.is_empty()
        || !user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(bad(
            "the user name is empty or has characters a login cannot",
        ));
    }
    let (host, port) = split_host_port(address).map_err(|why| bad(&why))?;
    let peer = match peer {
        Some("") => return Err(bad("the peer address after '=' is empty")),
        Some(peer) => peer.to_string(),
        None => host.clone(),
    };
    check_address(&peer).map_err(|why| bad(&why))?;
    Ok(HostSpec {
        id: format!("n{}", i + 1),
        ssh_host: host,
        ssh_port: port,
        user: user.to_string(),
        key: key.to_path_buf(),
        peer,
    })
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`.
fn split_host_port(address: &str) -> Result<(String, u16), String> {
    let (host, port) = if let Some(rest) = address.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or("an IPv6 address lacks its ']'")?;
        match after.strip_prefix(':') {
            Some(port) => (host, Some(port)),
            None if after.is_empty() => (host, None),
            None => return Err(format!("unexpected {after:?} after the address")),
        }
    } else {
        match address.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (address, None),
        }
    };
    if host.is_empty() {
        return Err("the host is empty".into());
    }
    let port = match port {
        None => 22,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("port {p:?} is not a number from 1 to 65535"))?,
    };
    Ok((host.to_string(), port))
}

/// Peers are given addresses, not names: iptables rules and the targets' peer lists need IPs.
fn check_address(peer: &str) -> Result<(), String> {
    peer.parse::<std::net::IpAddr>().map(drop).map_err(|_| {
        format!(
            "the peer address {peer:?} is not an IP address (partitions cut by address); give \
             it after '=': user@host=10.0.0.2"
        )
    })
}

fn check_distinct(hosts: &[HostSpec]) -> anyhow::Result<()> {
    for (i, a) in hosts.iter().enumerate() {
        for b in &hosts[i + 1..] {
            if a.peer == b.peer {
                bail!(
                    "{} and {} have the same peer address {}: every node needs its own (give it \
                     after '=': user@host:port=10.0.0.2)",
                    a.id,
                    b.id,
                    a.peer
                );
            }
        }
    }
    Ok(())
}

/// A hosts file:
///
/// ```toml
/// ssh-key = "~/.ssh/id_ed25519"      # the default for every host
/// [[host]]
/// ssh = "admin@10.0.0.2:2222"
/// peer = "192.168.1.2"               # optional: where peers reach it
/// key = "/keys/lab"                  # optional: this host's own key
/// ```
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct HostsFile {
    ssh_key: Option<PathBuf>,
    #[serde(default)]
    host: Vec<HostEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HostEntry {
    ssh: String,
    peer: Option<String>,
    key: Option<PathBuf>,
}

/// Reads a hosts file; `default_key` (from `--ssh-key`) applies where the file names none.
pub fn read_file(path: &Path, default_key: Option<&Path>) -> anyhow::Result<Vec<HostSpec>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the hosts file {}", path.display()))?;
    parse_file(&text, path.parent().unwrap_or(Path::new(".")), default_key)
        .with_context(|| format!("in the hosts file {}", path.display()))
}

fn parse_file(
    text: &str,
    base: &Path,
    default_key: Option<&Path>,
) -> anyhow::Result<Vec<HostSpec>> {
    let file: HostsFile = toml::from_str(text)?;
    if file.host.is_empty() {
        bail!("no [[host]] entries: add one per node with ssh = \"user@host[:port]\"");
    }
    let file_key = file.ssh_key.map(|k| resolve(base, &k));
    let mut hosts = Vec::new();
    for (i, entry) in file.host.iter().enumerate() {
        let key = match (&entry.key, &file_key, default_key) {
            (Some(key), _, _) => resolve(base, key),
            (None, Some(key), _) => key.clone(),
            (None, None, Some(key)) => key.to_path_buf(),
            (None, None, None) => bail!(
                "host {} ({}) has no key: set ssh-key at the top, key in the entry, or --ssh-key",
                i + 1,
                entry.ssh
            ),
        };
        let spec = match &entry.peer {
            Some(peer) => format!("{}={peer}", entry.ssh),
            None => entry.ssh.clone(),
        };
        hosts.push(parse_one(i, &spec, &key)?);
    }
    check_distinct(&hosts)?;
    Ok(hosts)
}

/// `~/x` is the home directory's; a relative path is the hosts file's folder's.
fn resolve(base: &Path, path: &Path) -> PathBuf {
    expand_home(path).unwrap_or_else(|| base.join(path))
}

/// `~/x` under `$HOME`; an absolute path as it is; `None` for a relative path.
pub fn expand_home(path: &Path) -> Option<PathBuf> {
    if let Ok(rest) = path.strip_prefix("~") {
        let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
        return Some(PathBuf::from(home).join(rest));
    }
    path.is_absolute().then(|| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> PathBuf {
        PathBuf::from("/k/id")
    }

    #[test]
    fn a_list_defaults_to_root_on_port_22() {
        let hosts = parse_list("10.0.0.1, admin@10.0.0.2:2222", &key()).unwrap();
        assert_eq!(
            hosts[0],
            HostSpec {
                id: "n1".into(),
                ssh_host: "10.0.0.1".into(),
                ssh_port: 22,
                user: "root".into(),
                key: key(),
                peer: "10.0.0.1".into(),
            }
        );
        assert_eq!((hosts[1].user.as_str(), hosts[1].ssh_port), ("admin", 2222));
        assert_eq!(hosts[1].id, "n2");
    }

    #[test]
    fn a_peer_address_may_differ_from_the_login() {
        let hosts = parse_list(
            "vagrant@127.0.0.1:2222=192.168.56.11,vagrant@127.0.0.1:2200=192.168.56.12",
            &key(),
        )
        .unwrap();
        assert_eq!(hosts[0].ssh_host, "127.0.0.1");
        assert_eq!(hosts[0].peer, "192.168.56.11");
        assert_eq!(hosts[1].ssh_port, 2200);
        let v6 = parse_list("[::1]:2022=fd00::2", &key()).unwrap();
        assert_eq!((v6[0].ssh_host.as_str(), v6[0].ssh_port), ("::1", 2022));
    }

    #[test]
    fn bad_entries_are_named() {
        for (list, says) in [
            ("", "empty"),
            ("a@b:0", "port"),
            ("a@b:x", "port"),
            ("@b", "user"),
            ("a@", "host is empty"),
            ("a@b=", "peer address after"),
            ("node1", "not an IP address"),
            ("10.0.0.1,10.0.0.1", "same peer address"),
            ("127.0.0.1:22,127.0.0.1:2222", "same peer address"),
        ] {
            let error = format!("{:#}", parse_list(list, &key()).unwrap_err());
            assert!(error.contains(says), "{list:?}: {error}");
        }
    }

    #[test]
    fn a_hosts_file_gives_keys_per_host_or_for_all() {
        let text = r#"
            ssh-key = "keys/all"
            [[host]]
            ssh = "admin@10.0.0.2:2222"
            peer = "192.168.1.2"
            [[host]]
            ssh = "10.0.0.3"
            key = "/own"
        "#;
        let hosts = parse_file(text, Path::new("/lab"), None).unwrap();
        assert_eq!(hosts[0].key, PathBuf::from("/lab/keys/all"));
        assert_eq!(hosts[0].peer, "192.168.1.2");
        assert_eq!(hosts[1].key, PathBuf::from("/own"));
        let no_key = "[[host]]\nssh = \"10.0.0.3\"\n";
        let error = format!(
            "{:#}",
            parse_file(no_key, Path::new("/"), None).unwrap_err()
        );
        assert!(error.contains("no key"), "{error}");
        let with_flag = parse_file(no_key, Path::new("/"), Some(Path::new("/flag"))).unwrap();
        assert_eq!(with_flag[0].key, PathBuf::from("/flag"));
        let typo = "[[host]]\nsssh = \"10.0.0.3\"\n";
        let error = format!("{:#}", parse_file(typo, Path::new("/"), None).unwrap_err());
        assert!(error.contains("sssh"), "{error}");
    }
}
