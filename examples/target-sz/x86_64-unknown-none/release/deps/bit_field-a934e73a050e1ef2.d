/work/main/examples/target-sz/x86_64-unknown-none/release/deps/bit_field-a934e73a050e1ef2.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/bit_field-0.10.3/src/lib.rs

/work/main/examples/target-sz/x86_64-unknown-none/release/deps/libbit_field-a934e73a050e1ef2.rlib: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/bit_field-0.10.3/src/lib.rs

/work/main/examples/target-sz/x86_64-unknown-none/release/deps/libbit_field-a934e73a050e1ef2.rmeta: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/bit_field-0.10.3/src/lib.rs

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/bit_field-0.10.3/src/lib.rs:
