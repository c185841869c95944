//! The `traceless` command: audit, scan, report, mocks.

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(traceless::cli::main())
}
