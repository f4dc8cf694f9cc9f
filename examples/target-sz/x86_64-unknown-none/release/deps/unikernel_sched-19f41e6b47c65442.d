/work/main/examples/target-sz/x86_64-unknown-none/release/deps/unikernel_sched-19f41e6b47c65442.d: /tmp/szwt/libs/sched/src/lib.rs /tmp/szwt/libs/sched/src/rank.rs /tmp/szwt/libs/sched/src/report.rs /tmp/szwt/libs/sched/src/state.rs /tmp/szwt/libs/sched/src/sync.rs /tmp/szwt/libs/sched/src/task.rs

/work/main/examples/target-sz/x86_64-unknown-none/release/deps/libunikernel_sched-19f41e6b47c65442.rlib: /tmp/szwt/libs/sched/src/lib.rs /tmp/szwt/libs/sched/src/rank.rs /tmp/szwt/libs/sched/src/report.rs /tmp/szwt/libs/sched/src/state.rs /tmp/szwt/libs/sched/src/sync.rs /tmp/szwt/libs/sched/src/task.rs

/work/main/examples/target-sz/x86_64-unknown-none/release/deps/libunikernel_sched-19f41e6b47c65442.rmeta: /tmp/szwt/libs/sched/src/lib.rs /tmp/szwt/libs/sched/src/rank.rs /tmp/szwt/libs/sched/src/report.rs /tmp/szwt/libs/sched/src/state.rs /tmp/szwt/libs/sched/src/sync.rs /tmp/szwt/libs/sched/src/task.rs

/tmp/szwt/libs/sched/src/lib.rs:
/tmp/szwt/libs/sched/src/rank.rs:
/tmp/szwt/libs/sched/src/report.rs:
/tmp/szwt/libs/sched/src/state.rs:
/tmp/szwt/libs/sched/src/sync.rs:
/tmp/szwt/libs/sched/src/task.rs:
