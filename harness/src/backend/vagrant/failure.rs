//! What went wrong when `vagrant` failed, told from its own output, with the fix.
//!
//! Vagrant's messages are long, wrapped at 80 columns and the same for many causes; a person
//! reading "A Docker command executed by Vagrant didn't complete successfully!" still has to
//! find the line that matters. The classifier matches on whitespace-collapsed text, so a phrase
//! Vagrant wrapped across lines still matches. Pure, and tested on real outputs.

use super::shape::{default_box, Provider};

/// The causes Fissure knows how to fix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The `vagrant` program is not on PATH.
    NotInstalled,
    /// The Vagrantfile rejected `fissure-cluster.json`.
    ShapeFile,
    /// Vagrant knows no such provider: its plugin is missing.
    ProviderMissing,
    /// The VirtualBox provider cannot find VirtualBox.
    VirtualBoxMissing,
    /// vagrant-libvirt cannot reach libvirtd.
    LibvirtdDown,
    /// The box is neither installed nor downloadable.
    BoxMissing,
    /// The docker provider cannot reach the Docker daemon.
    DockerDaemon,
    /// The node image is not in the local Docker (and nothing can be pulled).
    ImageMissing,
    /// A container of the same name exists, from another folder or by hand.
    ContainerNameTaken,
    /// Another network took the private subnet between Fissure's choice and Vagrant's use.
    SubnetTaken,
    /// The machines are not running, so there is no SSH to describe.
    NotRunning,
    /// Another vagrant process holds the machine.
    Locked,
    /// Something else: Vagrant's own words have to do.
    Unknown,
}

/// Phrases in Vagrant's output, in the order they are tried (the more specific first).
const PATTERNS: &[(&str, Failure)] = &[
    ("Fissure cluster shape", Failure::ShapeFile),
    (
        "could not be found, but was requested to back the machine",
        Failure::ProviderMissing,
    ),
    (
        "Vagrant could not detect VirtualBox",
        Failure::VirtualBoxMissing,
    ),
    ("Error while connecting to Libvirt", Failure::LibvirtdDown),
    ("libvirt-sock", Failure::LibvirtdDown),
    ("virConnectOpen", Failure::LibvirtdDown),
    ("Cannot connect to the Docker daemon", Failure::DockerDaemon),
    ("Is the docker daemon running", Failure::DockerDaemon),
    ("Unable to find image", Failure::ImageMissing),
    ("pull access denied", Failure::ImageMissing),
    ("No such image", Failure::ImageMissing),
    (
        "is already in use by container",
        Failure::ContainerNameTaken,
    ),
    ("Pool overlaps with other one", Failure::SubnetTaken),
    (
        "could not be found or could not be accessed in the remote catalog",
        Failure::BoxMissing,
    ),
    ("box could not be found", Failure::BoxMissing),
    ("not yet ready for SSH", Failure::NotRunning),
    ("machine is not created", Failure::NotRunning),
    ("it is locked", Failure::Locked),
];

/// Which known cause `output` (stdout and stderr of a failed `vagrant` run) shows.
pub fn classify(output: &str) -> Failure {
    let text = output.split_whitespace().collect::<Vec<_>>().join(" ");
    PATTERNS
        .iter()
        .find(|(phrase, _)| text.contains(phrase))
        .map_or(Failure::Unknown, |&(_, failure)| failure)
}

impl Failure {
    /// What is wrong and what to do, for a cluster on `provider` from `machine` (box or image).
    pub fn fix(self, provider: Provider, machine: Option<&str>) -> Option<String> {
        let fix = match self {
            Failure::NotInstalled => {
                "vagrant is not installed: run `apt-get install -y vagrant` (Debian), or get it \
                 from https://developer.hashicorp.com/vagrant/install"
                    .to_string()
            }
            Failure::ShapeFile => {
                "the Vagrantfile could not read the cluster's shape file (above); \
                bring the cluster up with fissure again, which rewrites it"
                    .to_string()
            }
            Failure::ProviderMissing => match provider {
                Provider::Libvirt => "the libvirt provider is missing: run `apt-get install -y \
                    vagrant-libvirt` (Debian) or `vagrant plugin install vagrant-libvirt`"
                    .to_string(),
                Provider::Virtualbox => {
                    "the virtualbox provider is missing: install VirtualBox (virtualbox.org; it is \
                     not in Debian main), or use the docker provider"
                        .to_string()
                }
                Provider::Docker => "Vagrant lacks its docker provider (built in since 1.6): \
                    upgrade vagrant"
                    .to_string(),
            },
            Failure::VirtualBoxMissing => "VirtualBox is not installed (no VBoxManage on PATH): \
                install it from virtualbox.org, or use the libvirt or docker provider"
                .to_string(),
            Failure::LibvirtdDown => "libvirtd is not running or not reachable at qemu:///system: \
                run `apt-get install -y libvirt-daemon-system && systemctl start libvirtd`, and \
                run as root or a member of the libvirt group (check with `virsh -c \
                qemu:///system version`)"
                .to_string(),
            Failure::BoxMissing => {
                let name = machine.map_or_else(default_box, str::to_string);
                format!(
                    "the box {name} for {provider} is not installed, and Vagrant cannot download \
                     it from here: run `vagrant box add {name} --provider {provider}` where the \
                     internet is reachable, or build one locally with no download \
                     (docs/vagrant.md, \"A box without a download\") and pass its name"
                )
            }
            Failure::DockerDaemon => "the Docker daemon is not running or not reachable: start it \
                (systemctl start docker), check DOCKER_HOST, or run as root or a member of the \
                docker group"
                .to_string(),
            Failure::ImageMissing => format!(
                "the image {} is not in the local Docker and cannot be pulled: build it with \
                 `fissure image ensure` (or give no image, and Fissure builds it)",
                machine.unwrap_or("fissure-node:<hash>")
            ),
            Failure::ContainerNameTaken => "a container with a node's name exists already (from \
                another folder of the same cluster name, or left behind): remove it with `docker \
                rm -f NAME` after checking it is not in use, or choose another cluster name"
                .to_string(),
            Failure::SubnetTaken => "another network took the cluster's subnet meanwhile: bring \
                it up again (Fissure chooses a free subnet each time the folder has no machines), \
                or remove the stale network (`docker network ls`)"
                .to_string(),
            Failure::NotRunning => "the cluster's machines are not running: bring them up again \
                (or `vagrant up` in the cluster's folder)"
                .to_string(),
            Failure::Locked => "another vagrant command is working on these machines: wait for it \
                to finish (`ps aux | grep vagrant`), then retry"
                .to_string(),
            Failure::Unknown => return None,
        };
        Some(fix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real outputs of Vagrant 2.3.4 (Debian bookworm), trimmed to what matters.
    const SAMPLES: &[(&str, Failure)] = &[
        (
            "error: Fissure cluster shape /tmp/c/fissure-cluster.json: the file is missing. \
             Fissure writes this file when it brings a cluster up",
            Failure::ShapeFile,
        ),
        (
            "The provider 'libvirt' could not be found, but was requested to\n\
             back the machine 'n1'. Please use a provider that exists.\n\n\
             Vagrant knows about the following providers: virtualbox, docker, hyperv",
            Failure::ProviderMissing,
        ),
        (
            "The provider 'virtualbox' that was requested to back the machine\n\
             'n1' is reporting that it isn't usable on this system. The\n\
             reason is shown below:\n\n\
             Vagrant could not detect VirtualBox! Make sure VirtualBox is properly installed.",
            Failure::VirtualBoxMissing,
        ),
        (
            "Bringing machine 'n1' up with 'libvirt' provider...\n\
             Error while connecting to Libvirt: Error making a connection to libvirt URI \
             qemu:///system:\nCall to virConnectOpen failed: Failed to connect socket to \
             '/var/run/libvirt/libvirt-sock': No such file or directory",
            Failure::LibvirtdDown,
        ),
        (
            "The box 'debian/bookworm64' could not be found or\n\
             could not be accessed in the remote catalog. If this is a private\n\
             box on HashiCorp's Vagrant Cloud, please verify you're logged in via\n\
             `vagrant login`.\nURL: [\"https://vagrantcloud.com/api/v2/vagrant/debian/bookworm64\"]\n\
             Error: Could not resolve host: vagrantcloud.com",
            Failure::BoxMissing,
        ),
        (
            "'n1' is reporting that it isn't usable on this system. The\nreason is shown below:\n\n\
             A Docker command executed by Vagrant didn't complete successfully!\n\
             Command: [\"docker\", \"version\", {:notify=>[:stdout, :stderr]}]\n\n\
             Stderr: Cannot connect to the Docker daemon at unix:///nonexistent. Is the docker \
             daemon running?",
            Failure::DockerDaemon,
        ),
        (
            "A Docker command executed by Vagrant didn't complete successfully!\n\
             Command: [\"docker\", \"run\", \"--name\", \"vt1-n1\", \"-d\", \"fissure-node:000000000000\"]\n\n\
             Stderr: Unable to find image 'fissure-node:000000000000' locally\n\
             docker: Error response from daemon: Get \"https://registry-1.docker.io/v2/\": dial \
             tcp: lookup registry-1.docker.io on 10.255.255.53:53: no such host",
            Failure::ImageMissing,
        ),
        (
            "Stderr: docker: Error response from daemon: Conflict. The container name \"/vt1-n1\" \
             is already in use by container \"271294a12b43\". You have to remove (or rename) \
             that container to be able to reuse that name.",
            Failure::ContainerNameTaken,
        ),
        (
            "Stderr: Error response from daemon: Pool overlaps with other one on this address space",
            Failure::SubnetTaken,
        ),
        (
            "The provider for this Vagrant-managed machine is reporting that it\n\
             is not yet ready for SSH. Depending on your provider this can carry\n\
             different meanings.",
            Failure::NotRunning,
        ),
        (
            "An action 'up' was attempted on the machine 'n1',\n\
             but another process is already executing an action on the machine.\n\
             Vagrant locks each machine for access by only one process at a time.\n\
             Vagrant can't use the requested machine because it is locked!",
            Failure::Locked,
        ),
        ("Something nobody has seen before", Failure::Unknown),
    ];

    #[test]
    fn real_outputs_are_classified() {
        for (text, expected) in SAMPLES {
            assert_eq!(classify(text), *expected, "{text}");
        }
    }

    #[test]
    fn every_known_cause_says_what_to_do() {
        for (_, failure) in SAMPLES {
            for provider in Provider::ALL {
                let fix = failure.fix(provider, None);
                assert_eq!(fix.is_none(), *failure == Failure::Unknown, "{failure:?}");
            }
        }
        let libvirt = Failure::ProviderMissing
            .fix(Provider::Libvirt, None)
            .unwrap();
        assert!(
            libvirt.contains("vagrant plugin install vagrant-libvirt"),
            "{libvirt}"
        );
        assert!(
            libvirt.contains("apt-get install -y vagrant-libvirt"),
            "{libvirt}"
        );
        let the_box = Failure::BoxMissing
            .fix(Provider::Libvirt, Some("fissure/bookworm"))
            .unwrap();
        assert!(
            the_box.contains("vagrant box add fissure/bookworm --provider libvirt"),
            "{the_box}"
        );
        let image = Failure::ImageMissing
            .fix(Provider::Docker, Some("fissure-node:abc"))
            .unwrap();
        assert!(image.contains("fissure image ensure") && image.contains("fissure-node:abc"));
        let missing = Failure::NotInstalled.fix(Provider::Docker, None).unwrap();
        assert!(missing.contains("apt-get install -y vagrant"), "{missing}");
    }
}
