//! The `keyrelay` command.

use std::process::ExitCode;

fn main() -> ExitCode {
    keyrelay::cli::main()
}
