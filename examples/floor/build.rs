//! Installs the floor's linker script. The examples workspace links every member with
//! `-Tunikernel.ld` (examples/.cargo/config.toml), found on the linker's search path; the
//! floor does not depend on `unikernel`, so the only script of that name on its path is
//! this one, its own.

use std::{env, fs, path::PathBuf};

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::write(out.join("unikernel.ld"), include_str!("floor.ld")).expect("write the script");
    println!("cargo::rustc-link-search={}", out.display());
    println!("cargo::rerun-if-changed=floor.ld");
}
