//! The cluster's shape file, `fissure-cluster.json`, which the Vagrantfile reads, and the
//! folder it lives in.
//!
//! The shape is a file beside the Vagrantfile rather than environment variables so that a plain
//! `vagrant status` or `vagrant destroy -f` typed later in that folder sees exactly the machines
//! Fissure made. The Vagrantfile is compiled into the binary, so an installed `fissure` works
//! without the repository; a folder that already has one keeps it (users may edit theirs).

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// The shape file's name, beside the Vagrantfile.
pub const SHAPE_FILE: &str = "fissure-cluster.json";
/// The shape format this build writes and the embedded Vagrantfile reads.
pub const SHAPE_VERSION: u32 = 1;
/// The Vagrantfile written into folders that have none.
pub const VAGRANTFILE: &str = include_str!("../../../../vagrant/Vagrantfile");
/// The box VM providers use when the user names none (and `$FISSURE_VAGRANT_BOX` is unset).
pub const DEFAULT_BOX: &str = "debian/bookworm64";
/// The environment variable naming the box VM clusters use by default, e.g. `fissure/bookworm`
/// built by `vagrant/make-libvirt-box.sh` where Vagrant Cloud is out of reach.
pub const BOX_ENV: &str = "FISSURE_VAGRANT_BOX";
/// Memory per VM by default: Debian and a node run in far less; five VMs fit a small machine.
pub const DEFAULT_MEMORY_MB: u32 = 768;

/// The box of a VM cluster when the request names none: `$FISSURE_VAGRANT_BOX`, else
/// [`DEFAULT_BOX`].
pub fn default_box() -> String {
    std::env::var(BOX_ENV)
        .ok()
        .map(|b| b.trim().to_string())
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| DEFAULT_BOX.to_string())
}
/// The key pair Fissure makes in the folder (the `.pub` beside it).
pub const KEY_FILE: &str = "id_ed25519";

/// Where Vagrant runs the nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// Containers from Fissure's node image: seconds to start, no VM needed.
    Docker,
    /// KVM VMs through the vagrant-libvirt plugin.
    Libvirt,
    Virtualbox,
}

impl Provider {
    pub const ALL: [Provider; 3] = [Provider::Docker, Provider::Libvirt, Provider::Virtualbox];

    /// The name `vagrant up --provider` takes.
    pub fn name(self) -> &'static str {
        match self {
            Provider::Docker => "docker",
            Provider::Libvirt => "libvirt",
            Provider::Virtualbox => "virtualbox",
        }
    }

    /// Whether Vagrant may bring its machines up side by side (VirtualBox cannot).
    pub fn parallel(self) -> bool {
        self != Provider::Virtualbox
    }
}

impl std::fmt::Display for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Provider {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Provider> {
        Provider::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "unknown Vagrant provider {s:?}: use docker (containers, the fastest), \
                     libvirt or virtualbox"
                )
            })
    }
}

/// One node: its machine name and its address on the private network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShapeNode {
    pub id: String,
    pub ip: String,
}

/// `fissure-cluster.json`: everything the Vagrantfile needs (see `vagrant/Vagrantfile`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shape {
    pub version: u32,
    /// The cluster's name: prefixes container and VM names, labels docker objects.
    pub name: String,
    pub provider: Provider,
    /// The docker provider's image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The libvirt or virtualbox box.
    #[serde(rename = "box", default, skip_serializing_if = "Option::is_none")]
    pub vm_box: Option<String>,
    /// The private network, `a.b.c.0/24`.
    pub subnet: String,
    pub nodes: Vec<ShapeNode>,
    /// The key Vagrant logs in with on docker nodes; authorized for root on every node.
    pub private_key: PathBuf,
    /// The public half, one line.
    pub public_key: String,
    pub cpus: u32,
    /// Megabytes per VM.
    pub memory: u32,
}

/// What a caller asks for; [`super::prepare`] turns it into a [`Shape`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub name: String,
    pub provider: Provider,
    pub nodes: usize,
    /// The box (libvirt, virtualbox; default [`default_box`]) or image (docker; default the
    /// node image, built if missing).
    pub machine: Option<String>,
    pub cpus: u32,
    pub memory_mb: u32,
}

impl Request {
    /// `nodes` machines of one CPU and [`DEFAULT_MEMORY_MB`] each, from the provider's default
    /// box ([`default_box`]) or image.
    pub fn new(name: &str, provider: Provider, nodes: usize) -> Request {
        Request {
            name: name.to_string(),
            provider,
            nodes,
            machine: match provider {
                Provider::Docker => None,
                _ => Some(default_box()),
            },
            cpus: 1,
            memory_mb: DEFAULT_MEMORY_MB,
        }
    }
}

impl Shape {
    /// Reads the shape file in `dir`; `None` if there is none.
    pub fn read(dir: &Path) -> anyhow::Result<Option<Shape>> {
        let path = dir.join(SHAPE_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let shape: Shape = serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is damaged: fix it, or destroy the machines by hand (`vagrant global-status`, \
                 then `docker rm -f` / `virsh destroy`) and remove the folder",
                path.display()
            )
        })?;
        if shape.version != SHAPE_VERSION {
            bail!(
                "{} has shape version {}, this fissure writes {SHAPE_VERSION}: use the fissure \
                 that made the cluster to take it down",
                path.display(),
                shape.version
            );
        }
        Ok(Some(shape))
    }

    /// Writes the shape file atomically, so the Vagrantfile never reads half of one.
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        let path = dir.join(SHAPE_FILE);
        let partial = dir.join(format!(".{SHAPE_FILE}.partial"));
        std::fs::write(&partial, serde_json::to_string_pretty(self)? + "\n")
            .and_then(|()| std::fs::rename(&partial, &path))
            .with_context(|| format!("cannot write {}", path.display()))
    }

    /// The nodes' private addresses by machine name.
    pub fn peer(&self, id: &str) -> Option<&str> {
        self.nodes
            .iter()
            .find(|n| n.id == id)
            .map(|n| n.ip.as_str())
    }
}

