/work/main/examples/target-sz/x86_64-unknown-none/release/deps/unikernel_heap-cb9f56b7d4fb52e6.d: /tmp/szwt/libs/heap/src/lib.rs

/work/main/examples/target-sz/x86_64-unknown-none/release/deps/libunikernel_heap-cb9f56b7d4fb52e6.rlib: /tmp/szwt/libs/heap/src/lib.rs

/work/main/examples/target-sz/x86_64-unknown-none/release/deps/libunikernel_heap-cb9f56b7d4fb52e6.rmeta: /tmp/szwt/libs/heap/src/lib.rs

/tmp/szwt/libs/heap/src/lib.rs:
