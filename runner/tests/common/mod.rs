//! What the boot-test files share: whether the tests that need KVM may run.

/// The variable that turns a skipped KVM test into a failed one: `UK_REQUIRE_KVM=1`
/// (`.ci/run` sets it where `/dev/kvm` exists).
pub const REQUIRE_KVM: &str = "UK_REQUIRE_KVM";

/// Whether `/dev/kvm` can be used. Where it cannot, a test that needs it notes that it is
/// skipped and passes, unless `UK_REQUIRE_KVM=1`: then it fails, so that a broken KVM
/// cannot pass for a missing one.
///
/// ```ignore
/// if !common::kvm_usable() {
///     return;
/// }
/// ```
pub fn kvm_usable() -> bool {
    match runner::qemu::probe_dev_kvm() {
        Ok(()) => true,
        Err(reason) if kvm_required() => {
            panic!("/dev/kvm is not usable here ({reason}), and {REQUIRE_KVM}=1 requires it")
        }
        Err(reason) => {
            eprintln!(
                "skipped: /dev/kvm is not usable here ({reason}); {REQUIRE_KVM}=1 makes this a failure"
            );
            false
        }
    }
}

/// Whether `UK_REQUIRE_KVM=1`.
fn kvm_required() -> bool {
    std::env::var_os(REQUIRE_KVM).is_some_and(|value| value == "1")
}
