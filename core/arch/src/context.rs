//! Execution contexts for threads: guarded stacks and the switch between contexts.
//!
//! A [`Context`] is a suspended execution: a stack pointer and the stack it points into.
//! It is resumed at most once, by value ([`Context::resume`]); the execution that resumes
//! it is itself suspended, and the resumed side receives that suspended execution as a
//! new `Context` (in [`Resumed::Suspended`]) to keep wherever it likes: a scheduler's
//! thread table. An execution that has ended ([`Context::finish`]) hands its stack over
//! instead ([`Resumed::Finished`]), since it can only be freed once nothing runs on it.
//! This "one-shot continuation" shape makes the switch itself safe to call: a context
//! cannot be resumed twice, nor resumed while it runs, nor outlive its stack.
//!
//! The switch saves only the callee-saved registers (context.s). A thread preempted by an
//! interrupt is suspended from inside the interrupt's dispatcher, whose entry saved every
//! register on the thread's stack; resuming it returns through the dispatcher and `iretq`.
//!
//! Switches run with interrupts disabled and each side restores its own interrupt flag
//! as it was when it was suspended. Each CPU switches among its own contexts: the
//! handoff between the two sides of a switch is per CPU, and a context is resumed on the
//! CPU it was suspended on (the scheduler never moves a thread).

use crate::acpi::MAX_CPUS;
use crate::memory::MemoryError;
use core::convert::Infallible;
use core::fmt;
use core::sync::atomic::{AtomicUsize, Ordering};

/// The name of `main`'s stack in fault reports.
pub const MAIN_STACK: &str = "the main stack";
/// The size of the stack the boot entry gives `main`, unless the app chooses one
/// (`#[unikernel(stack = "1 MiB")]`, [`run_main_on_new_stack`]).
pub const BOOT_STACK_SIZE: usize = 256 * 1024;
/// The size of the stack `main` runs on, for the stack-overflow report.
static MAIN_STACK_SIZE: AtomicUsize = AtomicUsize::new(BOOT_STACK_SIZE);

/// The size of the stack `main` runs on.
pub fn main_stack_size() -> usize {
    MAIN_STACK_SIZE.load(Ordering::Relaxed)
}

/// Leaves the boot stack for good: runs `start` (the rest of the boot, then `main`) on a
/// new stack of `size` bytes with a guard page, reported as [`MAIN_STACK`] when it
/// overflows. Returns only if the stack cannot be made.
pub fn run_main_on_new_stack(size: usize, start: fn() -> !) -> StackError {
    let stack = match Stack::new(size, MAIN_STACK) {
        Ok(stack) => stack,
        Err(error) => return error,
    };
    MAIN_STACK_SIZE.store(stack.size(), Ordering::Relaxed);
    // The boot stack's execution, suspended here, is never resumed: `start` ends the VM.
    let resumed = Context::new(stack, move |_boot| start()).resume();
    drop(resumed);
    unreachable!("the main stack's execution resumed the boot stack")
}

/// The most stacks that exist at once (free ones included): each has a guard page named
/// in fault reports.
pub const MAX_STACKS: usize = 128;
const PAGE: u64 = 4096;

/// Why a stack could not be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StackError {
    /// The VM's memory is exhausted.
    Memory(MemoryError),
    /// [`MAX_STACKS`] stacks exist already.
    TooMany,
}

impl fmt::Display for StackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Memory(error) => write!(f, "no memory for a thread stack: {error}"),
            Self::TooMany => write!(
                f,
                "no thread stack left: at most {MAX_STACKS} exist at once"
            ),
        }
    }
}

impl From<MemoryError> for StackError {
    fn from(error: MemoryError) -> Self {
        Self::Memory(error)
    }
}

/// A thread stack: memory of the VM with an unmapped guard page below it, so that an
/// overflow faults at once and is reported as a stack overflow of `name`.
/// Dropped stacks are kept and handed out again by [`Stack::new`].
#[derive(Debug)]
pub struct Stack {
    /// The lowest usable address (just above the guard page).
    bottom: u64,
    /// One past the highest usable address; page aligned.
    top: u64,
    /// The stack's entry in the guard table.
    slot: usize,
}

/// The guard page of one stack, for fault reports; all zeros when unused, so that the
/// table lives in .bss.
#[derive(Clone, Copy)]
#[cfg_attr(not(target_os = "none"), allow(dead_code))]
struct Guard {
    start: u64,
    name: Option<&'static str>,
}

/// The guard pages of thread stacks. Taken with interrupts disabled.
static GUARDS: spin::Mutex<[Guard; MAX_STACKS]> = spin::Mutex::new(
    [Guard {
        start: 0,
        name: None,
    }; MAX_STACKS],
);
/// Stacks no longer in use. Taken with interrupts disabled.
static FREE: spin::Mutex<[Option<(u64, u64, usize)>; MAX_STACKS]> =
    spin::Mutex::new([None; MAX_STACKS]);

