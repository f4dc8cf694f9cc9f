//! The first app: a console, a heap, and the collections that come with it.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;
use unikernel::prelude::*;

#[unikernel(console, heap = "1 MiB")]
fn main() -> ExitCode {
    println!("hello from a unikernel");

    let squares: Vec<u64> = (1..=10).map(|n| n * n).collect();
    let mut words = BTreeMap::new();
    for word in "the quick brown fox jumps over the lazy dog the end".split(' ') {
        *words.entry(word).or_insert(0) += 1;
    }
    let mut summary = String::new();
    for (word, count) in &words {
        write!(summary, "{word}={count} ").unwrap();
    }
    println!("squares: {squares:?}");
    println!("words: {}", summary.trim_end());
    ExitCode::SUCCESS
}
