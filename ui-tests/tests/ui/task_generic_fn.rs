use unikernel::prelude::*;

// The attribute cannot see `sample`; rustc's help (`sample::<T>`) is what to write, and
// the attribute takes that path.
#[unikernel(sched = rm, task(sample, period = "1 ms", wcet = "200 us"))]
fn main() {}

fn sample<T: Default>() {
    let _ = T::default();
}
