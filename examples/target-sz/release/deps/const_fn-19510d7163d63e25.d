/work/main/examples/target-sz/release/deps/const_fn-19510d7163d63e25.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/const_fn-0.4.12/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/const_fn-0.4.12/src/error.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/const_fn-0.4.12/src/ast.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/const_fn-0.4.12/src/iter.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/const_fn-0.4.12/src/to_tokens.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/const_fn-0.4.12/src/utils.rs /work/main/examples/target-sz/release/build/const_fn-00068d99ae40ad47/out/version

/work/main/examples/target-sz/release/deps/libconst_fn-19510d7163d63e25.so: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/const_fn-0.4.12/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/const_fn-0.4.12/src/error.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/const_fn-0.4.12/src/ast.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/const_fn-0.4.12/src/iter.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/const_fn-0.4.12/src/to_tokens.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/const_fn-0.4.12/src/utils.rs /work/main/examples/target-sz/release/build/const_fn-00068d99ae40ad47/out/version

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/const_fn-0.4.12/src/lib.rs:
/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/const_fn-0.4.12/src/error.rs:
/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/const_fn-0.4.12/src/ast.rs:
/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/const_fn-0.4.12/src/iter.rs:
/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/const_fn-0.4.12/src/to_tokens.rs:
/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/const_fn-0.4.12/src/utils.rs:
/work/main/examples/target-sz/release/build/const_fn-00068d99ae40ad47/out/version:

# env-dep:OUT_DIR=/work/main/examples/target-sz/release/build/const_fn-00068d99ae40ad47/out
