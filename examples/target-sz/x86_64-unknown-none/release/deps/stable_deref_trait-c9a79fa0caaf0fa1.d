/work/main/examples/target-sz/x86_64-unknown-none/release/deps/stable_deref_trait-c9a79fa0caaf0fa1.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/stable_deref_trait-1.2.1/src/lib.rs

/work/main/examples/target-sz/x86_64-unknown-none/release/deps/libstable_deref_trait-c9a79fa0caaf0fa1.rlib: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/stable_deref_trait-1.2.1/src/lib.rs

/work/main/examples/target-sz/x86_64-unknown-none/release/deps/libstable_deref_trait-c9a79fa0caaf0fa1.rmeta: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/stable_deref_trait-1.2.1/src/lib.rs

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/stable_deref_trait-1.2.1/src/lib.rs:
