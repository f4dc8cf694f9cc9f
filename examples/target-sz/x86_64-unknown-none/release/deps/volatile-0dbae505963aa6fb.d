/work/main/examples/target-sz/x86_64-unknown-none/release/deps/volatile-0dbae505963aa6fb.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/volatile-0.4.6/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/volatile-0.4.6/src/access.rs

/work/main/examples/target-sz/x86_64-unknown-none/release/deps/libvolatile-0dbae505963aa6fb.rlib: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/volatile-0.4.6/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/volatile-0.4.6/src/access.rs

/work/main/examples/target-sz/x86_64-unknown-none/release/deps/libvolatile-0dbae505963aa6fb.rmeta: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/volatile-0.4.6/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/volatile-0.4.6/src/access.rs

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/volatile-0.4.6/src/lib.rs:
/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/volatile-0.4.6/src/access.rs:
