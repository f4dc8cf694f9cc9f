use unikernel::prelude::*;

#[unikernel(sched = rm, task(period = "1 ms", jobs::control, wcet = "200 us"))]
fn main() {}

mod jobs {
    pub fn control() {}
}
