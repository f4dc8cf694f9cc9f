/work/main/examples/target-sz/x86_64-unknown-none/release/deps/unikernel_args-d86a8616302e19a7.d: /tmp/szwt/libs/args/src/lib.rs

/work/main/examples/target-sz/x86_64-unknown-none/release/deps/libunikernel_args-d86a8616302e19a7.rlib: /tmp/szwt/libs/args/src/lib.rs

/work/main/examples/target-sz/x86_64-unknown-none/release/deps/libunikernel_args-d86a8616302e19a7.rmeta: /tmp/szwt/libs/args/src/lib.rs

/tmp/szwt/libs/args/src/lib.rs:
