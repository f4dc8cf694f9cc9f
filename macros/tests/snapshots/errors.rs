// The expansion of:
//
// #[unikernel(consle, heap = "1 MB")]
// fn main(console: Console) -> ExitCode {
//     ExitCode::SUCCESS
// }

::core::compile_error! {
    "unknown subsystem `consle`; did you mean `console`?"
}
::core::compile_error! {
    "unknown size unit `MB`; did you mean `MiB`?"
}
::core::compile_error! {
    "`Console` is the handle of `console`, which is not declared; add `console` to `#[unikernel(...)]`"
}
#[allow(dead_code, unused_variables)]
fn __unikernel_user_main(console: Console) -> ExitCode {
    ExitCode::SUCCESS
}
#[cfg(not(target_os = "none"))]
fn main() {}
