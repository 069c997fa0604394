//! The importers against the real conformance corpus (`corpus/`, see its README and
//! MANIFEST.tsv), plus EDN round trips and error lines through the public API.
//!
//! Tests live in a `formats` module so that `cargo test -p checkers formats` selects them.

#[path = "support/corpus.rs"]
mod corpus;

mod formats {
    use checkers::formats::{guess_format, parse, write_edn, Format};
    use checkers::history::{EventType, History, Outcome, Process};
    use std::path::{Path, PathBuf};

    use super::corpus::{self, manifest, read};

    /// The first few KB, as a caller sniffing a file would pass to `guess_format`.
    fn head(text: &str) -> &str {
        let mut end = text.len().min(4096);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        &text[..end]
    }

    /// The number just before `what` in the manifest notes, e.g. `12` in "12 :info (write".
    fn noted(notes: &str, what: &str) -> usize {
        let before = &notes[..notes
            .find(what)
            .unwrap_or_else(|| panic!("{what:?} in {notes:?}"))];
        before
            .trim_end()
            .rsplit(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    }

    fn edn_round_trip(history: &History) -> History {
        let mut out = Vec::new();
        write_edn(&mut out, history).unwrap();
        parse(Format::Edn, std::str::from_utf8(&out).unwrap()).unwrap()
    }

    fn files_under(dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files_under(&path, found);
            } else {
                found.push(path);
            }
        }
    }

    #[test]
    fn manifest_lists_every_history_in_the_corpus() {
        let listed: Vec<String> = manifest().into_iter().map(|e| e.path).collect();
        let mut files = Vec::new();
        let root = corpus::dir();
        files_under(&root, &mut files);
        let mut histories = 0;
        for file in files {
            let relative = file.strip_prefix(&root).unwrap().to_str().unwrap();
            // Notes, license texts, and the transactional histories (listed in elle/MANIFEST.tsv).
            let name = file.file_name().unwrap().to_str().unwrap();
            if relative.ends_with(".md")
                || relative == "MANIFEST.tsv"
                || name.starts_with("LICENSE")
                || relative.starts_with("elle/")
            {
                continue;
            }
            histories += 1;
            assert!(
                listed.iter().any(|p| p == relative),
                "{relative} not in MANIFEST.tsv"
            );
        }
        assert_eq!(histories, listed.len());
    }

    #[test]
    fn every_corpus_file_is_guessed_and_parsed_with_the_manifest_op_count() {
        for entry in manifest() {
            let text = read(&entry.path);
            let path = Path::new(&entry.path);
            assert_eq!(
                guess_format(path, head(&text)),
                Some(entry.format),
                "{}",
                entry.path
            );
            let history =
                parse(entry.format, &text).unwrap_or_else(|e| panic!("{}: {e}", entry.path));
            assert_eq!(history.source_lines.len(), history.events.len());
            let invocations = history
                .client_events()
                .filter(|e| e.kind == EventType::Invoke)
                .count();
            assert_eq!(invocations, entry.ops, "{}: invocations", entry.path);
            let operations = history
                .operations()
                .unwrap_or_else(|e| panic!("{}: {e}", entry.path));
            assert_eq!(operations.len(), entry.ops, "{}: operations", entry.path);
        }
    }

    /// The indeterminate operations the manifest notes count are the ones imported as `info`.
    #[test]
    fn indeterminate_operations_match_the_manifest_notes() {
        for entry in manifest() {
            let text = read(&entry.path);
            let lines: Vec<&str> = text.lines().collect();
            let history = parse(entry.format, &text).unwrap();
            let infos: Vec<&str> = history
                .events
                .iter()
                .zip(history.source_lines.iter())
                .filter(|(e, _)| e.kind == EventType::Info && e.process != Process::Nemesis)
                .map(|(_, line)| lines[line - 1])
                .collect();
            let from = |marker: &str| infos.iter().filter(|l| l.contains(marker)).count();
            let nemesis = history.nemesis_events().count();
            match entry.format {
                Format::PorcupineEtcd => {
                    assert_eq!(
                        from(":info"),
                        noted(&entry.notes, " :info ("),
                        "{}",
                        entry.path
                    );
                    let failed_reads = noted(&entry.notes, " :fail :read");
                    assert_eq!(from(":fail"), failed_reads, "{}", entry.path);
                    assert_eq!(infos.len(), from(":info") + failed_reads);
                }
                Format::Edn => {
                    let noted_infos = noted(&entry.notes, " client :info ops");
                    assert_eq!(from(":type :info"), noted_infos, "{}", entry.path);
                    // The rest are Knossos' `:ok :read nil` (a read of an unknown value).
                    assert_eq!(
                        infos.len() - noted_infos,
                        from(":type :ok, :f :read, :value nil")
                    );
                    let noted_nemesis = entry
                        .notes
                        .contains(":nemesis")
                        .then(|| noted(&entry.notes, " :nemesis ops"));
                    assert_eq!(nemesis, noted_nemesis.unwrap_or(0), "{}", entry.path);
                }
                _ => {
                    assert!(entry.notes.contains("no crashed ops"));
                    assert!(infos.is_empty(), "{}", entry.path);
                    let ops = history.operations().unwrap();
                    assert!(
                        ops.iter().all(|op| op.outcome == Outcome::Ok),
                        "{}",
                        entry.path
                    );
                    assert!(history.events.iter().all(|e| e.key.is_some()));
                }
            }
        }
    }

    #[test]
    fn edn_export_round_trips_corpus_histories() {
        for entry in manifest() {
            let history = parse(entry.format, &read(&entry.path)).unwrap();
            let back = edn_round_trip(&history);
            if entry.format == Format::PorcupineEtcd {
                // The one lossy case: an etcd `:ok :read nil` (key absent) is Knossos' unknown read.
                for (before, after) in history.events.iter().zip(&back.events) {
                    let unknown_read = before.kind == EventType::Ok
                        && before.f == "read"
                        && before.value.is_null();
                    let expected = if unknown_read {
                        EventType::Info
                    } else {
                        before.kind
                    };
                    assert_eq!(after.kind, expected, "{}", entry.path);
                    assert_eq!((&after.value, after.index), (&before.value, before.index));
                }
            } else {
                assert_eq!(back.events, history.events, "{}", entry.path);
            }
        }
    }

    #[test]
    fn edn_export_round_trips_a_jsonl_history() {
        let jsonl = r#"{"index":0,"time":10,"process":3,"type":"invoke","f":"cas","key":"k2","value":[1,4],"node":"n3"}
{"index":1,"time":20000000,"process":"nemesis","type":"info","f":"start-partition","value":{"grudge":{"n1":["n4","n5"]},"at":1.5}}
{"index":2,"time":30,"process":3,"type":"fail","f":"cas","key":"k2","value":[1,4],"node":"n3","error":{"reason":"compare failed","code":409}}
{"index":3,"process":4,"type":"invoke","f":"txn","key":{"table":"t","id":7},"value":[["r","x",null],["w","y","say \"hi\"\n"]]}
{"index":5,"process":4,"type":"ok","f":"txn","key":{"table":"t","id":7},"value":[["r","x",-3],["w","y","say \"hi\"\n"]]}
{"index":6,"process":"nemesis","type":"info","f":"stop-partition","value":null}
"#;
        let history = parse(Format::Jsonl, jsonl).unwrap();
        assert_eq!(history.events.len(), 6);
        let back = edn_round_trip(&history);
        assert_eq!(back.events, history.events);
        assert_eq!(back.events[1].process, Process::Nemesis);
        assert_eq!(back.source_lines, vec![1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn errors_name_the_line_in_corpus_files() {
        // A bad :type keyword on line 5 of a Knossos file.
        let text = read("knossos/cas-register/good/memstress3-0.edn");
        let bad: Vec<String> = text
            .lines()
            .enumerate()
            .map(|(i, l)| {
                if i == 4 {
                    l.replace(":type :invoke", ":type :called")
                } else {
                    l.into()
                }
            })
            .collect();
        let err = parse(Format::Edn, &bad.join("\n")).unwrap_err();
        assert_eq!(err.line, 5, "{err}");
        assert!(err.message.contains(":called"), "{err}");

        // A map on line 10 whose closing brace is lost.
        let bad: Vec<String> = text
            .lines()
            .enumerate()
            .map(|(i, l)| {
                if i == 9 {
                    l.trim_end_matches('}').into()
                } else {
                    l.into()
                }
            })
            .collect();
        let err = parse(Format::Edn, &bad.join("\n")).unwrap_err();
        assert_eq!(err.line, 10, "{err}");
        assert!(err.message.starts_with("unterminated map"), "{err}");

        // The same at the end of the file, where the input simply stops.
        let cut = text.trim_end().trim_end_matches(']').trim_end_matches('}');
        let err = parse(Format::Edn, cut).unwrap_err();
        assert_eq!(err.line, text.trim_end().lines().count(), "{err}");

        // A garbage op line in an etcd log, after 11 good ones.
        let text = read("porcupine/jepsen/etcd_000.log");
        let mut lines: Vec<&str> = text.lines().collect();
        lines.insert(11, "INFO  jepsen.util - partitioned n1 from n2");
        let err = parse(Format::PorcupineEtcd, &lines.join("\n")).unwrap_err();
        assert_eq!(err.line, 12, "{err}");
        assert!(err.message.contains("\"partitioned\""), "{err}");

        // A kv line that is not a map.
        let text = read("porcupine/kv/c01-ok.txt");
        let mut lines: Vec<&str> = text.lines().collect();
        lines.insert(2, "{:process 0, :type :invoke, :f :get, :key \"1\" :value");
        let err = parse(Format::PorcupineKv, &lines.join("\n")).unwrap_err();
        assert_eq!(err.line, 3, "{err}");
    }
}
