//! `fissure target list | show NAME | check FILE`.

use crate::cli::TargetAction;
use crate::target::{shipped_names, Target};
use crate::EXIT_VALID;

pub fn run(action: TargetAction) -> anyhow::Result<u8> {
    match action {
        TargetAction::List => {
            println!(
                "{:<10} {:<26} {:<14} description",
                "target", "workloads", "client"
            );
            for name in shipped_names() {
                let def = Target::find(name)?.def;
                let client = match (&def.client.builtin, &def.client.adapter) {
                    (Some(builtin), _) => builtin.clone(),
                    (None, Some(adapter)) => format!("adapter {}", adapter.program),
                    (None, None) => "-".into(),
                };
                println!(
                    "{:<10} {:<26} {:<14} {}",
                    def.name,
                    def.workloads.join(","),
                    client,
                    def.description
                );
            }
            println!(
                "\n`fissure target show NAME` prints one; `--target path.toml` runs your own \
                 (docs/target-files.md)."
            );
        }
        TargetAction::Show { target } => {
            let found = Target::find(&target)?;
            match &found.file {
                Some(file) => print!("{}", std::fs::read_to_string(file)?),
                None => print!(
                    "{}",
                    crate::target::shipped_text(&target).unwrap_or_default()
                ),
            }
        }
        TargetAction::Check { file } => {
            let path = file.display().to_string();
            let path = if path.contains('/') || path.ends_with(".toml") {
                path
            } else {
                format!("./{path}")
            };
            let target = Target::find(&path)?;
            let def = &target.def;
            println!("{}: ok: target {:?}", file.display(), def.name);
            println!("  workloads: {}", def.workloads.join(", "));
            if !def.options.is_empty() {
                let options: Vec<String> = (def.options.iter())
                    .map(|(k, o)| format!("{k} (default {:?})", o.default))
                    .collect();
                println!("  options: {}", options.join(", "));
            }
            if !def.limits.is_empty() {
                for (fault, why) in &def.limits {
                    println!("  cannot take {fault}: {why}");
                }
            }
        }
    }
    Ok(EXIT_VALID)
}
