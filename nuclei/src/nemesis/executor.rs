//! Applying planned ops to a cluster. The executor resolves targets when the op runs (against
//! the nodes and primaries of that moment), remembers what each start did, and has the stop
//! undo exactly that, whatever changed since (a new leader, a restarted node).

use super::grudge::Cut;
use super::kinds::{FaultKind, PartitionKind, Target};
use super::schedule::FaultOp;
use super::strobe::StrobeTask;
use super::suspend::Suspended;
use super::target::Resolved;
use crate::control::{ClusterControl, Grudge, LinkQuality, NodeId};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// What applying an op did: the history's completion of the nemesis op.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Applied {
    pub f: String,
    /// What was actually done: the grudge, the nodes killed, the offsets per node, ...
    pub value: Value,
    /// Every control call that failed, joined; `None` if all worked.
    pub error: Option<String>,
}

/// The nemesis's hands: applies [`FaultOp`]s through a [`ClusterControl`] and heals.
pub struct Nemesis {
    pub(super) control: Arc<dyn ClusterControl>,
    seed: u64,
    partition: Option<(PartitionKind, Grudge)>,
    /// The suspend fault in force; its cut is merged with the partition's, so the two faults
    /// can overlap and each stop undoes only its own.
    pub(super) suspended: Option<Suspended>,
    killed: Vec<NodeId>,
    paused: Vec<NodeId>,
    skewed: Vec<NodeId>,
    strobe: Option<StrobeTask>,
    latency: Option<Degraded>,
    loss: Option<Degraded>,
}

#[derive(Clone, Debug)]
struct Degraded {
    nodes: Vec<NodeId>,
    quality: LinkQuality,
}

/// A step's result before it becomes an [`Applied`].
pub(super) struct Outcome {
    pub value: Value,
    pub errors: Vec<String>,
}

impl Outcome {
    pub(super) fn failed(value: Value, error: String) -> Outcome {
        Outcome {
            value,
            errors: vec![error],
        }
    }
}

#[derive(Clone, Copy)]
enum Verb {
    Kill,
    Start,
    Pause,
    Resume,
}

/// Adds `note` to an object value, when there is one.
pub(super) fn noted(mut value: Value, note: Option<String>) -> Value {
    if let (Some(note), Value::Object(map)) = (note, &mut value) {
        map.insert("note".into(), Value::String(note));
    }
    value
}

fn remember(list: &mut Vec<NodeId>, nodes: &[NodeId]) {
    for node in nodes {
        if !list.contains(node) {
            list.push(node.clone());
        }
    }
}

fn labels(nodes: &[NodeId]) -> String {
    nodes.join(",")
}

impl Nemesis {
    /// `seed` salts every op's own seed, so hand-written ops (all seed 0, say) still vary
    /// between runs; the same seed, op, nodes and primaries always choose the same nodes.
    pub fn new(control: Arc<dyn ClusterControl>, seed: u64) -> Nemesis {
        Nemesis {
            control,
            seed,
            partition: None,
            suspended: None,
            killed: Vec::new(),
            paused: Vec::new(),
            skewed: Vec::new(),
            strobe: None,
            latency: None,
            loss: None,
        }
    }

    /// Applies one op. Never panics: a failing control call (or an op that cannot be applied
    /// to this cluster) is reported in [`Applied::error`], and whatever was started is still
    /// remembered, so the stop or [`Nemesis::heal_all`] undoes it.
    pub async fn apply(&mut self, op: &FaultOp) -> Applied {
        let outcome = match *op {
            FaultOp::StartPartition { partition, seed } => {
                self.start_partition(partition, seed).await
            }
            FaultOp::StopPartition => self.stop_partition().await,
            FaultOp::Kill { target, seed } => self.hit(Verb::Kill, target, seed).await,
            FaultOp::Start => self.undo(Verb::Start).await,
            FaultOp::Pause { target, seed } => self.hit(Verb::Pause, target, seed).await,
            FaultOp::Resume => self.undo(Verb::Resume).await,
            FaultOp::BumpClock {
                target,
                max_ms,
                seed,
            } => self.bump_clock(target, max_ms, seed).await,
            FaultOp::StrobeClock {
                target,
                delta_ms,
                period,
                seed,
            } => self.strobe_clock(target, delta_ms, period, seed).await,
            FaultOp::ResetClock => self.reset_clock().await,
            FaultOp::StartLatency {
                target,
                latency,
                jitter,
                seed,
            } => {
                let quality = LinkQuality {
                    latency,
                    jitter,
                    loss: 0.0,
                };
                self.degrade(FaultKind::Latency, target, quality, seed)
                    .await
            }
            FaultOp::StopLatency => self.undegrade(FaultKind::Latency).await,
            FaultOp::StartLoss { target, loss, seed } => {
                let quality = LinkQuality {
                    loss,
                    ..LinkQuality::default()
                };
                self.degrade(FaultKind::Loss, target, quality, seed).await
            }
            FaultOp::StopLoss => self.undegrade(FaultKind::Loss).await,
            FaultOp::StartSuspend {
                target,
                pause_ms,
                back_ms,
                seed,
            } => self.start_suspend(target, pause_ms, back_ms, seed).await,
            FaultOp::StopSuspend => self.stop_suspend().await,
        };
        let error = (!outcome.errors.is_empty()).then(|| outcome.errors.join("; "));
        // Debug only: the caller records the result and decides what the user sees.
        tracing::debug!(f = op.f(), value = %outcome.value, error = ?error, "nemesis applied");
        Applied {
            f: op.f().to_string(),
            value: outcome.value,
            error,
        }
    }

    /// Short labels of the faults in force, for a progress bar: `partition(majorities-ring)`,
    /// `kill n2`, `strobe n1,n3`, ...
    pub fn active(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some((kind, _)) = &self.partition {
            out.push(format!("partition({kind})"));
        }
        if let Some(suspended) = &self.suspended {
            out.push(format!("suspend {}", labels(&suspended.nodes)));
        }
        for (name, nodes) in [("kill", &self.killed), ("pause", &self.paused)] {
            if !nodes.is_empty() {
                out.push(format!("{name} {}", labels(nodes)));
            }
        }
        if !self.skewed.is_empty() {
            let name = if self.strobe.is_some() {
                "strobe"
            } else {
                "clock"
            };
            out.push(format!("{name} {}", labels(&self.skewed)));
        }
        for (name, degraded) in [("latency", &self.latency), ("loss", &self.loss)] {
            if let Some(d) = degraded {
                out.push(format!("{name} {}", labels(&d.nodes)));
            }
        }
        out
    }

    /// Stops any strobe, then heals everything through [`ClusterControl::heal_all`] whatever
    /// this nemesis remembers (it may have been started after a crash), and forgets every
    /// fault. Safe to call any number of times.
    pub async fn heal_all(&mut self) -> Applied {
        let mut value = json!({ "healed": self.active() });
        if let Some(task) = self.strobe.take() {
            // Past flips that failed are not a failed heal; keep them in the value.
            if let Some(e) = task.stop().await.error() {
                value["strobe_error"] = Value::String(e);
            }
        }
        // Dropping it cancels a pending wake-up: the heal resumes every node itself.
        self.suspended = None;
        let error = self
            .control
            .heal_all()
            .await
            .err()
            .map(|e| format!("{e:#}"));
        self.partition = None;
        self.killed.clear();
        self.paused.clear();
        self.skewed.clear();
        self.latency = None;
        self.loss = None;
        tracing::debug!(value = %value, error = ?error, "nemesis healed");
        Applied {
            f: "heal".into(),
            value,
            error,
        }
    }

    /// The op's own rng, salted with the nemesis seed.
    pub(super) fn rng(&self, seed: u64) -> StdRng {
        StdRng::seed_from_u64(seed ^ self.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15))
    }

    async fn primaries_if(&self, needed: bool) -> Result<Vec<NodeId>, String> {
        if !needed {
            return Ok(Vec::new());
        }
        self.control
            .primaries()
            .await
            .map_err(|e| format!("asking for the primaries: {e:#}"))
    }

    pub(super) async fn aim(&self, target: Target, rng: &mut StdRng) -> Result<Resolved, String> {
        let nodes = self.control.nodes();
        let primaries = self.primaries_if(target.needs_primaries()).await?;
        target
            .resolve(&nodes, &primaries, rng)
            .map_err(|e| format!("{e:#}"))
    }

    /// Calls `verb` on every node, all of them even if some fail; returns the failed nodes.
    async fn each(&self, verb: Verb, nodes: &[NodeId], errors: &mut Vec<String>) -> Vec<NodeId> {
        let mut failed = Vec::new();
        for node in nodes {
            let (doing, result) = match verb {
                Verb::Kill => ("killing", self.control.kill(node).await),
                Verb::Start => ("starting", self.control.start(node).await),
                Verb::Pause => ("pausing", self.control.pause(node).await),
                Verb::Resume => ("resuming", self.control.resume(node).await),
            };
            if let Err(e) = result {
                errors.push(format!("{doing} {node}: {e:#}"));
                failed.push(node.clone());
            }
        }
        failed
    }

    fn held(&mut self, verb: Verb) -> &mut Vec<NodeId> {
        match verb {
            Verb::Kill | Verb::Start => &mut self.killed,
            Verb::Pause | Verb::Resume => &mut self.paused,
        }
    }

    /// Kill or pause.
    async fn hit(&mut self, verb: Verb, target: Target, seed: u64) -> Outcome {
        let mut rng = self.rng(seed);
        let chosen = match self.aim(target, &mut rng).await {
            Ok(chosen) => chosen,
            Err(e) => return Outcome::failed(json!({ "target": target }), e),
        };
        // Remembered before the calls: a half-done kill must still be undone.
        remember(self.held(verb), &chosen.nodes);
        let mut errors = Vec::new();
        self.each(verb, &chosen.nodes, &mut errors).await;
        let value = json!({ "target": target, "nodes": chosen.nodes });
        Outcome {
            value: noted(value, chosen.note),
            errors,
        }
    }

    /// Start or resume exactly the nodes the kill or pause hit; failures stay remembered.
    async fn undo(&mut self, verb: Verb) -> Outcome {
        let nodes = std::mem::take(self.held(verb));
        let mut errors = Vec::new();
        let failed = self.each(verb, &nodes, &mut errors).await;
        remember(self.held(verb), &failed);
        Outcome {
            value: json!({ "nodes": nodes }),
            errors,
        }
    }

    async fn start_partition(&mut self, kind: PartitionKind, seed: u64) -> Outcome {
        let mut rng = self.rng(seed);
        let planned = json!({ "partition": kind });
        let nodes = self.control.nodes();
        let primaries = match self.primaries_if(kind.needs_primaries()).await {
            Ok(p) => p,
            Err(e) => return Outcome::failed(planned, e),
        };
        let Cut { grudge, note } = match kind.cut(&nodes, &primaries, &mut rng) {
            Ok(cut) => cut,
            Err(e) => return Outcome::failed(planned, format!("{e:#}")),
        };
        self.partition = Some((kind, grudge.clone()));
        let errors = match self.control.partition(&self.cuts()).await {
            Ok(()) => Vec::new(),
            Err(e) => vec![format!("partitioning: {e:#}")],
        };
        let value = json!({ "partition": kind, "grudge": grudge });
        Outcome {
            value: noted(value, note),
            errors,
        }
    }

    async fn stop_partition(&mut self) -> Outcome {
        let value = json!({ "partition": self.partition.as_ref().map(|(kind, _)| *kind) });
        let kept = self.suspended.as_ref().map(|s| s.grudge.clone());
        match self.install_cuts(&kept.unwrap_or_default()).await {
            Ok(()) => {
                self.partition = None;
                Outcome {
                    value,
                    errors: Vec::new(),
                }
            }
            Err(e) => Outcome::failed(value, format!("healing the partition: {e:#}")),
        }
    }

    /// Every cut in force: the partition's and the suspension's grudges merged.
    pub(super) fn cuts(&self) -> Grudge {
        let mut all = Grudge::default();
        let partition = self.partition.as_ref().map(|(_, g)| g);
        let suspension = self.suspended.as_ref().map(|s| &s.grudge);
        for grudge in partition.into_iter().chain(suspension) {
            all.union_with(grudge);
        }
        all
    }

    /// Installs `grudge`, or heals the network when it cuts nothing.
    pub(super) async fn install_cuts(&self, grudge: &Grudge) -> anyhow::Result<()> {
        if grudge.is_empty() {
            self.control.heal_partition().await
        } else {
            self.control.partition(grudge).await
        }
    }

    /// A new clock fault replaces a running strobe; its failures are reported with it.
    async fn end_strobe(&mut self, errors: &mut Vec<String>) {
        if let Some(task) = self.strobe.take() {
            errors.extend(task.stop().await.error());
        }
    }

    async fn set_offsets(&self, offsets: &BTreeMap<NodeId, i64>, errors: &mut Vec<String>) {
        for (node, &offset) in offsets {
            if let Err(e) = self.control.set_clock_offset(node, offset).await {
                errors.push(format!("setting {node}'s clock to {offset:+} ms: {e:#}"));
            }
        }
    }

    async fn bump_clock(&mut self, target: Target, max_ms: i64, seed: u64) -> Outcome {
        let planned = json!({ "target": target, "max_ms": max_ms });
        if max_ms <= 0 {
            let e = format!("bump-clock needs max_ms > 0, got {max_ms}");
            return Outcome::failed(planned, e);
        }
        let mut rng = self.rng(seed);
        let chosen = match self.aim(target, &mut rng).await {
            Ok(chosen) => chosen,
            Err(e) => return Outcome::failed(planned, e),
        };
        // Drawn in node order before any call, so the same seed gives the same offsets.
        let offsets: BTreeMap<NodeId, i64> = chosen
            .nodes
            .iter()
            .map(|node| {
                let skew = rng.gen_range(1..=max_ms);
                let sign = if rng.gen_bool(0.5) { 1 } else { -1 };
                (node.clone(), sign * skew)
            })
            .collect();
        let mut errors = Vec::new();
        self.end_strobe(&mut errors).await;
        remember(&mut self.skewed, &chosen.nodes);
        self.set_offsets(&offsets, &mut errors).await;
        let value = json!({ "target": target, "offsets": offsets });
        Outcome {
            value: noted(value, chosen.note),
            errors,
        }
    }

    async fn strobe_clock(
        &mut self,
        target: Target,
        delta_ms: i64,
        period: Duration,
        seed: u64,
    ) -> Outcome {
        let planned = json!({
            "target": target,
            "delta_ms": delta_ms,
            "period_ms": period.as_millis() as u64,
        });
        if period.is_zero() {
            return Outcome::failed(planned, "strobe-clock needs a period over 0 ms".into());
        }
        let mut rng = self.rng(seed);
        let chosen = match self.aim(target, &mut rng).await {
            Ok(chosen) => chosen,
            Err(e) => return Outcome::failed(planned, e),
        };
        let mut errors = Vec::new();
        self.end_strobe(&mut errors).await;
        remember(&mut self.skewed, &chosen.nodes);
        let high = chosen.nodes.iter().map(|n| (n.clone(), delta_ms)).collect();
        self.set_offsets(&high, &mut errors).await;
        let control = self.control.clone();
        let task = StrobeTask::spawn(control, chosen.nodes.clone(), delta_ms, period);
        self.strobe = Some(task);
        let mut value = planned;
        value["nodes"] = json!(chosen.nodes);
        Outcome {
            value: noted(value, chosen.note),
            errors,
        }
    }

    async fn reset_clock(&mut self) -> Outcome {
        let mut value = json!({});
        let mut errors = Vec::new();
        if let Some(task) = self.strobe.take() {
            let report = task.stop().await;
            value["flips"] = json!(report.flips);
            errors.extend(report.error());
        }
        let nodes = std::mem::take(&mut self.skewed);
        for node in &nodes {
            if let Err(e) = self.control.set_clock_offset(node, 0).await {
                errors.push(format!("resetting {node}'s clock: {e:#}"));
                self.skewed.push(node.clone());
            }
        }
        value["nodes"] = json!(nodes);
        Outcome { value, errors }
    }

    fn link_slot(&mut self, kind: FaultKind) -> &mut Option<Degraded> {
        if kind == FaultKind::Latency {
            &mut self.latency
        } else {
            &mut self.loss
        }
    }

    /// Every degraded node's quality, latency and loss combined, grouped by equal quality:
    /// `degrade` replaces a node's earlier degradation, so each node gets everything at once.
    fn link_groups(&self) -> Vec<(Vec<NodeId>, LinkQuality)> {
        let mut groups: Vec<(Vec<NodeId>, LinkQuality)> = Vec::new();
        let lat = self.latency.as_ref();
        let loss = self.loss.as_ref();
        let mut nodes: Vec<NodeId> = Vec::new();
        for d in lat.iter().chain(loss.iter()) {
            remember(&mut nodes, &d.nodes);
        }
        for node in nodes {
            let mut quality = LinkQuality::default();
            if let Some(l) = lat.filter(|d| d.nodes.contains(&node)) {
                quality.latency = l.quality.latency;
                quality.jitter = l.quality.jitter;
            }
            if let Some(l) = loss.filter(|d| d.nodes.contains(&node)) {
                quality.loss = l.quality.loss;
            }
            match groups.iter_mut().find(|(_, q)| *q == quality) {
                Some((members, _)) => members.push(node),
                None => groups.push((vec![node], quality)),
            }
        }
        groups
    }

    async fn apply_link_groups(&self, errors: &mut Vec<String>) {
        for (nodes, quality) in self.link_groups() {
            if let Err(e) = self.control.degrade(&nodes, quality).await {
                errors.push(format!("degrading links of {}: {e:#}", labels(&nodes)));
            }
        }
    }

    async fn restore_links(&self) -> Result<(), String> {
        self.control
            .restore_links()
            .await
            .map_err(|e| format!("restoring links: {e:#}"))
    }

    async fn degrade(
        &mut self,
        kind: FaultKind,
        target: Target,
        quality: LinkQuality,
        seed: u64,
    ) -> Outcome {
        let mut value = match kind {
            FaultKind::Latency => json!({
                "target": target,
                "latency_ms": quality.latency.as_millis() as u64,
                "jitter_ms": quality.jitter.as_millis() as u64,
            }),
            _ => json!({ "target": target, "loss": quality.loss }),
        };
        if !(0.0..=1.0).contains(&quality.loss) {
            let e = format!("loss must be between 0 and 1, got {}", quality.loss);
            return Outcome::failed(value, e);
        }
        let mut rng = self.rng(seed);
        let chosen = match self.aim(target, &mut rng).await {
            Ok(chosen) => chosen,
            Err(e) => return Outcome::failed(value, e),
        };
        // Anything already degraded is rebuilt from scratch; else just add these nodes.
        let rebuild = self.latency.is_some() || self.loss.is_some();
        *self.link_slot(kind) = Some(Degraded {
            nodes: chosen.nodes.clone(),
            quality,
        });
        let mut errors = Vec::new();
        if rebuild {
            if let Err(e) = self.restore_links().await {
                errors.push(e);
            }
        }
        self.apply_link_groups(&mut errors).await;
        value["nodes"] = json!(chosen.nodes);
        Outcome {
            value: noted(value, chosen.note),
            errors,
        }
    }

    /// Restores every link, then re-degrades what the other link fault still holds.
    async fn undegrade(&mut self, kind: FaultKind) -> Outcome {
        let previous = self.link_slot(kind).take();
        let nodes = previous
            .as_ref()
            .map(|d| d.nodes.clone())
            .unwrap_or_default();
        let value = json!({ "nodes": nodes });
        if let Err(e) = self.restore_links().await {
            *self.link_slot(kind) = previous;
            return Outcome::failed(value, e);
        }
        let mut errors = Vec::new();
        self.apply_link_groups(&mut errors).await;
        Outcome { value, errors }
    }
}
