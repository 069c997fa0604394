//! Pure parsers of what Vagrant prints: `vagrant ssh-config` (how to log in to each machine)
//! and `vagrant status --machine-readable` (each machine's state). Tested on real outputs.

use anyhow::bail;
use std::path::PathBuf;

/// One `Host` block of `vagrant ssh-config`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SshEntry {
    /// The machine name (`Host n1`).
    pub host: String,
    pub hostname: String,
    pub user: String,
    pub port: u16,
    /// Every `IdentityFile`, in order (Vagrant lists several when `private_key_path` does).
    pub identity_files: Vec<PathBuf>,
}

/// Parses `vagrant ssh-config` output: one `Host` block per machine, keywords in any case,
/// values possibly double-quoted (Vagrant quotes paths with spaces). Lines it does not need
/// (`StrictHostKeyChecking`, `LogLevel`, ...) are skipped.
pub fn ssh_config(text: &str) -> anyhow::Result<Vec<SshEntry>> {
    let mut entries: Vec<SshEntry> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (keyword, value) = match line.split_once(|c: char| c.is_whitespace() || c == '=') {
            Some((k, v)) => (
                k,
                unquote(v.trim_start_matches(|c: char| c.is_whitespace() || c == '=')),
            ),
            None => (line, String::new()),
        };
        let keyword = keyword.to_ascii_lowercase();
        if keyword == "host" {
            entries.push(SshEntry {
                host: value,
                port: 22,
                ..SshEntry::default()
            });
            continue;
        }
        let Some(entry) = entries.last_mut() else {
            bail!(
                "vagrant ssh-config, line {}: {line:?} comes before any `Host` line",
                i + 1
            );
        };
        match keyword.as_str() {
            "hostname" => entry.hostname = value,
            "user" => entry.user = value,
            "port" => {
                entry.port = value.parse().map_err(|_| {
                    anyhow::anyhow!(
                        "vagrant ssh-config, line {}: port {value:?} of {} is not a number",
                        i + 1,
                        entry.host
                    )
                })?
            }
            "identityfile" => entry.identity_files.push(PathBuf::from(value)),
            _ => {}
        }
    }
    for entry in &entries {
        if entry.hostname.is_empty() || entry.user.is_empty() || entry.identity_files.is_empty() {
            bail!(
                "vagrant ssh-config gave machine {} without HostName, User or IdentityFile; \
                 Fissure logs in with a key only (see `vagrant ssh-config` in the cluster's folder)",
                entry.host
            );
        }
    }
    Ok(entries)
}

/// `"a b"` → `a b`; anything else as it is.
fn unquote(value: &str) -> String {
    let value = value.trim();
    match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(inner) => inner.replace("\\\"", "\""),
        None => value.to_string(),
    }
}

/// One machine as `vagrant status --machine-readable` tells it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MachineStatus {
    /// The machine name (n1, ...).
    pub id: String,
    /// The provider that backs it (docker, libvirt, ...), as far as Vagrant says.
    pub provider: String,
    /// Vagrant's state: `running`, `not_created`, `stopped`, `shutoff`, `poweroff`, ...
    pub state: String,
}

impl MachineStatus {
    pub fn running(&self) -> bool {
        self.state == "running"
    }
}

