//! Every compile error `#[unikernel]` can emit, one case per file in `tests/ui/`, with the
//! expected compiler output next to it; and apps that must compile, in `tests/pass/`. After
//! a change, regenerate with `TRYBUILD=overwrite cargo test -p ui-tests` and read every
//! changed `.stderr`: each must show our message at the right token, and nothing confusing
//! after it.
//!
//! The cases are host binaries: on the host the attribute's expansion type-checks the boot
//! code and provides a `main` that explains the app runs in a VM.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/pass/*.rs");
    cases.compile_fail("tests/ui/*.rs");
}
