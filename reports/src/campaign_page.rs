//! A campaign's page (`<store>/campaigns/<name>-<stamp>/campaign.html`): what it expected of
//! each run against what it got, the misses first, each run linked to its report. Built from
//! the campaign's record (`campaign.json`), linked from the store's index.

use crate::html::escape;
use serde_json::Value;
use std::fmt::Write;
use std::path::Path;

/// The page of the campaign recorded in `record`, which sits in `<store>/campaigns/<folder>/`.
pub fn render(folder: &str, record: &Value) -> String {
    let runs: Vec<&Value> = record["runs"].as_array().into_iter().flatten().collect();
    let mut ordered = runs.clone();
    // Misses first, then campaign order.
    ordered.sort_by_key(|r| r["met"].as_bool() != Some(false));
    let met = runs
        .iter()
        .filter(|r| r["met"] == Value::Bool(true))
        .count();
    let not_run: Vec<&str> = record["not_run"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let missed = runs.len() - met + not_run.len();
    let name = record["campaign"].as_str().unwrap_or(folder);
    let shard = match (
        record["shard"]["index"].as_u64(),
        record["shard"]["count"].as_u64(),
    ) {
        (Some(k), Some(n)) if n > 1 => format!(" · shard {k}/{n}"),
        _ => String::new(),
    };
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>campaign {title}</title><style>{css}\n{extra}</style></head><body><main>\
         <p><a href=\"../../index.html\">← all runs</a></p><h1>campaign {title}</h1>\
         <div class=\"muted\">{started}{shard} · {total} runs · {:.0} s</div>\
         <p class=\"{class}\">{met} as expected, {missed} missed</p>",
        record["seconds"].as_f64().unwrap_or(0.0),
        title = escape(name),
        css = crate::page::CSS,
        extra = EXTRA_CSS,
        started = escape(record["started"].as_str().unwrap_or("")),
        total = runs.len() + not_run.len(),
        class = if missed == 0 { "pass" } else { "fail" },
    );
    html.push_str(
        "<table><tr><th>run</th><th>expected</th><th>got</th><th></th><th>time</th><th>why</th></tr>",
    );
    for run in ordered {
        let met = run["met"] == Value::Bool(true);
        let link = match run["dir"].as_str() {
            Some(dir) => format!("../../{dir}/report.html"),
            None => format!("../../{}", run["log"].as_str().unwrap_or("")),
        };
        let verdict = run["verdict"].as_str().unwrap_or("?");
        let _ = write!(
            html,
            "<tr class=\"{row}\"><td><a href=\"{}\">{}</a></td><td>{}</td><td class=\"{v}\">{v}</td>\
             <td>{}</td><td>{:.1} s</td><td class=\"muted\">{}</td></tr>",
            escape(&link),
            escape(run["name"].as_str().unwrap_or("?")),
            escape(run["expect"].as_str().unwrap_or("?")),
            if met { "ok" } else { "MISSED" },
            run["seconds"].as_f64().unwrap_or(0.0),
            escape(run["reason"].as_str().unwrap_or("")),
            row = if met { "met" } else { "missed" },
            v = escape(verdict),
        );
    }
    for name in not_run {
        let _ = write!(
            html,
            "<tr class=\"missed\"><td>{}</td><td></td><td>not run</td><td>MISSED</td><td></td><td></td></tr>",
            escape(name)
        );
    }
    html.push_str("</table></main></body></html>\n");
    html
}

const EXTRA_CSS: &str = "td.valid { color: #1f8a4c; font-weight: 600; } \
td.invalid { color: #c4302b; font-weight: 600; } td.unknown, td.error { color: #b7791f; font-weight: 600; } \
tr.missed td:nth-child(4) { color: #c4302b; font-weight: 700; } p.pass { color: #1f8a4c; } p.fail { color: #c4302b; font-weight: 600; }";

/// Writes the page of every campaign record of the store (`trends::campaign_records`).
pub fn write_all(store: &Path, records: &[(String, Value)]) -> anyhow::Result<()> {
    for (folder, record) in records {
        let path = store.join("campaigns").join(folder).join("campaign.html");
        crate::page::write_atomically(&path, &render(folder, record))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn misses_come_first_and_every_run_links_its_report() {
        let record = json!({
            "campaign": "nightly", "shard": {"index": 1, "count": 1},
            "started": "2026-12-04T03:17:00Z", "seconds": 812.0,
            "runs": [
                {"name": "a-ok", "expect": "valid", "verdict": "valid", "met": true,
                 "seconds": 40.0, "reason": "", "dir": "a-ok/20261204T031700", "log": "x"},
                {"name": "b-<bug>", "expect": "invalid", "verdict": "valid", "met": false,
                 "seconds": 41.0, "reason": "no anomaly", "dir": "b/20261204T031800", "log": "y"}
            ],
            "not_run": ["c"]
        });
        let page = render("nightly-20261204T031700Z", &record);
        let missed = page.find("b-&lt;bug&gt;").expect("escaped name");
        assert!(missed < page.find("a-ok").unwrap(), "misses first");
        assert!(page.contains("../../a-ok/20261204T031700/report.html"));
        assert!(page.contains("1 as expected, 2 missed"), "{page}");
        assert!(page.contains("not run"));
    }
}
