/work/main/examples/target-sz/x86_64-unknown-none/release/deps/linked_list_allocator-37a5812a538319ee.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/linked_list_allocator-0.10.6/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/linked_list_allocator-0.10.6/src/hole.rs

/work/main/examples/target-sz/x86_64-unknown-none/release/deps/liblinked_list_allocator-37a5812a538319ee.rlib: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/linked_list_allocator-0.10.6/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/linked_list_allocator-0.10.6/src/hole.rs

/work/main/examples/target-sz/x86_64-unknown-none/release/deps/liblinked_list_allocator-37a5812a538319ee.rmeta: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/linked_list_allocator-0.10.6/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/linked_list_allocator-0.10.6/src/hole.rs

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/linked_list_allocator-0.10.6/src/lib.rs:
/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/linked_list_allocator-0.10.6/src/hole.rs:
