/work/main/examples/target-sz/x86_64-unknown-none/release/deps/unikernel-4b6de6adbfd15050.d: /tmp/szwt/core/src/lib.rs /tmp/szwt/core/src/exit.rs /tmp/szwt/core/src/timeline.rs /tmp/szwt/core/src/__private.rs

/work/main/examples/target-sz/x86_64-unknown-none/release/deps/libunikernel-4b6de6adbfd15050.rlib: /tmp/szwt/core/src/lib.rs /tmp/szwt/core/src/exit.rs /tmp/szwt/core/src/timeline.rs /tmp/szwt/core/src/__private.rs

/work/main/examples/target-sz/x86_64-unknown-none/release/deps/libunikernel-4b6de6adbfd15050.rmeta: /tmp/szwt/core/src/lib.rs /tmp/szwt/core/src/exit.rs /tmp/szwt/core/src/timeline.rs /tmp/szwt/core/src/__private.rs

/tmp/szwt/core/src/lib.rs:
/tmp/szwt/core/src/exit.rs:
/tmp/szwt/core/src/timeline.rs:
/tmp/szwt/core/src/__private.rs:
