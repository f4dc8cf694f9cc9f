/work/main/examples/target-sz/x86_64-unknown-none/release/deps/unikernel_net-3ca529b7d46af52e.d: /tmp/szwt/libs/net/src/lib.rs /tmp/szwt/libs/net/src/config.rs /tmp/szwt/libs/net/src/device.rs /tmp/szwt/libs/net/src/discover.rs /tmp/szwt/libs/net/src/hal.rs /tmp/szwt/libs/net/src/nic.rs /tmp/szwt/libs/net/src/platform.rs /tmp/szwt/libs/net/src/stack.rs /tmp/szwt/libs/net/src/tcp.rs /tmp/szwt/libs/net/src/udp.rs

/work/main/examples/target-sz/x86_64-unknown-none/release/deps/libunikernel_net-3ca529b7d46af52e.rlib: /tmp/szwt/libs/net/src/lib.rs /tmp/szwt/libs/net/src/config.rs /tmp/szwt/libs/net/src/device.rs /tmp/szwt/libs/net/src/discover.rs /tmp/szwt/libs/net/src/hal.rs /tmp/szwt/libs/net/src/nic.rs /tmp/szwt/libs/net/src/platform.rs /tmp/szwt/libs/net/src/stack.rs /tmp/szwt/libs/net/src/tcp.rs /tmp/szwt/libs/net/src/udp.rs

/work/main/examples/target-sz/x86_64-unknown-none/release/deps/libunikernel_net-3ca529b7d46af52e.rmeta: /tmp/szwt/libs/net/src/lib.rs /tmp/szwt/libs/net/src/config.rs /tmp/szwt/libs/net/src/device.rs /tmp/szwt/libs/net/src/discover.rs /tmp/szwt/libs/net/src/hal.rs /tmp/szwt/libs/net/src/nic.rs /tmp/szwt/libs/net/src/platform.rs /tmp/szwt/libs/net/src/stack.rs /tmp/szwt/libs/net/src/tcp.rs /tmp/szwt/libs/net/src/udp.rs

/tmp/szwt/libs/net/src/lib.rs:
/tmp/szwt/libs/net/src/config.rs:
/tmp/szwt/libs/net/src/device.rs:
/tmp/szwt/libs/net/src/discover.rs:
/tmp/szwt/libs/net/src/hal.rs:
/tmp/szwt/libs/net/src/nic.rs:
/tmp/szwt/libs/net/src/platform.rs:
/tmp/szwt/libs/net/src/stack.rs:
/tmp/szwt/libs/net/src/tcp.rs:
/tmp/szwt/libs/net/src/udp.rs:
