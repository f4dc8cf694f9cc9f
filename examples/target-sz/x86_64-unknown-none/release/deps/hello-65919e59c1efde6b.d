/work/main/examples/target-sz/x86_64-unknown-none/release/deps/hello-65919e59c1efde6b.d: hello/src/main.rs

/work/main/examples/target-sz/x86_64-unknown-none/release/deps/hello-65919e59c1efde6b: hello/src/main.rs

hello/src/main.rs:
