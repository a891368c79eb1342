//! The `keyrelay` command.

use std::process::ExitCode;

// mimalloc: the proxy allocates per request (headers, futures); glibc's
// allocator costs measurably more under concurrent load (bench/run.sh).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    keyrelay::cli::main()
}
