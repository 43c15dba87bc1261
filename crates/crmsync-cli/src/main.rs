//! The `crmsync` binary. See `crmsync --help` and docs/cli.md.

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(crmsync_cli::main_entry())
}
