//! How settings are written: durations as `30s`, `2m`, `500ms`; lists as `"partition,kill"` or
//! `["partition", "kill"]`.

use serde::{Deserialize, Deserializer, Serializer};
use std::time::Duration;

/// `30s`, `2m`, `1h30m`, `500ms`, or `0`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    if s.trim() == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("{s:?} is not a duration: {e} (write e.g. 500ms, 30s, 2m, 1h)"))
}

/// The shortest exact form: `30s`, `1m 30s`, `250ms`.
pub fn format_duration(d: Duration) -> String {
    if d.is_zero() {
        return "0s".into();
    }
    humantime::format_duration(d).to_string()
}

pub mod duration_opt {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&format_duration(*d)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        match Option::<String>::deserialize(d)? {
            Some(text) => parse_duration(&text)
                .map(Some)
                .map_err(serde::de::Error::custom),
            None => Ok(None),
        }
    }
}

/// A list given as an array of strings or as one comma-separated string.
pub fn list_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum List {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<List>::deserialize(d)? {
        None => None,
        Some(List::One(text)) => Some(split_list(&text)),
        Some(List::Many(items)) => Some(items),
    })
}

/// `"partition, kill"` → `["partition", "kill"]`.
pub fn split_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}
