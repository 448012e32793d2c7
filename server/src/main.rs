//! The `opsdeck` command: a thin entry point. Everything lives in the library.

fn main() -> std::process::ExitCode {
    opsdeck::cli::main()
}
