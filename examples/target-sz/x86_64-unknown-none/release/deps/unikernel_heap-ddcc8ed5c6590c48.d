/work/main/examples/target-sz/x86_64-unknown-none/release/deps/unikernel_heap-ddcc8ed5c6590c48.d: /tmp/szwt/libs/heap/src/lib.rs

/work/main/examples/target-sz/x86_64-unknown-none/release/deps/libunikernel_heap-ddcc8ed5c6590c48.rlib: /tmp/szwt/libs/heap/src/lib.rs

/work/main/examples/target-sz/x86_64-unknown-none/release/deps/libunikernel_heap-ddcc8ed5c6590c48.rmeta: /tmp/szwt/libs/heap/src/lib.rs

/tmp/szwt/libs/heap/src/lib.rs:
