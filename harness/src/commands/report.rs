//! `fissure report <run-dir>` and `fissure serve`: a run's `report.html` and the store's
//! `index.html`, from the stored files alone, and a small HTTP server to browse them.

use crate::cli::{ReportArgs, ServeArgs};
use crate::EXIT_VALID;
use anyhow::{bail, Context};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The store a run folder belongs to (`<store>/<test>/<stamp>`), if it looks like one.
pub fn store_of(run_dir: &Path) -> Option<PathBuf> {
    // Through links (`store/latest`) to the run's real folder.
    let run_dir = std::fs::canonicalize(run_dir).ok()?;
    let store = run_dir.parent()?.parent()?;
    let has_runs = store.join("latest").exists() || store.join("index.html").is_file();
    has_runs.then(|| store.to_path_buf())
}

/// Writes the run's report and refreshes its store's index. Used at the end of a run and
/// after a re-check: a report that cannot be drawn is a warning, never a lost run.
pub fn refresh(run_dir: &Path) -> Option<PathBuf> {
    let report = match reports::page::write(run_dir) {
        Ok(written) => {
            tracing::info!(
                ops = written.ops,
                bytes = written.bytes,
                ms = written.millis,
                "report written"
            );
            Some(run_dir.join("report.html"))
        }
        Err(e) => {
            tracing::warn!("no report for {}: {e:#}", run_dir.display());
            eprintln!("warning: could not write the report: {e:#}");
            None
        }
    };
    if let Some(store) = store_of(run_dir) {
        if let Err(e) = reports::index::write(&store) {
            tracing::warn!("the store index of {}: {e:#}", store.display());
        }
    }
    report
}

/// `fissure report <run-dir>` (or `--index` for a whole store).
pub fn report(args: ReportArgs) -> anyhow::Result<u8> {
    let dir = args.dir;
    if args.index {
        let runs = reports::index::write(&dir)?;
        println!("{} ({runs} runs)", dir.join("index.html").display());
        return Ok(EXIT_VALID);
    }
    let written = reports::page::write(&dir)?;
    if let Some(store) = store_of(&dir) {
        reports::index::write(&store)?;
    }
    println!(
        "{} ({} operations, {:.1} KB, {:.0} ms)",
        dir.join("report.html").display(),
        written.ops,
        written.bytes as f64 / 1024.0,
        written.millis
    );
    Ok(EXIT_VALID)
}

/// What to say when the store is served beyond this machine.
pub fn exposure_warning(store: &Path, bind: SocketAddr) -> Option<String> {
    (!bind.ip().is_loopback()).then(|| {
        format!(
            "warning: serving {} on {bind}, which other machines can reach; the store holds \
             histories and node logs (use 127.0.0.1 to keep it local)",
            store.display()
        )
    })
}

/// `fissure serve`: the store over HTTP, its index refreshed first.
pub fn serve(args: ServeArgs) -> anyhow::Result<u8> {
    let store = args.store;
    if !store.is_dir() {
        bail!(
            "no store at {}: run a test first (fissure run) or name one with --store",
            store.display()
        );
    }
    let bind: SocketAddr = args.bind.parse().with_context(|| {
        format!(
            "--bind {:?} is not an address like 127.0.0.1:8080",
            args.bind
        )
    })?;
    if let Some(warning) = exposure_warning(&store, bind) {
        eprintln!("{warning}");
    }
    let runs = reports::index::write(&store)?;
    let runtime = super::runtime()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(bind)
            .await
            .with_context(|| format!("cannot listen on {bind}"))?;
        let local = listener.local_addr()?;
        println!(
            "serving {} ({runs} runs) on http://{local}/ (Ctrl-C to stop)",
            store.display()
        );
        let files =
            tower_http::services::ServeDir::new(&store).append_index_html_on_directories(true);
        let app = axum::Router::new()
            .fallback_service(files)
            .layer(tower_http::trace::TraceLayer::new_for_http());
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .context("the HTTP server failed")
    })?;
    Ok(EXIT_VALID)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_is_served_without_a_warning() {
        let store = Path::new("store");
        assert!(exposure_warning(store, "127.0.0.1:8080".parse().unwrap()).is_none());
        assert!(exposure_warning(store, "[::1]:8080".parse().unwrap()).is_none());
        let wide = exposure_warning(store, "0.0.0.0:8080".parse().unwrap()).unwrap();
        assert!(wide.contains("other machines"));
    }
}