/// Parses `vagrant status --machine-readable`: lines `timestamp,target,type,data...`, commas
/// in data written `%!(VAGRANT_COMMA)`. Machines come in the order Vagrant first names them.
pub fn status(text: &str) -> Vec<MachineStatus> {
    let mut machines: Vec<MachineStatus> = Vec::new();
    for line in text.lines() {
        let mut fields = line.splitn(4, ',');
        let (Some(_time), Some(target), Some(kind), Some(data)) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if target.is_empty() {
            continue;
        }
        let data = data.replace("%!(VAGRANT_COMMA)", ",");
        let machine = match machines.iter_mut().position(|m| m.id == target) {
            Some(i) => &mut machines[i],
            None => {
                machines.push(MachineStatus {
                    id: target.to_string(),
                    ..MachineStatus::default()
                });
                machines.last_mut().expect("just pushed")
            }
        };
        match kind {
            "state" => machine.state = data,
            "provider-name" => machine.provider = data,
            "metadata" => {
                if let Some(provider) = data.strip_prefix("provider,") {
                    machine.provider = provider.to_string();
                }
            }
            _ => {}
        }
    }
    machines
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As Vagrant 2.3.4's docker provider prints it for three machines.
    const DOCKER: &str = "Host n1
  HostName 127.0.0.1
  User root
  Port 2200
  UserKnownHostsFile /dev/null
  StrictHostKeyChecking no
  PasswordAuthentication no
  IdentityFile /tmp/vt1/id_ed25519
  IdentitiesOnly yes
  LogLevel FATAL

Host n2
  HostName 127.0.0.1
  User root
  Port 2201
  UserKnownHostsFile /dev/null
  StrictHostKeyChecking no
  PasswordAuthentication no
  IdentityFile /tmp/vt1/id_ed25519
  IdentitiesOnly yes
  LogLevel FATAL

Host n3
  HostName 127.0.0.1
  User root
  Port 2222
  UserKnownHostsFile /dev/null
  StrictHostKeyChecking no
  PasswordAuthentication no
  IdentityFile /tmp/vt1/id_ed25519
  IdentitiesOnly yes
  LogLevel FATAL
";

    /// A libvirt VM: Vagrant's own login, a quoted key path with a space, extra options.
    const LIBVIRT: &str = "Host n1
  HostName 192.168.121.37
  User vagrant
  Port 22
  UserKnownHostsFile /dev/null
  StrictHostKeyChecking no
  PasswordAuthentication no
  IdentityFile \"/home/me/my clusters/c1/.vagrant/machines/n1/libvirt/private_key\"
  IdentityFile /home/me/.vagrant.d/insecure_private_key
  IdentitiesOnly yes
  LogLevel FATAL
  PubkeyAcceptedKeyTypes +ssh-rsa
  HostKeyAlgorithms +ssh-rsa

host n2
  hostname=192.168.121.38
  user vagrant
  port 22
  identityfile /k2
";

    #[test]
    fn docker_machines_log_in_on_forwarded_ports() {
        let entries = ssh_config(DOCKER).unwrap();
        assert_eq!(entries.len(), 3);
        assert_eq!(
            entries[0],
            SshEntry {
                host: "n1".into(),
                hostname: "127.0.0.1".into(),
                user: "root".into(),
                port: 2200,
                identity_files: vec!["/tmp/vt1/id_ed25519".into()],
            }
        );
        let ports: Vec<u16> = entries.iter().map(|e| e.port).collect();
        assert_eq!(ports, [2200, 2201, 2222]);
    }

    #[test]
    fn quoted_paths_lowercase_keywords_and_several_keys() {
        let entries = ssh_config(LIBVIRT).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(
            entries[0].identity_files,
            [
                PathBuf::from("/home/me/my clusters/c1/.vagrant/machines/n1/libvirt/private_key"),
                PathBuf::from("/home/me/.vagrant.d/insecure_private_key"),
            ]
        );
        assert_eq!((entries[0].user.as_str(), entries[0].port), ("vagrant", 22));
        assert_eq!(entries[1].hostname, "192.168.121.38");
        assert_eq!(entries[1].identity_files, [PathBuf::from("/k2")]);
    }

    #[test]
    fn broken_ssh_config_is_named() {
        for (text, says) in [
            ("  HostName x\n", "before any `Host`"),
            ("Host n1\n HostName x\n User u\n Port abc\n", "not a number"),
            (
                "Host n1\n HostName x\n User u\n",
                "without HostName, User or IdentityFile",
            ),
        ] {
            let error = format!("{:#}", ssh_config(text).unwrap_err());
            assert!(error.contains(says), "{text:?}: {error}");
        }
        assert!(ssh_config("").unwrap().is_empty());
    }

    #[test]
    fn status_lines_give_each_machines_state() {
        let text = "1796414517,n1,metadata,provider,docker
1796414517,n2,metadata,provider,docker
1796414519,n1,provider-name,docker
1796414519,n1,state,running
1796414519,n1,state-human-short,running
1796414519,n1,state-human-long,The container is created and running. You can stop it using\\n`vagrant halt`%!(VAGRANT_COMMA) see logs
1796414519,n2,provider-name,docker
1796414519,n2,state,not_created
1796414519,,ui,info,Current machine states:\\n\\nn1     running (docker)
";
        let machines = status(text);
        assert_eq!(
            machines,
            [
                MachineStatus {
                    id: "n1".into(),
                    provider: "docker".into(),
                    state: "running".into(),
                },
                MachineStatus {
                    id: "n2".into(),
                    provider: "docker".into(),
                    state: "not_created".into(),
                },
            ]
        );
        assert!(machines[0].running() && !machines[1].running());
        assert!(status("garbage\n\n1,2\n").is_empty());
    }
}
