/work/main/examples/target-sz/x86_64-unknown-none/release/deps/cfg_if-b133f63dcf03d8ea.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/cfg-if-1.0.5/src/lib.rs

/work/main/examples/target-sz/x86_64-unknown-none/release/deps/libcfg_if-b133f63dcf03d8ea.rlib: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/cfg-if-1.0.5/src/lib.rs

/work/main/examples/target-sz/x86_64-unknown-none/release/deps/libcfg_if-b133f63dcf03d8ea.rmeta: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/cfg-if-1.0.5/src/lib.rs

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/cfg-if-1.0.5/src/lib.rs:
