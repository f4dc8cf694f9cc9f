//! The boot timeline: when the kernel was entered, when each subsystem was ready and when
//! `main` started, as TSC stamps.
//!
//! ```ignore
//! for mark in unikernel::timeline::marks() {
//!     println!("{:>8} {}", mark.stage, mark.tsc);
//! }
//! ```

pub use unikernel_arch::timeline::{Mark, marks, tsc, tsc_hz};

/// Prints the timeline in the form the runner reads: `unikernel.timeline <stage> <tsc>`.
pub fn print() {
    unikernel_arch::timeline::for_each_mark(|mark| {
        unikernel_arch::serial::print(format_args!(
            "unikernel.timeline {} {}\n",
            mark.stage, mark.tsc
        ));
    });
}
