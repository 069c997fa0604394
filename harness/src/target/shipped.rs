//! The target files shipped with Fissure (`targets/defs/`), built into the binary so that
//! `--target NAME` works from anywhere.

const SHIPPED: &[(&str, &str)] = &[
    (
        "raft-kv",
        include_str!("../../../targets/defs/raft-kv.toml"),
    ),
    ("quorum", include_str!("../../../targets/defs/quorum.toml")),
    ("twopc", include_str!("../../../targets/defs/twopc.toml")),
    ("echo", include_str!("../../../targets/defs/echo.toml")),
    ("etcd", include_str!("../../../targets/defs/etcd.toml")),
    (
        "postgres",
        include_str!("../../../targets/defs/postgres.toml"),
    ),
];

/// The shipped targets' names.
pub fn shipped_names() -> Vec<&'static str> {
    SHIPPED.iter().map(|(name, _)| *name).collect()
}

/// A shipped target file's text.
pub fn text(name: &str) -> Option<&'static str> {
    SHIPPED.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}
