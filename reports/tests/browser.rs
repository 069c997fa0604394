//! Reports in a real browser: headless Chromium renders a report and the store index to PNG,
//! which must not be blank (and must show the verdict's colour), with nothing at all on the
//! browser console. The screenshots stay under `target/tmp/` as artifacts.
//!
//! Needs Chromium (Debian: `apt-get install chromium`); without it the test says it was skipped,
//! unless `FISSURE_REQUIRE_BROWSER=1` (as `.ci/run` sets), which makes that a failure.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use support::{copy_dir, fixture};

fn browser() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|p| p.is_file())
}

fn browser_or_skip(test: &str) -> Option<PathBuf> {
    let found = browser();
    if found.is_none() {
        let required = std::env::var("FISSURE_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "{test}: FISSURE_REQUIRE_BROWSER=1 but no chromium on PATH"
        );
        eprintln!("skipped {test}: no chromium on PATH (apt-get install chromium)");
    }
    found
}

/// Renders `page` to `png`; returns what the page wrote to the browser console.
fn screenshot(browser: &Path, page: &Path, png: &Path, height: u32) -> Vec<String> {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(browser)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--disable-dev-shm-usage",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--window-size=1200,{height}"))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    assert!(
        png.is_file(),
        "no screenshot; chromium said:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_string)
        .collect()
}

/// RGB pixels of a PNG.
fn pixels(png: &Path) -> Vec<[u8; 3]> {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(png).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    buf[..info.buffer_size()]
        .chunks(channels)
        .map(|p| [p[0], p[1], p[2]])
        .collect()
}

fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_console_check_catches_a_page_error() {
    let Some(browser) = browser_or_skip("the_console_check_catches_a_page_error") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("broken.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><html><body>x<script>console.error('boom'); missing();</script></body></html>",
    )
    .unwrap();
    let said = screenshot(&browser, &page, &dir.path().join("broken.png"), 300);
    assert!(said.iter().any(|l| l.contains("boom")), "{said:?}");
    assert!(said.iter().any(|l| l.contains("missing")), "{said:?}");
}

#[test]
fn a_report_and_the_index_render_in_a_browser_without_console_errors() {
    let Some(browser) = browser_or_skip("a_report_and_the_index_render") else {
        return;
    };
    let store = tempfile::tempdir().unwrap();
    let run = store.path().join("invalid").join("20261201T100000.000Z");
    copy_dir(&fixture("invalid"), &run);
    reports::page::write(&run).unwrap();
    reports::index::write(store.path()).unwrap();

    let shots = artifacts();
    let report_png = shots.join("report-invalid.png");
    let said = screenshot(&browser, &run.join("report.html"), &report_png, 2400);
    assert!(
        said.is_empty(),
        "the report logged to the console: {said:?}"
    );
    let report = pixels(&report_png);
    let background = report[0];
    let drawn = report.iter().filter(|p| **p != background).count();
    assert!(
        drawn * 100 > report.len(),
        "the report looks blank: {drawn} of {} pixels drawn",
        report.len()
    );
    // The INVALID badge's red (#c4302b), so the styles were applied.
    let red = report
        .iter()
        .filter(|p| p[0] > 170 && p[1] < 80 && p[2] < 80)
        .count();
    assert!(
        red > 200,
        "no verdict colour on the page ({red} red pixels)"
    );

    let index_png = shots.join("index.png");
    let said = screenshot(&browser, &store.path().join("index.html"), &index_png, 600);
    assert!(said.is_empty(), "the index logged to the console: {said:?}");
    let index = pixels(&index_png);
    let drawn = index.iter().filter(|p| **p != index[0]).count();
    assert!(drawn * 200 > index.len(), "the index looks blank");
    eprintln!("screenshots in {}", shots.display());
}

/// Writes a campaign record for one night: `runs` are (test, stamp, expect, met).
fn night(store: &Path, folder: &str, started: &str, runs: &[(&str, &str, &str, bool)]) {
    let runs: Vec<serde_json::Value> = runs
        .iter()
        .map(|(test, stamp, expect, met)| {
            serde_json::json!({
                "name": test, "label": "l", "target": "raft-kv", "expect": expect,
                "verdict": "invalid", "code": 1, "met": met, "seconds": 21.5,
                "reason": "not linearizable", "slo": "-",
                "dir": format!("{test}/{stamp}"), "log": "x.log"
            })
        })
        .collect();
    let record = serde_json::json!({
        "campaign": "nightly", "shard": {"index": 1, "count": 1},
        "planned": runs.iter().map(|r| r["name"].clone()).collect::<Vec<_>>(),
        "runs": runs, "not_run": [], "started": started, "seconds": 43.0
    });
    let dir = store.join("campaigns").join(folder);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("campaign.json"), record.to_string()).unwrap();
}

#[test]
fn two_nights_show_each_tests_trend_strip_and_campaign_pages() {
    let Some(browser) = browser_or_skip("two_nights_show_each_tests_trend_strip") else {
        return;
    };
    let store = tempfile::tempdir().unwrap();
    let stamps = ["20261202T031700.000Z", "20261203T031700.000Z"];
    for test in ["nightly-bug-found", "nightly-bug-missed"] {
        for stamp in stamps {
            let run = store.path().join(test).join(stamp);
            copy_dir(&fixture("invalid"), &run);
            reports::page::write(&run).unwrap();
        }
    }
    // Night 1 met both expectations; night 2 expected `valid` of the second test and missed.
    night(
        store.path(),
        "nightly-20261202T031700Z",
        "2026-12-02T03:17:00Z",
        &[
            ("nightly-bug-found", stamps[0], "invalid", true),
            ("nightly-bug-missed", stamps[0], "invalid", true),
        ],
    );
    night(
        store.path(),
        "nightly-20261203T031700Z",
        "2026-12-03T03:17:00Z",
        &[
            ("nightly-bug-found", stamps[1], "invalid", true),
            ("nightly-bug-missed", stamps[1], "valid", false),
        ],
    );
    reports::index::write(store.path()).unwrap();

    let html = std::fs::read_to_string(store.path().join("index.html")).unwrap();
    assert!(html.contains("Tests over time"), "{html}");
    assert_eq!(
        html.matches("<svg class=\"strip\"").count(),
        2,
        "a strip per test"
    );
    assert_eq!(html.matches("class=\"sq ").count(), 4, "a square per run");
    assert_eq!(html.matches("sq invalid missed").count(), 1, "{html}");
    // Tera escapes the link's slashes (`&#x2F;`), which the browser reads back.
    let links = html.replace("&#x2F;", "/");
    assert!(links.contains("campaigns/nightly-20261203T031700Z/campaign.html"));
    let page = store
        .path()
        .join("campaigns/nightly-20261203T031700Z/campaign.html");
    let campaign = std::fs::read_to_string(&page).unwrap();
    assert!(
        campaign.find("nightly-bug-missed").unwrap() < campaign.find("nightly-bug-found").unwrap(),
        "misses first"
    );
    assert!(campaign.contains(&format!(
        "../../nightly-bug-found/{}/report.html",
        stamps[1]
    )));

    let shots = artifacts();
    let png = shots.join("index-two-nights.png");
    let said = screenshot(&browser, &store.path().join("index.html"), &png, 700);
    assert!(said.is_empty(), "the index logged to the console: {said:?}");
    let pixels = pixels(&png);
    // The strip's red squares (#d2443c) and the missed one's dark outline are drawn.
    let red = pixels
        .iter()
        .filter(|p| p[0] > 190 && (60..90).contains(&p[1]) && (50..80).contains(&p[2]))
        .count();
    assert!(red > 150, "no red squares in the strip ({red} pixels)");
    let said = screenshot(&browser, &page, &shots.join("campaign-page.png"), 500);
    assert!(
        said.is_empty(),
        "the campaign page logged to the console: {said:?}"
    );
    eprintln!("screenshots in {}", shots.display());
}

/// Pixels close to `rgb`.
fn near(pixels: &[[u8; 3]], rgb: [u8; 3]) -> usize {
    let close = |a: u8, b: u8| a.abs_diff(b) < 24;
    pixels
        .iter()
        .filter(|p| close(p[0], rgb[0]) && close(p[1], rgb[1]) && close(p[2], rgb[2]))
        .count()
}

#[test]
fn the_isolation_section_renders_its_cycle_in_a_browser() {
    let Some(browser) = browser_or_skip("the_isolation_section_renders") else {
        return;
    };
    let store = tempfile::tempdir().unwrap();
    let run = store.path().join("txn").join("20261201T100000.000Z");
    copy_dir(&fixture("txn"), &run);
    reports::page::write(&run).unwrap();
    let png = artifacts().join("report-txn.png");
    let said = screenshot(&browser, &run.join("report.html"), &png, 3400);
    assert!(
        said.is_empty(),
        "the report logged to the console: {said:?}"
    );
    let shot = pixels(&png);
    // The arrows' colours reach the screen, so the inline SVG and its styles were applied:
    // the rw arrow's orange (#d9480f), the wr arrows' green (#2b8a3e), and the boxes' blue.
    let rw = near(&shot, [0xd9, 0x48, 0x0f]);
    let wr = near(&shot, [0x2b, 0x8a, 0x3e]);
    let ok_box = near(&shot, [0xd6, 0xe9, 0xff]);
    assert!(rw > 150, "no rw arrow on screen ({rw} pixels)");
    assert!(wr > 150, "no wr arrows on screen ({wr} pixels)");
    assert!(
        ok_box > 2000,
        "no transaction boxes on screen ({ok_box} pixels)"
    );
    eprintln!("screenshot: {}", png.display());
}