impl Stack {
    /// A stack of at least `size` bytes (whole pages) whose overflow is reported as one of
    /// `name` ("the stack of a spawned thread"). Reuses a dropped stack of at least that
    /// size and at most twice it where there is one.
    pub fn new(size: usize, name: &'static str) -> Result<Stack, StackError> {
        let size = (size as u64).max(PAGE).next_multiple_of(PAGE);
        crate::interrupts::without(|| {
            let reused = {
                let mut free = FREE.lock();
                let best = free
                    .iter()
                    .enumerate()
                    .filter_map(|(i, entry)| entry.map(|(bottom, top, _)| (i, top - bottom)))
                    .filter(|&(_, have)| have >= size && have <= 2 * size)
                    .min_by_key(|&(_, have)| have)
                    .map(|(i, _)| i);
                best.and_then(|i| free[i].take())
            };
            if let Some((bottom, top, slot)) = reused {
                GUARDS.lock()[slot].name = Some(name);
                return Ok(Stack { bottom, top, slot });
            }
            let mut guards = GUARDS.lock();
            let slot = guards
                .iter()
                .position(|guard| guard.name.is_none())
                .ok_or(StackError::TooMany)?;
            let memory = crate::memory::allocate((size + PAGE) as usize)?;
            let guard = memory.as_ptr() as u64;
            #[cfg(target_os = "none")]
            crate::paging::unmap_page(guard)?;
            guards[slot] = Guard {
                start: guard,
                name: Some(name),
            };
            Ok(Stack {
                bottom: guard + PAGE,
                top: guard + PAGE + size,
                slot,
            })
        })
    }

    /// The usable size in bytes.
    pub fn size(&self) -> usize {
        (self.top - self.bottom) as usize
    }

    /// The usable range: `[bottom, top)`.
    pub fn range(&self) -> core::ops::Range<u64> {
        self.bottom..self.top
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        crate::interrupts::without(|| {
            let mut free = FREE.lock();
            // With no room left the stack is leaked: its guard page stays unmapped.
            if let Some(entry) = free.iter_mut().find(|entry| entry.is_none()) {
                *entry = Some((self.bottom, self.top, self.slot));
                GUARDS.lock()[self.slot].name = Some("a free thread stack");
            }
        });
    }
}

/// Calls `f` with each thread stack's guard page, for fault reports. Skips them if the
/// table is being changed (the fault happened inside `Stack::new` or a drop).
#[cfg(target_os = "none")]
pub(crate) fn for_each_guard(mut f: impl FnMut(crate::fault::Area)) {
    if let Some(guards) = GUARDS.try_lock() {
        for guard in guards.iter() {
            if let Some(name) = guard.name {
                f(crate::fault::Area {
                    name,
                    start: guard.start,
                    end: guard.start + PAGE,
                    is_stack_guard: true,
                });
            }
        }
    }
}

/// A suspended execution. Resuming it consumes it.
#[derive(Debug)]
pub struct Context {
    rsp: u64,
    /// `None` for the boot stack, which `main` runs on.
    stack: Option<Stack>,
}

/// What the execution that resumed us left behind.
#[derive(Debug)]
pub enum Resumed {
    /// It was suspended: resuming this continues it.
    Suspended(Context),
    /// It ended ([`Context::finish`]); its stack (`None`: the boot stack) is free.
    Finished(Option<Stack>),
}

/// Set by the side that switches, read by the side that is resumed; only touched with
/// interrupts disabled, on the CPU it belongs to.
struct Handoff {
    rsp: u64,
    stack: Option<Stack>,
    finished: bool,
}

/// One handoff per CPU, indexed by [`crate::smp::this_cpu`].
static mut HANDOFF: [Handoff; MAX_CPUS] = [const {
    Handoff {
        rsp: 0,
        stack: None,
        finished: false,
    }
}; MAX_CPUS];
/// The stack of the running execution of each CPU (`None`: the CPU's boot stack).
#[cfg(target_os = "none")]
static mut CURRENT: [Option<Stack>; MAX_CPUS] = [const { None }; MAX_CPUS];

/// This CPU's handoff.
fn handoff() -> *mut Handoff {
    let cpu = crate::smp::this_cpu();
    // SAFETY: a raw pointer to an element, no reference made; `cpu` < MAX_CPUS.
    unsafe { (&raw mut HANDOFF).cast::<Handoff>().add(cpu) }
}

/// This CPU's running stack.
#[cfg(target_os = "none")]
fn current() -> *mut Option<Stack> {
    let cpu = crate::smp::this_cpu();
    // SAFETY: a raw pointer to an element, no reference made; `cpu` < MAX_CPUS.
    unsafe { (&raw mut CURRENT).cast::<Option<Stack>>().add(cpu) }
}

/// Takes what the switch that resumed us left. Interrupts must be disabled.
fn take_handoff() -> Resumed {
    let handoff = handoff();
    // SAFETY: this CPU's HANDOFF is only accessed with interrupts disabled on this CPU, by
    // the two sides of a switch one after the other.
    let (rsp, stack, finished) =
        unsafe { ((*handoff).rsp, (*handoff).stack.take(), (*handoff).finished) };
    if finished {
        Resumed::Finished(stack)
    } else {
        Resumed::Suspended(Context { rsp, stack })
    }
}

/// The layout of a new context's stack, below the closure: what `unikernel_context_switch`
/// pops, then its return address.
const START_FRAME: u64 = 7 * 8;

impl Context {
    /// A new execution on `stack` that runs `f`. `f` starts with interrupts disabled and
    /// receives what the execution that first resumed it left behind. It cannot return
    /// (`Infallible` has no value): it ends with [`Context::finish`], whose `!` converts.
    ///
    /// # Panics
    /// If `f` takes more than half the stack.
    pub fn new<F: FnOnce(Resumed) -> Infallible + Send + 'static>(stack: Stack, f: F) -> Context {
        assert!(
            size_of::<F>() as u64 + START_FRAME + 64 <= (stack.top - stack.bottom) / 2,
            "a thread's closure of {} bytes does not fit its stack of {} bytes",
            size_of::<F>(),
            stack.top - stack.bottom
        );
        let align = align_of::<F>().max(16) as u64;
        let closure = (stack.top - size_of::<F>() as u64) & !(align - 1);
        // After the pops and the `ret`, rsp is `closure`: 16-byte aligned, as
        // unikernel_context_start needs for its call.
        let frame = closure - START_FRAME;
        #[cfg(target_os = "none")]
        // SAFETY: the stack is owned by this context and nothing runs on it; `closure` and
        // `frame` lie inside it (checked above), `closure` aligned for F, `frame` for u64.
        unsafe {
            core::ptr::write(closure as *mut F, f);
            let words = frame as *mut u64;
            let start: extern "C" fn(*mut F) -> ! = start::<F>;
            let values = [
                0,                     // r15
                0,                     // r14
                closure,               // r13: start's argument
                start as usize as u64, // r12: the function unikernel_context_start calls
                0,                     // rbx
                0,                     // rbp
                target::context_start(),
            ];
            for (i, value) in values.into_iter().enumerate() {
                words.add(i).write(value);
            }
        }
        #[cfg(not(target_os = "none"))]
        drop(f);
        Context {
            rsp: frame,
            stack: Some(stack),
        }
    }

    /// Suspends the running execution and resumes this one. Returns when something resumes
    /// the suspended execution, with what that left behind.
    pub fn resume(self) -> Resumed {
        let were_enabled = crate::interrupts::are_enabled();
        crate::interrupts::disable();
        let Context { rsp, stack } = self;
        #[cfg(target_os = "none")]
        // SAFETY: interrupts are disabled and this CPU's CURRENT and HANDOFF are touched by
        // this CPU only, so nothing else touches them until the resumed side has taken the
        // handoff. `rsp` is the stack pointer of a suspended execution of this CPU (a
        // Context is only made by `new` or by a switch, and consumed when resumed), whose
        // stack is alive: it moves into CURRENT.
        unsafe {
            let mine = current().replace(stack);
            let handoff = handoff();
            (*handoff).stack = mine;
            (*handoff).finished = false;
            target::switch(&raw mut (*handoff).rsp, rsp);
        }
        #[cfg(not(target_os = "none"))]
        let _ = (rsp, stack);
        let resumed = take_handoff();
        if were_enabled {
            crate::interrupts::enable();
        }
        resumed
    }

    /// Ends the running execution and resumes this one, which receives the ended
    /// execution's stack in [`Resumed::Finished`].
    pub fn finish(self) -> ! {
        crate::interrupts::disable();
        let Context { rsp, stack } = self;
        #[cfg(target_os = "none")]
        // SAFETY: as in `resume`. The stack we run on is handed over, and freed by the
        // resumed side only once we no longer run on it; the switch never comes back.
        unsafe {
            let mine = current().replace(stack);
            let handoff = handoff();
            (*handoff).stack = mine;
            (*handoff).finished = true;
            let mut discarded = 0;
            target::switch(&raw mut discarded, rsp);
        }
        #[cfg(not(target_os = "none"))]
        let _ = (rsp, stack);
        unreachable!("a finished context was resumed")
    }
}

/// The first Rust code of a new context.
#[cfg_attr(not(target_os = "none"), allow(dead_code))]
extern "C" fn start<F: FnOnce(Resumed) -> Infallible>(closure: *mut F) -> ! {
    // SAFETY: `closure` is where `Context::new` wrote the F; it is read once, here.
    let f = unsafe { core::ptr::read(closure) };
    match f(take_handoff()) {}
}

#[cfg(target_os = "none")]
mod target {
    core::arch::global_asm!(include_str!("context.s"));

    unsafe extern "C" {
        fn unikernel_context_switch(save: *mut u64, next: u64);
        fn unikernel_context_start();
    }

    /// # Safety
    /// Interrupts disabled; `next` is the stack pointer of a suspended context.
    pub(super) unsafe fn switch(save: *mut u64, next: u64) {
        // SAFETY: forwarded to the caller.
        unsafe { unikernel_context_switch(save, next) }
    }

    pub(super) fn context_start() -> u64 {
        unikernel_context_start as *const () as u64
    }
}
