//! The names users type for faults, partitions and targets (`--nemesis partition,kill`). One
//! table per enum drives `Display`, `FromStr` and serde, so the CLI, test.json and the history
//! always spell a name the same way.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// A kind of fault the nemesis can start and stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FaultKind {
    /// Cut the network between nodes (see [`PartitionKind`]).
    Partition,
    /// SIGKILL nodes, later start them again.
    Kill,
    /// SIGSTOP nodes, later SIGCONT them.
    Pause,
    /// Skew nodes' wall clocks (a bump, or a strobe flipping back and forth).
    Clock,
    /// Delay every packet into and out of nodes.
    Latency,
    /// Drop a share of the packets into and out of nodes.
    Loss,
    /// A node suspended as a VM is: cut off from every other node and paused, its wall clock set
    /// back by the fault's length; halfway through it resumes, still cut off, its clock reading
    /// earlier than the cut. A composed fault, as Jepsen composes faults and aims them by role:
    /// at `primaries`, a deposed leader that wakes still trusting its clock.
    Suspend,
}

/// How a partition splits the cluster (Jepsen's partitioners).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PartitionKind {
    /// The first ⌊n/2⌋ nodes (in node order) against the rest.
    Halves,
    /// Like halves, after a shuffle.
    RandomHalves,
    /// Every node sees a majority, and no two nodes see the same one.
    MajoritiesRing,
    /// Two halves, and one node that sees both.
    Bridge,
    /// One random node against the rest.
    IsolateOne,
    /// The primary against the rest (a random node when no primary is known).
    IsolatePrimary,
}

/// Which nodes a node fault hits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    /// One random node.
    One,
    /// A random nonempty set of fewer than half the nodes.
    Minority,
    /// A random set of more than half the nodes (not all, where the cluster allows).
    Majority,
    /// Every node.
    All,
    /// The current primaries (a random node when none is known).
    Primaries,
}

/// Enums with a fixed set of user-facing names.
pub trait Named: Copy + Eq + 'static {
    /// What one value is called in messages: "fault", "partition", "target".
    const WHAT: &'static str;
    /// Every value, in the order they are listed in messages.
    const ALL: &'static [Self];
    fn name(self) -> &'static str;
}

/// A name or list of names that did not parse; the message lists the names that would have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameError(String);

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NameError {}

fn expected<T: Named>() -> String {
    let names: Vec<&str> = T::ALL.iter().map(|v| v.name()).collect();
    names.join(", ")
}

/// One name, ignoring surrounding spaces and case.
pub fn parse_name<T: Named>(s: &str) -> Result<T, NameError> {
    let s = s.trim();
    T::ALL
        .iter()
        .copied()
        .find(|v| v.name().eq_ignore_ascii_case(s))
        .ok_or_else(|| {
            NameError(format!(
                "unknown {} {s:?}; expected one of: {}",
                T::WHAT,
                expected::<T>()
            ))
        })
}

/// A comma-separated list (`"partition,kill"`). Empty entries and repeated names are errors: a
/// repeat is almost always a typo, and it would silently change how often a fault is chosen.
pub fn parse_list<T: Named>(s: &str) -> Result<Vec<T>, NameError> {
    if s.trim().is_empty() {
        return Err(NameError(format!(
            "no {} given; expected a comma-separated list of: {}",
            T::WHAT,
            expected::<T>()
        )));
    }
    let mut out: Vec<T> = Vec::new();
    for item in s.split(',') {
        if item.trim().is_empty() {
            return Err(NameError(format!(
                "empty {} in list {s:?}; expected a comma-separated list of: {}",
                T::WHAT,
                expected::<T>()
            )));
        }
        let value = parse_name::<T>(item)?;
        if out.contains(&value) {
            return Err(NameError(format!(
                "{} {:?} listed twice in {s:?}",
                T::WHAT,
                value.name()
            )));
        }
        out.push(value);
    }
    Ok(out)
}

macro_rules! named {
    ($ty:ident, $what:literal, { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl Named for $ty {
            const WHAT: &'static str = $what;
            const ALL: &'static [$ty] = &[$($ty::$variant),+];
            fn name(self) -> &'static str {
                match self { $($ty::$variant => $name),+ }
            }
        }

        impl $ty {
            /// Every value, in the order they are listed in messages.
            pub const ALL: &'static [$ty] = <$ty as Named>::ALL;

            pub fn name(self) -> &'static str {
                Named::name(self)
            }

            /// A comma-separated list of names, e.g. from a command-line flag.
            pub fn parse_list(s: &str) -> Result<Vec<$ty>, NameError> {
                parse_list(s)
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }

        impl FromStr for $ty {
            type Err = NameError;
            fn from_str(s: &str) -> Result<$ty, NameError> {
                parse_name(s)
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.name())
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<$ty, D::Error> {
                let s = String::deserialize(d)?;
                parse_name(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

named!(FaultKind, "fault", {
    Partition => "partition",
    Kill => "kill",
    Pause => "pause",
    Clock => "clock",
    Latency => "latency",
    Loss => "loss",
    Suspend => "suspend",
});

named!(PartitionKind, "partition", {
    Halves => "halves",
    RandomHalves => "random-halves",
    MajoritiesRing => "majorities-ring",
    Bridge => "bridge",
    IsolateOne => "isolate-one",
    IsolatePrimary => "isolate-primary",
});

named!(Target, "target", {
    One => "one",
    Minority => "minority",
    Majority => "majority",
    All => "all",
    Primaries => "primaries",
});

impl FaultKind {
    /// True for the faults aimed at nodes through a [`Target`] (all but partitions).
    pub fn is_targeted(self) -> bool {
        self != FaultKind::Partition
    }

    /// True for the faults that cut node-to-node links (a backend must be able to partition).
    pub fn cuts_links(self) -> bool {
        matches!(self, FaultKind::Partition | FaultKind::Suspend)
    }

    /// True for the faults that move nodes' wall clocks (a target must let its clock be set).
    pub fn skews_clocks(self) -> bool {
        matches!(self, FaultKind::Clock | FaultKind::Suspend)
    }

    /// The plain fault kinds a composed fault is made of (none for a plain one), so a limit
    /// declared on `partition`, `pause` or `clock` also holds for a fault made with them.
    pub fn parts(self) -> &'static [FaultKind] {
        match self {
            FaultKind::Suspend => &[FaultKind::Partition, FaultKind::Pause, FaultKind::Clock],
            _ => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trips<T: Named + fmt::Display + FromStr<Err = NameError> + fmt::Debug>() {
        for &v in T::ALL {
            assert_eq!(v.to_string(), v.name());
            assert_eq!(v.name().parse::<T>(), Ok(v));
            assert_eq!(
                parse_name::<T>(&format!(" {} ", v.name().to_uppercase())),
                Ok(v)
            );
        }
    }

    #[test]
    fn names_round_trip() {
        round_trips::<FaultKind>();
        round_trips::<PartitionKind>();
        round_trips::<Target>();
        assert_eq!(
            PartitionKind::ALL
                .iter()
                .map(|k| k.name())
                .collect::<Vec<_>>(),
            [
                "halves",
                "random-halves",
                "majorities-ring",
                "bridge",
                "isolate-one",
                "isolate-primary"
            ]
        );
    }

    #[test]
    fn unknown_names_list_the_known_ones() {
        let e = "crash".parse::<FaultKind>().unwrap_err().to_string();
        assert_eq!(
            e,
            "unknown fault \"crash\"; expected one of: partition, kill, pause, clock, latency, loss, \
             suspend"
        );
        let e = "half".parse::<PartitionKind>().unwrap_err().to_string();
        assert!(e.contains("partition \"half\"") && e.contains("majorities-ring"));
        let e = "leader".parse::<Target>().unwrap_err().to_string();
        assert!(e.contains("one, minority, majority, all, primaries"), "{e}");
    }

    #[test]
    fn lists_parse_in_order_and_reject_junk() {
        assert_eq!(
            FaultKind::parse_list("partition, kill,clock"),
            Ok(vec![
                FaultKind::Partition,
                FaultKind::Kill,
                FaultKind::Clock
            ])
        );
        assert_eq!(Target::parse_list("primaries"), Ok(vec![Target::Primaries]));
        let e = FaultKind::parse_list("partition,,kill")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("empty fault in list"), "{e}");
        let e = FaultKind::parse_list("kill,partition,kill").unwrap_err();
        assert!(e.to_string().contains("\"kill\" listed twice"), "{e}");
        let e = FaultKind::parse_list(" ").unwrap_err().to_string();
        assert!(e.starts_with("no fault given"), "{e}");
        let e = FaultKind::parse_list("kill,nap").unwrap_err().to_string();
        assert!(e.starts_with("unknown fault \"nap\""), "{e}");
    }

    #[test]
    fn serde_uses_the_same_names() {
        let json =
            serde_json::to_string(&[PartitionKind::RandomHalves, PartitionKind::Bridge]).unwrap();
        assert_eq!(json, r#"["random-halves","bridge"]"#);
        let back: Vec<PartitionKind> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, [PartitionKind::RandomHalves, PartitionKind::Bridge]);
        let e = serde_json::from_str::<Target>(r#""most""#).unwrap_err();
        assert!(e.to_string().contains("unknown target \"most\""), "{e}");
    }
}
