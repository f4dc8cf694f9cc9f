//! Installs the linker script every image is linked with, and checks that the app's build
//! asks for it: a kernel linked without it has no boot note and cannot boot.

use std::{env, fs, path::PathBuf};

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::write(out.join("unikernel.ld"), include_str!("unikernel.ld")).expect("write unikernel.ld");
    println!("cargo::rustc-link-search={}", out.display());
    println!("cargo::rerun-if-changed=unikernel.ld");
    println!("cargo::rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");

    if env::var("TARGET").as_deref() == Ok("x86_64-unknown-none") {
        let flags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
        let flags: Vec<&str> = flags.split('\x1f').collect();
        let has = |wanted: &str| flags.iter().any(|flag| flag.ends_with(wanted));
        if !has("link-arg=-Tunikernel.ld") || !has("relocation-model=static") {
            // One line cargo shows as the error, without a build-script panic around it.
            println!(
                "cargo::error=an image must be linked with unikernel's linker script: add \
                 `rustflags = [\"-C\", \"link-arg=-Tunikernel.ld\", \"-C\", \"relocation-model=static\"]` \
                 under `[target.x86_64-unknown-none]` in the app's .cargo/config.toml \
                 (`cargo uk new` writes it)"
            );
        }
    }
}