/// Makes the cluster folder, readable by its owner only (it holds the private key).
pub fn create_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create the Vagrant folder {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot restrict {} to its owner", dir.display()))
}

/// Writes the embedded Vagrantfile into `dir` unless it has one. True if written.
pub fn install_vagrantfile(dir: &Path) -> anyhow::Result<bool> {
    let path = dir.join("Vagrantfile");
    if path.exists() {
        return Ok(false);
    }
    std::fs::write(&path, VAGRANTFILE)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(true)
}

/// The folder's key pair, made with ssh-keygen on first use: (private key path, public key).
/// Passphrase-less ed25519, like the docker backend's: it opens only this cluster's nodes.
pub async fn ensure_key(dir: &Path, name: &str) -> anyhow::Result<(PathBuf, String)> {
    let key = dir.join(KEY_FILE);
    let public = dir.join(format!("{KEY_FILE}.pub"));
    if !key.is_file() || !public.is_file() {
        let _ = std::fs::remove_file(&key);
        let _ = std::fs::remove_file(&public);
        let output = tokio::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", ""])
            .arg("-C")
            .arg(format!("fissure-vagrant-{name}"))
            .arg("-f")
            .arg(&key)
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot run ssh-keygen to make the cluster's key ({e}): install OpenSSH's \
                     client (Debian: apt-get install openssh-client)"
                )
            })?;
        if !output.status.success() {
            bail!(
                "ssh-keygen failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
    }
    let text = std::fs::read_to_string(&public)
        .with_context(|| format!("cannot read {}", public.display()))?;
    let key = std::path::absolute(&key)
        .with_context(|| format!("cannot make {} absolute", key.display()))?;
    Ok((key, text.trim().to_string()))
}

/// Whether Vagrant has made any machine in `dir` (its `.vagrant/machines/<m>/<provider>/id`).
pub fn machines_created(dir: &Path) -> bool {
    let Ok(machines) = std::fs::read_dir(dir.join(".vagrant/machines")) else {
        return false;
    };
    machines.filter_map(Result::ok).any(|machine| {
        std::fs::read_dir(machine.path())
            .map(|providers| {
                providers
                    .filter_map(Result::ok)
                    .any(|p| p.path().join("id").is_file())
            })
            .unwrap_or(false)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape() -> Shape {
        Shape {
            version: SHAPE_VERSION,
            name: "c1".into(),
            provider: Provider::Docker,
            image: Some("fissure-node:abc".into()),
            vm_box: None,
            subnet: "10.214.3.0/24".into(),
            nodes: vec![ShapeNode {
                id: "n1".into(),
                ip: "10.214.3.11".into(),
            }],
            private_key: "/k/id_ed25519".into(),
            public_key: "ssh-ed25519 AAAA x".into(),
            cpus: 1,
            memory: 1024,
        }
    }

    #[test]
    fn the_shape_round_trips_with_the_names_the_vagrantfile_reads() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Shape::read(dir.path()).unwrap(), None);
        shape().write(dir.path()).unwrap();
        assert_eq!(Shape::read(dir.path()).unwrap(), Some(shape()));
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join(SHAPE_FILE)).unwrap())
                .unwrap();
        for field in [
            "version",
            "name",
            "provider",
            "image",
            "nodes",
            "private_key",
            "public_key",
            "cpus",
            "memory",
        ] {
            assert!(json.get(field).is_some(), "{field} missing from {json}");
            assert!(VAGRANTFILE.contains(&format!("\"{field}\"")), "{field}");
        }
        assert_eq!(json["provider"], "docker");
        assert!(json.get("box").is_none());
        assert!(VAGRANTFILE.contains("shape[\"box\"]"));
        assert!(VAGRANTFILE.contains(&format!("SHAPE_VERSION = {SHAPE_VERSION}")));
        assert!(VAGRANTFILE.contains(SHAPE_FILE));
    }

    #[test]
    fn a_damaged_or_newer_shape_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(SHAPE_FILE), "{").unwrap();
        let error = format!("{:#}", Shape::read(dir.path()).unwrap_err());
        assert!(error.contains("damaged"), "{error}");
        let mut newer = shape();
        newer.version = 99;
        newer.write(dir.path()).unwrap();
        let error = format!("{:#}", Shape::read(dir.path()).unwrap_err());
        assert!(error.contains("version 99"), "{error}");
    }

    #[test]
    fn providers_parse_by_name() {
        for p in Provider::ALL {
            assert_eq!(p.name().parse::<Provider>().unwrap(), p);
        }
        let error = "vmware".parse::<Provider>().unwrap_err().to_string();
        assert!(error.contains("docker"), "{error}");
        assert!(!Provider::Virtualbox.parallel() && Provider::Docker.parallel());
    }

    #[test]
    fn a_users_vagrantfile_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        assert!(install_vagrantfile(dir.path()).unwrap());
        std::fs::write(dir.path().join("Vagrantfile"), "# mine").unwrap();
        assert!(!install_vagrantfile(dir.path()).unwrap());
        assert_eq!(
            std::fs::read_to_string(dir.path().join("Vagrantfile")).unwrap(),
            "# mine"
        );
        assert!(!machines_created(dir.path()));
        let id = dir.path().join(".vagrant/machines/n1/docker");
        std::fs::create_dir_all(&id).unwrap();
        assert!(!machines_created(dir.path()));
        std::fs::write(id.join("id"), "abc").unwrap();
        assert!(machines_created(dir.path()));
    }
}
