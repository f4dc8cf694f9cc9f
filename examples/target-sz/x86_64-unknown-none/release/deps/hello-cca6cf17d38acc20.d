/work/main/examples/target-sz/x86_64-unknown-none/release/deps/hello-cca6cf17d38acc20.d: hello/src/main.rs

/work/main/examples/target-sz/x86_64-unknown-none/release/deps/hello-cca6cf17d38acc20: hello/src/main.rs

hello/src/main.rs:
