/work/main/examples/target-sz/release/deps/unikernel_macros-5c2c7e53b88b4568.d: /tmp/szwt/macros/src/lib.rs /tmp/szwt/macros/src/analysis/mod.rs /tmp/szwt/macros/src/analysis/big.rs /tmp/szwt/macros/src/duration.rs /tmp/szwt/macros/src/generate.rs /tmp/szwt/macros/src/hint.rs /tmp/szwt/macros/src/parse.rs /tmp/szwt/macros/src/quantity.rs /tmp/szwt/macros/src/registry.rs /tmp/szwt/macros/src/resolve.rs /tmp/szwt/macros/src/size.rs /tmp/szwt/macros/src/tasks.rs

/work/main/examples/target-sz/release/deps/libunikernel_macros-5c2c7e53b88b4568.so: /tmp/szwt/macros/src/lib.rs /tmp/szwt/macros/src/analysis/mod.rs /tmp/szwt/macros/src/analysis/big.rs /tmp/szwt/macros/src/duration.rs /tmp/szwt/macros/src/generate.rs /tmp/szwt/macros/src/hint.rs /tmp/szwt/macros/src/parse.rs /tmp/szwt/macros/src/quantity.rs /tmp/szwt/macros/src/registry.rs /tmp/szwt/macros/src/resolve.rs /tmp/szwt/macros/src/size.rs /tmp/szwt/macros/src/tasks.rs

/tmp/szwt/macros/src/lib.rs:
/tmp/szwt/macros/src/analysis/mod.rs:
/tmp/szwt/macros/src/analysis/big.rs:
/tmp/szwt/macros/src/duration.rs:
/tmp/szwt/macros/src/generate.rs:
/tmp/szwt/macros/src/hint.rs:
/tmp/szwt/macros/src/parse.rs:
/tmp/szwt/macros/src/quantity.rs:
/tmp/szwt/macros/src/registry.rs:
/tmp/szwt/macros/src/resolve.rs:
/tmp/szwt/macros/src/size.rs:
/tmp/szwt/macros/src/tasks.rs:
