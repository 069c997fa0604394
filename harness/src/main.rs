//! `fissure`: Fissure's one command-line tool (the work is in the `harness` library).

/// mimalloc rather than the system allocator: a linearizability search creates and drops many
/// small model states, and glibc's malloc was a fifth of its time (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    harness::main()
}
