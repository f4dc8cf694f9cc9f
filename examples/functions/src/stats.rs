//! The `stats` function's work, in plain Rust over `alloc`: `benches/function-baseline`
//! includes this file (`#[path]`), so that the benchmark's baselines run the same code.

use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// The request body: `{"numbers": [3, 1, 2]}`.
#[derive(Deserialize)]
pub struct Numbers {
    pub numbers: Vec<i64>,
}

/// The response body: count, sum, min, max and the sorted list.
#[derive(Serialize)]
pub struct Summary {
    count: usize,
    sum: i64,
    min: Option<i64>,
    max: Option<i64>,
    sorted: Vec<i64>,
}

impl Summary {
    pub fn of(mut numbers: Vec<i64>) -> Self {
        numbers.sort_unstable();
        Summary {
            count: numbers.len(),
            sum: numbers.iter().sum(),
            min: numbers.first().copied(),
            max: numbers.last().copied(),
            sorted: numbers,
        }
    }
}
