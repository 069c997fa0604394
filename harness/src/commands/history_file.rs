//! Reading a history from disk in any supported format, for `check` and `convert`.

use anyhow::{anyhow, bail, Context};
use checkers::formats::{self, Format};
use checkers::History;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// How much of a file its format is guessed from.
pub const HEAD_BYTES: usize = 8192;

/// The history file `path` names: itself, or a stored run directory's `history.jsonl`.
pub fn resolve(path: &Path) -> anyhow::Result<PathBuf> {
    if !path.is_dir() {
        return Ok(path.to_path_buf());
    }
    let inner = path.join("history.jsonl");
    if !inner.is_file() {
        bail!(
            "{} is a directory without history.jsonl; pass a history file or a stored run directory",
            path.display()
        );
    }
    Ok(inner)
}

/// The first [`HEAD_BYTES`] of a file (fewer if it is shorter), as text.
pub fn head(path: &Path) -> anyhow::Result<String> {
    use std::io::Read;
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot read history {}", path.display()))?;
    let mut bytes = Vec::with_capacity(HEAD_BYTES);
    file.take(HEAD_BYTES as u64).read_to_end(&mut bytes)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// A history read from disk, with what summaries need to say about it.
pub struct Loaded {
    pub path: PathBuf,
    pub format: Format,
    pub history: History,
    pub parse_ms: f64,
}

/// Reads and parses a history file, or a stored run directory's `history.jsonl`. The format is
/// guessed from the file when not given.
pub fn load(path: &Path, format: Option<Format>) -> anyhow::Result<Loaded> {
    let path = resolve(path)?;
    let shown = path.display().to_string();
    let started = Instant::now();
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("cannot read history {shown}"))?;
    let format = match format {
        Some(format) => format,
        None => {
            let head: String = text.chars().take(HEAD_BYTES).collect();
            formats::guess_format(&path, &head).ok_or_else(|| {
                anyhow!(
                    "{shown}: cannot tell the history's format; pass --format jsonl, edn, \
                     porcupine-etcd, porcupine-kv or elle-json"
                )
            })?
        }
    };
    let history = formats::parse(format, &text).map_err(|e| anyhow!("{shown}: {e}"))?;
    // Nemesis entries alone are a (vacuously linearizable) history; no entry at all is more
    // likely the wrong file.
    if history.events.is_empty() {
        bail!("{shown}: the history has no entries (read as {format}); is it the right file?");
    }
    Ok(Loaded {
        path,
        format,
        history,
        parse_ms: started.elapsed().as_secs_f64() * 1e3,
    })
}
