/work/main/examples/target-sz/x86_64-unknown-none/release/deps/bitflags-0d83ffb5e6fe3a85.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/bitflags-1.3.2/src/lib.rs

/work/main/examples/target-sz/x86_64-unknown-none/release/deps/libbitflags-0d83ffb5e6fe3a85.rlib: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/bitflags-1.3.2/src/lib.rs

/work/main/examples/target-sz/x86_64-unknown-none/release/deps/libbitflags-0d83ffb5e6fe3a85.rmeta: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/bitflags-1.3.2/src/lib.rs

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/bitflags-1.3.2/src/lib.rs:
