//! What the docker backend costs (`cargo bench -p harness --bench docker`): building the node
//! image, bringing a 5-node cluster from `up` to SSH-ready with the image cached, applying and
//! healing a partition on 5 nodes, SSH commands per second to one node and to all, and SFTP
//! upload speed. Needs a Docker daemon and root; prints why not otherwise.
//!
//! `FISSURE_BENCH_SKIP_IMAGE=1` skips the (forced) image rebuild.

use harness::backend::docker::{cluster, image};
use harness::backend::remote;
use nuclei::control::Grudge;
use std::time::{Duration, Instant};

const UPS: usize = 3;
const PARTITIONS: usize = 40;
const COMMANDS: usize = 400;

fn quantile(samples: &mut [Duration], q: f64) -> Duration {
    samples.sort();
    let at = ((samples.len() as f64 - 1.0) * q).round() as usize;
    samples[at]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let state = tempfile::tempdir().unwrap();
    std::env::set_var("FISSURE_STATE_DIR", state.path());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    if let Err(e) = runtime.block_on(harness::backend::docker::engine::daemon_version()) {
        println!("skipped: {e:#}");
        return;
    }
    if !nix::unistd::geteuid().is_root() {
        println!("skipped: building the node image needs root");
        return;
    }
    runtime.block_on(async {
        if std::env::var("FISSURE_BENCH_SKIP_IMAGE").is_err() {
            let started = Instant::now();
            let reference = image::build().await.unwrap();
            println!(
                "image build (mmdebstrap + docker import)   {:>8.1} s   {reference}",
                started.elapsed().as_secs_f64()
            );
        }
        let name = format!("bench{}", std::process::id());
        let mut ups = Vec::new();
        for i in 0..UPS {
            let (_, timings) = cluster::up(&format!("{name}-{i}"), 5, true).await.unwrap();
            ups.push(timings.containers + timings.ssh_ready);
            cluster::down(&format!("{name}-{i}")).await.unwrap();
        }
        let up_median = quantile(&mut ups, 0.5);
        println!(
            "5-node cluster, up to SSH-ready (cached)   {:>8.2} s   median of {UPS}",
            up_median.as_secs_f64()
        );
        let (state, _) = cluster::up(&name, 5, true).await.unwrap();
        let result = measure(&state).await;
        cluster::down(&name).await.unwrap();
        result.unwrap();
    });
}

async fn measure(state: &harness::backend::state::ClusterState) -> anyhow::Result<()> {
    let faults = remote::faults(state)?;
    let nodes: Vec<String> = state.nodes.iter().map(|n| n.id.clone()).collect();
    let grudge = Grudge::between(&nodes[..2], &nodes[2..]);
    let (mut applies, mut heals) = (Vec::new(), Vec::new());
    for _ in 0..PARTITIONS {
        let started = Instant::now();
        faults.partition(&grudge).await?;
        applies.push(started.elapsed());
        let started = Instant::now();
        faults.heal_partition().await?;
        heals.push(started.elapsed());
    }
    println!(
        "partition apply, 5 nodes                   {:>8.1} ms median  {:>6.1} ms p99  ({PARTITIONS} runs)",
        ms(quantile(&mut applies, 0.5)),
        ms(quantile(&mut applies, 0.99))
    );
    println!(
        "partition heal, 5 nodes                    {:>8.1} ms median  {:>6.1} ms p99",
        ms(quantile(&mut heals, 0.5)),
        ms(quantile(&mut heals, 0.99))
    );

    let fleet = faults.fleet();
    let one = fleet.get("n1")?.clone();
    let timeout = Duration::from_secs(10);
    let started = Instant::now();
    for _ in 0..COMMANDS / 4 {
        one.exec_ok("true", timeout).await?;
    }
    let sequential = (COMMANDS / 4) as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..COMMANDS {
        let one = one.clone();
        tasks.spawn(async move { one.exec_ok("true", timeout).await });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let parallel = COMMANDS as f64 / started.elapsed().as_secs_f64();
    println!(
        "SSH commands to one node                   {sequential:>8.0} /s one at a time, {parallel:.0} /s {} at once",
        COMMANDS
    );
    let rounds = COMMANDS / 5;
    let started = Instant::now();
    for _ in 0..rounds {
        fleet.exec_ok_all("true", timeout).await?;
    }
    let all = (rounds * nodes.len()) as f64 / started.elapsed().as_secs_f64();
    println!(
        "SSH commands to all 5 nodes (exec_all)     {all:>8.0} /s ({rounds} rounds of one per node)"
    );

    let binary = std::env::current_exe()?;
    let size = std::fs::metadata(&binary)?.len();
    let started = Instant::now();
    one.upload(&binary, "/tmp/upload-bench", 0o755).await?;
    let took = started.elapsed();
    println!(
        "SFTP upload to one node                    {:>8.1} MB/s ({:.0} MB in {:.2} s)",
        size as f64 / 1e6 / took.as_secs_f64(),
        size as f64 / 1e6,
        took.as_secs_f64()
    );
    Ok(())
}
