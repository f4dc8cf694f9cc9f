//! Reports the VMM the kernel detected and, under the monitor, reads its clock page: the
//! first read registers the page (one exit), the rest read it and the TSC without exits.
#![no_std]
#![no_main]

use unikernel::prelude::*;
use unikernel_arch::hypervisor;

#[unikernel(console)]
fn main() -> ExitCode {
    println!("vmm: {:?}", hypervisor::vmm());
    let (Some(t0), Some(wall), Some(hz)) = (
        hypervisor::monotonic_ns(),
        hypervisor::wall_clock_ns(),
        hypervisor::tsc_hz(),
    ) else {
        println!("clock: none");
        return ExitCode::SUCCESS;
    };
    // Read the clock until it has advanced by 2 ms.
    let mut t1 = t0;
    let mut reads = 0u32;
    while t1 < t0 + 2_000_000 && reads < 1_000_000 {
        let now = hypervisor::monotonic_ns().unwrap_or(0);
        if now < t1 {
            println!("clock: went backwards from {t1} to {now}");
            return ExitCode::FAILURE;
        }
        t1 = now;
        reads += 1;
    }
    println!("clock: t0={t0} t1={t1} reads={reads} wall={wall} tsc_hz={hz}");
    ExitCode::SUCCESS
}
