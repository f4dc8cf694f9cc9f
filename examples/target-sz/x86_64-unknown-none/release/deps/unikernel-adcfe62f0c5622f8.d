/work/main/examples/target-sz/x86_64-unknown-none/release/deps/unikernel-adcfe62f0c5622f8.d: /tmp/szwt/core/src/lib.rs /tmp/szwt/core/src/exit.rs /tmp/szwt/core/src/timeline.rs /tmp/szwt/core/src/__private.rs

/work/main/examples/target-sz/x86_64-unknown-none/release/deps/libunikernel-adcfe62f0c5622f8.rlib: /tmp/szwt/core/src/lib.rs /tmp/szwt/core/src/exit.rs /tmp/szwt/core/src/timeline.rs /tmp/szwt/core/src/__private.rs

/work/main/examples/target-sz/x86_64-unknown-none/release/deps/libunikernel-adcfe62f0c5622f8.rmeta: /tmp/szwt/core/src/lib.rs /tmp/szwt/core/src/exit.rs /tmp/szwt/core/src/timeline.rs /tmp/szwt/core/src/__private.rs

/tmp/szwt/core/src/lib.rs:
/tmp/szwt/core/src/exit.rs:
/tmp/szwt/core/src/timeline.rs:
/tmp/szwt/core/src/__private.rs:
