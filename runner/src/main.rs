//! `runner`: see `runner help`.

fn main() -> std::process::ExitCode {
    let code = runner::cli::main(std::env::args_os().skip(1).collect());
    std::process::ExitCode::from(u8::try_from(code).unwrap_or(1))
}
