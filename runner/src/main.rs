//! `cargo uk`: see `cargo uk help`.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    // A bug in the runner must not exit with 101, the guest's panic status: report it and
    // exit with 1, the runner's own failure.
    let code = std::panic::catch_unwind(|| runner::cli::main(std::env::args_os().collect()))
        .unwrap_or_else(|_| {
            eprintln!("cargo uk: internal error (the panic above is a bug in the runner)");
            1
        });
    std::process::ExitCode::from(u8::try_from(code).unwrap_or(1))
}
