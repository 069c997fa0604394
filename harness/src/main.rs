//! `fissure`: Fissure's one command-line tool (the work is in the `harness` library).

fn main() -> std::process::ExitCode {
    harness::main()
}
