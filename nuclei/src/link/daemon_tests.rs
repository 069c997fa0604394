use super::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::time::timeout;

const POLL: Duration = Duration::from_millis(20);

/// A file path of its own under the temp dir, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(what: &str) -> TempFile {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let name = format!("fissure-link-daemon-{}-{n}-{what}", std::process::id());
        TempFile(std::env::temp_dir().join(name))
    }

    /// Replaces the contents atomically, as the controller should.
    fn write(&self, text: &str) {
        let tmp = self.0.with_extension("tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &self.0).unwrap();
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// An upstream answering each line with "`tag`:line", so a test can tell upstreams apart.
async fn tagged_echo(tag: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if write
                        .write_all(format!("{tag}:{line}\n").as_bytes())
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// One client connection through a link.
struct Client(BufReader<TcpStream>);

impl Client {
    async fn connect(addr: SocketAddr) -> Client {
        Client(BufReader::new(TcpStream::connect(addr).await.unwrap()))
    }

    /// Sends `line`, returns the answer and how long the round trip took.
    async fn round_trip(&mut self, line: &str) -> (String, Duration) {
        let start = Instant::now();
        self.0
            .get_mut()
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
        let mut answer = String::new();
        timeout(Duration::from_secs(2), self.0.read_line(&mut answer))
            .await
            .expect("an answer within 2 s")
            .unwrap();
        (answer.trim_end().to_string(), start.elapsed())
    }

    /// Round trips until one satisfies `done`, for up to 1.5 s; true if one did.
    async fn until(&mut self, done: impl Fn(Duration) -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_millis(1500);
        while Instant::now() < deadline {
            if done(self.round_trip("x").await.1) {
                return true;
            }
        }
        false
    }
}

/// A running daemon with links "a" and "b" to two tagged upstreams, and a client on each.
struct Running {
    faults: TempFile,
    a: Client,
    b: Client,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn two_links() -> Running {
    let spec = |name: &str, upstream: String| LinkSpec {
        name: name.into(),
        listen: "127.0.0.1:0".into(),
        upstream,
    };
    let config = LinksConfig {
        links: vec![
            spec("a", tagged_echo("A").await),
            spec("b", tagged_echo("B").await),
        ],
    };
    let faults = TempFile::new("faults.json");
    let daemon = LinkDaemon::start(config, faults.0.clone()).await.unwrap();
    let addrs: BTreeMap<_, _> = daemon.addrs().into_iter().collect();
    assert_eq!(addrs.keys().collect::<Vec<_>>(), ["a", "b"]);
    let (a, b) = (
        Client::connect(addrs["a"]).await,
        Client::connect(addrs["b"]).await,
    );
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(daemon.run(POLL, async move {
        let _ = stopped.await;
    }));
    Running {
        faults,
        a,
        b,
        stop: Some(stop),
        task,
    }
}

impl Running {
    async fn stop(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        let stopped = timeout(Duration::from_secs(1), &mut self.task).await;
        stopped.expect("the daemon stops").unwrap().unwrap();
    }
}

const SLOW_A: &str = r#"{"a": {"forward": {"latency": 200, "jitter": 0, "loss": 0.0}}}"#;
const SLOW: Duration = Duration::from_millis(200);
const FAST: Duration = Duration::from_millis(100);

#[tokio::test]
async fn forwards_each_link_to_its_upstream() {
    let mut run = two_links().await;
    assert_eq!(run.a.round_trip("hi").await.0, "A:hi");
    assert_eq!(run.b.round_trip("ho").await.0, "B:ho");
    run.stop().await;
}

#[tokio::test]
async fn follows_the_faults_file() {
    let mut run = two_links().await;
    run.faults.write(SLOW_A);
    assert!(run.a.until(|rtt| rtt >= SLOW).await, "latency never came");
    let (answer, rtt) = run.b.round_trip("b").await;
    assert_eq!(answer, "B:b");
    assert!(rtt < FAST, "the other link slowed too: {rtt:?}");
    run.faults.write("{}");
    let healed = Instant::now();
    assert!(run.a.until(|rtt| rtt < FAST).await, "latency stayed");
    // At most a chunk still in flight plus a poll or two.
    assert!(
        healed.elapsed() < SLOW + 10 * POLL,
        "{:?}",
        healed.elapsed()
    );
    run.stop().await;
}

#[tokio::test]
async fn a_bad_file_keeps_the_last_good_faults() {
    let mut run = two_links().await;
    run.faults.write(SLOW_A);
    assert!(run.a.until(|rtt| rtt >= SLOW).await, "latency never came");
    for bad in [
        "{not json",
        r#"{"a": {"foward": {"latency": 0, "jitter": 0, "loss": 0.0}}}"#,
        r#"{"a": {"forward": {"latency": 0, "jitter": 0, "loss": 1.5}}}"#,
    ] {
        run.faults.write(bad);
        tokio::time::sleep(3 * POLL).await;
        let (answer, rtt) = run.a.round_trip("a").await;
        assert_eq!(answer, "A:a");
        assert!(rtt >= SLOW, "{bad:?} healed link a: {rtt:?}");
        assert_eq!(run.b.round_trip("b").await.0, "B:b");
    }
    run.stop().await;
}

#[tokio::test]
async fn a_busy_address_names_the_link() {
    let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let busy = taken.local_addr().unwrap().to_string();
    let config = LinksConfig {
        links: vec![LinkSpec {
            name: "n3".into(),
            listen: busy.clone(),
            upstream: "127.0.0.1:1".into(),
        }],
    };
    let faults = TempFile::new("unused.json");
    let Err(e) = LinkDaemon::start(config, faults.0.clone()).await else {
        panic!("bound an address in use");
    };
    let message = format!("{e:#}");
    assert!(
        message.contains("n3") && message.contains(&busy),
        "{message}"
    );
}

#[test]
fn faults_files_read_and_round_trip() {
    let file = TempFile::new("read.json");
    assert_eq!(LinkFaults::read(&file.0).unwrap(), LinkFaults::default());
    file.write("  \n");
    assert_eq!(LinkFaults::read(&file.0).unwrap(), LinkFaults::default());
    let mut faults = LinkFaults::default();
    let slow = LinkQuality {
        latency: SLOW,
        jitter: Duration::from_millis(5),
        loss: 0.1,
    };
    faults.0.insert(
        "n2".into(),
        DirectedQuality {
            forward: LinkQuality::default(),
            backward: slow,
        },
    );
    file.write(&faults.to_json());
    assert_eq!(LinkFaults::read(&file.0).unwrap(), faults);
    // A direction left out is perfect.
    let one_way =
        LinkFaults::parse(r#"{"n2": {"backward": {"latency": 200, "jitter": 5, "loss": 0.1}}}"#);
    assert_eq!(one_way.unwrap(), faults);
    file.write("[1, 2]");
    let e = format!("{:#}", LinkFaults::read(&file.0).unwrap_err());
    assert!(e.contains(&file.0.display().to_string()), "{e}");
}

#[tokio::test]
async fn duplicate_names_and_bad_configs_are_refused() {
    let spec = |name: &str| LinkSpec {
        name: name.into(),
        listen: "127.0.0.1:0".into(),
        upstream: "127.0.0.1:1".into(),
    };
    let config = LinksConfig {
        links: vec![spec("n2"), spec("n2")],
    };
    let faults = TempFile::new("dup.json");
    let Err(e) = LinkDaemon::start(config, faults.0.clone()).await else {
        panic!("accepted two links named n2");
    };
    assert!(format!("{e:#}").contains("n2"));
    let config = TempFile::new("links.json");
    config.write("{\"links\": 3}");
    let e = run_from_files(&config.0, &faults.0).await.unwrap_err();
    assert!(format!("{e:#}").contains("links config"), "{e:#}");
}
