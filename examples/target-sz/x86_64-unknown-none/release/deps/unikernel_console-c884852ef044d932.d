/work/main/examples/target-sz/x86_64-unknown-none/release/deps/unikernel_console-c884852ef044d932.d: /tmp/szwt/libs/console/src/lib.rs

/work/main/examples/target-sz/x86_64-unknown-none/release/deps/libunikernel_console-c884852ef044d932.rlib: /tmp/szwt/libs/console/src/lib.rs

/work/main/examples/target-sz/x86_64-unknown-none/release/deps/libunikernel_console-c884852ef044d932.rmeta: /tmp/szwt/libs/console/src/lib.rs

/tmp/szwt/libs/console/src/lib.rs:
