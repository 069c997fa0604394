//! The entry points of the fuzz targets in `fuzz/` (one per history format), shared with the
//! corpus replay in `tests/fuzz_replay.rs` so that CI runs every saved input through exactly the
//! code the fuzzer ran.
//!
//! Each takes what a user could hand `fissure check` or `fissure convert` (any bytes), goes as
//! far as that input goes (format sniffing, parsing, pairing into operations) and returns. The
//! property is that nothing here panics, hangs or allocates without bound: a bad input is an
//! error value. The functions discard results; they assert only invariants that hold for every
//! input.

use crate::formats::{self, Format};
use crate::history::{read_jsonl, History};
use std::path::Path;

/// `history.jsonl` as a stored run's checker reads it: bytes through [`read_jsonl`] (not
/// necessarily UTF-8), then pairing; and as `fissure check` reads it, text through
/// [`formats::parse`].
pub fn history_jsonl(data: &[u8]) {
    if let Ok(history) = read_jsonl(data) {
        pair(&history);
    }
    text_history(Format::Jsonl, data);
}

/// A Knossos/Jepsen EDN history.
pub fn history_edn(data: &[u8]) {
    text_history(Format::Edn, data);
}

/// A Jepsen etcd log as in Porcupine's test data.
pub fn porcupine_etcd(data: &[u8]) {
    text_history(Format::PorcupineEtcd, data);
}

/// A Porcupine key-value history.
pub fn porcupine_kv(data: &[u8]) {
    text_history(Format::PorcupineKv, data);
}

/// What `fissure check FILE` does with a file's text: guess its format from the head (under a
/// few names), then parse it as `format` and pair the events.
fn text_history(format: Format, data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let head: String = text.chars().take(8192).collect();
    for name in ["history", "history.edn", "history.jsonl"] {
        let _ = formats::guess_format(Path::new(name), &head);
    }
    if let Ok(history) = formats::parse(format, text) {
        pair(&history);
    }
}

fn pair(history: &History) {
    assert_eq!(
        history.source_lines.len(),
        history.events.len(),
        "every parsed event has its source line"
    );
    if let Ok(ops) = history.operations() {
        assert!(ops.len() <= history.events.len());
    }
}
