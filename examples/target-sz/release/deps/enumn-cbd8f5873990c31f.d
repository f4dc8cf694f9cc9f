/work/main/examples/target-sz/release/deps/enumn-cbd8f5873990c31f.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/enumn-0.1.14/src/lib.rs

/work/main/examples/target-sz/release/deps/libenumn-cbd8f5873990c31f.so: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/enumn-0.1.14/src/lib.rs

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/enumn-0.1.14/src/lib.rs:
