//! History file formats: Fissure's own JSON Lines, and the formats of other projects' published
//! histories (Knossos/Jepsen EDN, Porcupine's etcd logs and key-value files), so the same checker
//! can be tested against their verdicts.
//!
//! Importing is not only syntax: each source means something slightly different by a failed
//! operation and starts its objects from a different value. [`Conventions`] records that, and the
//! importers normalise the few ops whose meaning would otherwise be lost (documented where done).

mod edn;
mod elle_json;
mod porcupine_etcd;
mod porcupine_kv;

pub use edn::write_edn;

use crate::history::{read_jsonl, History, JsonlError};
use crate::model::{FailureSemantics, ModelKind};
use serde_json::{json, Value};
use std::fmt;
use std::path::Path;
use std::str::FromStr;

/// A history file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// Fissure's `history.jsonl`.
    Jsonl,
    /// A Knossos/Jepsen EDN vector (or list) of op maps.
    Edn,
    /// Jepsen etcd log lines as in Porcupine's test data.
    PorcupineEtcd,
    /// Porcupine's key-value histories, one EDN map per line.
    PorcupineKv,
    /// elle-cli's JSON: one array of op objects; transactions need no `f`.
    ElleJson,
}

impl Format {
    pub const ALL: [Format; 5] = [
        Format::Jsonl,
        Format::Edn,
        Format::PorcupineEtcd,
        Format::PorcupineKv,
        Format::ElleJson,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Format::Jsonl => "jsonl",
            Format::Edn => "edn",
            Format::PorcupineEtcd => "porcupine-etcd",
            Format::PorcupineKv => "porcupine-kv",
            Format::ElleJson => "elle-json",
        }
    }

    /// How the source that writes this format means its histories to be read.
    pub fn conventions(self) -> Conventions {
        match self {
            Format::Jsonl | Format::ElleJson => Conventions {
                failures: FailureSemantics::DidNotHappen,
                model: None,
                init: None,
            },
            // Knossos' cas-register starts at 0 and drops failed operations.
            Format::Edn => Conventions {
                failures: FailureSemantics::DidNotHappen,
                model: Some(ModelKind::CasRegister),
                init: Some(json!(0)),
            },
            // etcd's key starts absent (nil); a failed CAS ran and found another value.
            Format::PorcupineEtcd => Conventions {
                failures: FailureSemantics::Observed,
                model: Some(ModelKind::CasRegister),
                init: Some(Value::Null),
            },
            // Porcupine's kv has no failed operations; every key starts as "".
            Format::PorcupineKv => Conventions {
                failures: FailureSemantics::DidNotHappen,
                model: Some(ModelKind::KeyValue),
                init: Some(json!("")),
            },
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Format::ALL
            .into_iter()
            .find(|format| format.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
                format!("unknown format {s:?}; expected one of {}", names.join(", "))
            })
    }
}

/// How a source's histories are meant to be read.
#[derive(Clone, Debug, PartialEq)]
pub struct Conventions {
    pub failures: FailureSemantics,
    /// Default model, or None when it must be guessed from the functions used (jsonl).
    pub model: Option<ModelKind>,
    /// The model's initial value by this source's convention, or None for the model's own default.
    pub init: Option<Value>,
}

/// Guesses the format from the file name and its first few KB of text. None if no idea.
///
/// Content decides when it is recognisable, because published corpora use generic extensions
/// (`.txt`, `.log`). The one exception: a `.edn` file of one map per line is Jepsen's own
/// `history.edn`, not a Porcupine kv file, though the two look alike.
pub fn guess_format(path: &Path, head: &str) -> Option<Format> {
    let by_name = match path.extension().and_then(|e| e.to_str()) {
        Some("jsonl" | "ndjson" | "json") => Some(Format::Jsonl),
        Some("edn") => Some(Format::Edn),
        _ => None,
    };
    match (guess_from_content(head), by_name) {
        (Some(Format::PorcupineKv), Some(Format::Edn)) => Some(Format::Edn),
        (Some(by_content), _) => Some(by_content),
        (None, by_name) => by_name,
    }
}

fn guess_from_content(head: &str) -> Option<Format> {
    if head.lines().any(|l| l.contains(porcupine_etcd::MARKER)) {
        return Some(Format::PorcupineEtcd);
    }
    // The head may stop mid-line: judge only complete lines, unless there is just one.
    let mut lines: Vec<&str> = head
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with(';'))
        .collect();
    if !head.ends_with('\n') && lines.len() > 1 {
        lines.pop();
    }
    let first = lines.first()?;
    let after_brace = first.strip_prefix('{').map(str::trim_start);
    if after_brace.is_some_and(|rest| rest.starts_with('"')) {
        Some(Format::Jsonl)
    } else if after_brace.is_some_and(|rest| rest.starts_with(':')) {
        let one_map_per_line = lines
            .iter()
            .all(|l| l.starts_with("{:") && l.ends_with('}'));
        Some(if one_map_per_line {
            Format::PorcupineKv
        } else {
            Format::Edn
        })
    } else if first
        .strip_prefix('[')
        .is_some_and(|rest| rest.trim_start().starts_with("{\""))
    {
        Some(Format::ElleJson)
    } else if first.starts_with(['[', '(', '#']) {
        Some(Format::Edn)
    } else {
        None
    }
}

/// An error that names the line (1-based) where the input went wrong.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct FormatError {
    pub line: usize,
    pub message: String,
}

impl FormatError {
    pub(crate) fn new(line: usize, message: impl Into<String>) -> FormatError {
        FormatError {
            line,
            message: message.into(),
        }
    }
}

/// Parses text in the given format into a History (with source_lines filled: 1-based line of
/// each event).
pub fn parse(format: Format, text: &str) -> Result<History, FormatError> {
    match format {
        Format::Jsonl => read_jsonl(text.as_bytes()).map_err(|e| match e {
            JsonlError::Line { line, message } => FormatError { line, message },
            // Reading from a `&str` cannot fail, but the type allows it: no line to name.
            JsonlError::Io(e) => FormatError::new(0, e.to_string()),
        }),
        Format::Edn => edn::parse(text),
        Format::PorcupineEtcd => porcupine_etcd::parse(text),
        Format::PorcupineKv => porcupine_kv::parse(text),
        Format::ElleJson => elle_json::parse(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for format in Format::ALL {
            assert_eq!(format.name().parse::<Format>(), Ok(format));
            assert_eq!(format.to_string(), format.name());
        }
        let err = "knossos".parse::<Format>().unwrap_err();
        assert!(
            err.contains("jsonl, edn, porcupine-etcd, porcupine-kv, elle-json"),
            "{err}"
        );
    }

    #[test]
    fn conventions_follow_each_source() {
        let edn = Format::Edn.conventions();
        assert_eq!(edn.failures, FailureSemantics::DidNotHappen);
        assert_eq!(edn.init, Some(json!(0)));
        let etcd = Format::PorcupineEtcd.conventions();
        assert_eq!(etcd.failures, FailureSemantics::Observed);
        assert_eq!(etcd.init, Some(Value::Null));
        assert_eq!(
            Format::PorcupineKv.conventions().model,
            Some(ModelKind::KeyValue)
        );
        assert_eq!(Format::Jsonl.conventions().model, None);
    }

    #[test]
    fn guesses_by_content_then_name() {
        let guess = |name: &str, head: &str| guess_format(Path::new(name), head);
        let kv = "{:process 0, :type :invoke, :f :get, :key \"1\", :value nil}\n\
                  {:process 0, :type :ok, :f :get, :key \"1\", :value \"\"}\n";
        assert_eq!(guess("c01-ok.txt", kv), Some(Format::PorcupineKv));
        assert_eq!(guess("history.edn", kv), Some(Format::Edn));
        let etcd = "INFO  jepsen.util - 0\t:invoke\t:read\tnil\n";
        assert_eq!(guess("etcd.txt", etcd), Some(Format::PorcupineEtcd));
        assert_eq!(
            guess("x.edn", "; comment\n[{:process 0,"),
            Some(Format::Edn)
        );
        assert_eq!(guess("x.txt", "({:type :invoke"), Some(Format::Edn));
        assert_eq!(
            guess("x", "{:process :nemesis,\n :type :info}\n"),
            Some(Format::Edn)
        );
        assert_eq!(guess("x.txt", "{\"process\":0}\n"), Some(Format::Jsonl));
        assert_eq!(guess("h.jsonl", ""), Some(Format::Jsonl));
        assert_eq!(guess("h.edn", "{\"process\":0}"), Some(Format::Jsonl));
        assert_eq!(guess("notes.txt", "hello\n"), None);
        let elle = "[{\"index\":0,\"process\":0,\"type\":\"invoke\",\"value\":[[\"r\",1,null]]},\n";
        assert_eq!(guess("h.json", elle), Some(Format::ElleJson));
        assert_eq!(
            guess("h.txt", "[ {\"type\":\"ok\"}]"),
            Some(Format::ElleJson)
        );
    }

    #[test]
    fn jsonl_errors_keep_their_line() {
        let err = parse(Format::Jsonl, "\n{oops\n").unwrap_err();
        assert_eq!(err.line, 2);
    }
}
