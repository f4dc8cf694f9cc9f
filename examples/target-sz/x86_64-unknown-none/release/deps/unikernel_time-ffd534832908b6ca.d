/work/main/examples/target-sz/x86_64-unknown-none/release/deps/unikernel_time-ffd534832908b6ca.d: /tmp/szwt/libs/time/src/lib.rs /tmp/szwt/libs/time/src/histogram.rs /tmp/szwt/libs/time/src/kvmclock.rs /tmp/szwt/libs/time/src/pit.rs /tmp/szwt/libs/time/src/rtc.rs /tmp/szwt/libs/time/src/scale.rs

/work/main/examples/target-sz/x86_64-unknown-none/release/deps/libunikernel_time-ffd534832908b6ca.rlib: /tmp/szwt/libs/time/src/lib.rs /tmp/szwt/libs/time/src/histogram.rs /tmp/szwt/libs/time/src/kvmclock.rs /tmp/szwt/libs/time/src/pit.rs /tmp/szwt/libs/time/src/rtc.rs /tmp/szwt/libs/time/src/scale.rs

/work/main/examples/target-sz/x86_64-unknown-none/release/deps/libunikernel_time-ffd534832908b6ca.rmeta: /tmp/szwt/libs/time/src/lib.rs /tmp/szwt/libs/time/src/histogram.rs /tmp/szwt/libs/time/src/kvmclock.rs /tmp/szwt/libs/time/src/pit.rs /tmp/szwt/libs/time/src/rtc.rs /tmp/szwt/libs/time/src/scale.rs

/tmp/szwt/libs/time/src/lib.rs:
/tmp/szwt/libs/time/src/histogram.rs:
/tmp/szwt/libs/time/src/kvmclock.rs:
/tmp/szwt/libs/time/src/pit.rs:
/tmp/szwt/libs/time/src/rtc.rs:
/tmp/szwt/libs/time/src/scale.rs:
