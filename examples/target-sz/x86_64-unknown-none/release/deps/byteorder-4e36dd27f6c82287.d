/work/main/examples/target-sz/x86_64-unknown-none/release/deps/byteorder-4e36dd27f6c82287.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/byteorder-1.5.0/src/lib.rs

/work/main/examples/target-sz/x86_64-unknown-none/release/deps/libbyteorder-4e36dd27f6c82287.rlib: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/byteorder-1.5.0/src/lib.rs

/work/main/examples/target-sz/x86_64-unknown-none/release/deps/libbyteorder-4e36dd27f6c82287.rmeta: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/byteorder-1.5.0/src/lib.rs

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/byteorder-1.5.0/src/lib.rs:
