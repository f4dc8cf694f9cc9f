//! gdb on the monitor: a gdb remote-protocol server (the `gdbstub` crate) over KVM's
//! guest-debug interface (KVM_SET_GUEST_DEBUG): breakpoints, single steps, registers and
//! memory of the one vCPU.
//!
//! The guest waits at its first instruction until gdb attaches. Breakpoints, `break` and
//! `hbreak` alike, are the CPU's four debug registers (DR0-DR3, break on execution): a
//! software breakpoint would write `int3` into the guest's code, which a software-emulated
//! KVM cannot run, and the image's code is mapped read-only. The image is identity
//! mapped, so gdb's addresses are guest-physical addresses. A running guest is stopped by
//! a breakpoint, a step, its exit, the timeout, or gdb's Ctrl-C: while the vCPU runs, a
//! watcher thread polls gdb's socket, and the interrupt byte (0x03) kicks the vCPU out of
//! KVM_RUN, which gdb sees as a stop by SIGINT.

use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use gdbstub::common::Signal;
use gdbstub::conn::{Connection, ConnectionExt};
use gdbstub::stub::{DisconnectReason, GdbStub, SingleThreadStopReason, run_blocking};
use gdbstub::target::ext::base::BaseOps;
use gdbstub::target::ext::base::singlethread::{
    SingleThreadBase, SingleThreadResume, SingleThreadResumeOps, SingleThreadSingleStep,
    SingleThreadSingleStepOps,
};
use gdbstub::target::ext::breakpoints::{
    Breakpoints, BreakpointsOps, HwBreakpoint, HwBreakpointOps, SwBreakpoint, SwBreakpointOps,
};
use gdbstub::target::{Target, TargetError, TargetResult};
use gdbstub_arch::x86::X86_64_SSE;
use gdbstub_arch::x86::reg::X86_64CoreRegs;
use kvm_bindings::{
    KVM_GUESTDBG_ENABLE, KVM_GUESTDBG_SINGLESTEP, KVM_GUESTDBG_USE_HW_BP, kvm_guest_debug,
};
use vm_memory::{Bytes, GuestAddress};

use crate::control::{self, Control};
use crate::error::{Error, Result};
use crate::image::Image;
use crate::vm::{Vm, VmConfig, VmExit, open_kvm};

/// The debug registers that hold breakpoint addresses (DR0-DR3).
const HW_BREAKPOINTS: usize = 4;

/// How a debugged boot ended: the guest's exit, or gdb leaving first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebugRun {
    pub exit: VmExit,
    /// gdb detached or killed the guest before it exited.
    pub gdb_left_first: bool,
}

/// Whether the stub can debug `kernel` with `config`: it serves one vCPU's registers and
/// breakpoints, so an image on several CPUs is refused (call it before telling anyone to
/// attach; [`serve`] checks it too).
pub fn check(kernel: &Path, config: &VmConfig) -> Result<()> {
    require_one_cpu(&Image::open(kernel)?, config)
}

fn require_one_cpu(image: &Image, config: &VmConfig) -> Result<()> {
    image.require_one_cpu(
        config.cpus,
        "the monitor's gdb stub",
        "debug it under QEMU (--vmm qemu) or with --cpus 1",
    )
}

/// Boots `kernel` stopped at its first instruction, serves one gdb connection on
/// `listener`, and runs the guest as gdb says; the guest is stopped after `timeout`
/// counted from the boot. Output goes to `output` as it comes.
pub fn serve(
    kernel: &Path,
    config: &VmConfig,
    listener: TcpListener,
    timeout: Duration,
    output: &mut dyn FnMut(&[u8]),
) -> Result<DebugRun> {
    let start = Instant::now();
    let image = Image::open(kernel)?;
    require_one_cpu(&image, config)?;
    let kvm = open_kvm()?;
    control::install_kick_handler();
    let vm = Vm::new(&kvm, &image, config)?;
    let control = Arc::new(Control::new());
    let watchdog = {
        let control = Arc::clone(&control);
        let thread = control::current_thread();
        let deadline = start + timeout;
        std::thread::Builder::new()
            .name("monitor-watchdog".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                if !control.wait_finished(deadline) {
                    control.stop_and_kick(thread);
                }
            })
            .map_err(Error::Watchdog)?
    };
    let (stream, _) = listener.accept().map_err(Error::Gdb)?;
    let _ = stream.set_nodelay(true);
    let running = Arc::new(AtomicBool::new(false));
    let session_over = Arc::new(AtomicBool::new(false));
    let interrupt_watcher = {
        let stream = stream.try_clone().map_err(Error::Gdb)?;
        let (control, running, session_over) = (
            Arc::clone(&control),
            Arc::clone(&running),
            Arc::clone(&session_over),
        );
        let thread = control::current_thread();
        std::thread::Builder::new()
            .name("monitor-gdb-interrupt".into())
            .stack_size(64 * 1024)
            .spawn(move || watch_for_interrupts(&stream, &control, thread, &running, &session_over))
            .map_err(Error::Watchdog)?
    };
    let mut target = DebuggedVm {
        vm,
        control: Arc::clone(&control),
        running,
        breakpoints: Vec::new(),
        single_step: false,
        output,
        exit: None,
    };
    let connection: Box<dyn ConnectionExt<Error = std::io::Error>> = Box::new(stream);
    let reason = GdbStub::new(connection).run_blocking::<EventLoop<'_>>(&mut target);
    session_over.store(true, Ordering::Relaxed);
    let _ = interrupt_watcher.join();
    let gdb_left_first = target.exit.is_none();
    if gdb_left_first && matches!(reason, Ok(DisconnectReason::Disconnect)) {
        // gdb detached: the guest runs on without breakpoints, to its end.
        target.breakpoints.clear();
        target.single_step = false;
        let _ = target.apply_debug();
        let _ = target.run();
    }
    control.finish();
    let _ = watchdog.join();
    let exit = match (target.exit.take(), reason) {
        (Some(exit), _) => exit,
        (None, Err(err)) => return Err(Error::Gdb(std::io::Error::other(err.to_string()))),
        (None, Ok(_)) => VmExit::Stopped,
    };
    Ok(DebugRun {
        exit,
        gdb_left_first,
    })
}

/// How often the watcher looks at gdb's socket while the guest runs: a Ctrl-C stops the
/// guest within this time.
const INTERRUPT_POLL: Duration = Duration::from_millis(10);

/// While the guest runs (`running`), waits for gdb to send something on `stream`, which
/// in all-stop mode is only the interrupt byte, and then kicks the vCPU on `thread` out of
/// KVM_RUN. The byte stays in the socket for gdbstub to read. Ends with the session.
fn watch_for_interrupts(
    stream: &TcpStream,
    control: &Control,
    thread: libc::pthread_t,
    running: &AtomicBool,
    session_over: &AtomicBool,
) {
    while !session_over.load(Ordering::Relaxed) {
        if !running.load(Ordering::Acquire) {
            std::thread::sleep(INTERRUPT_POLL);
            continue;
        }
        let mut socket = libc::pollfd {
            fd: stream.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: `socket` is one valid pollfd for the length of the call, and its fd is
        // `stream`'s, which this function borrows, so it stays open.
        let ready = unsafe { libc::poll(&mut socket, 1, INTERRUPT_POLL.as_millis() as i32) };
        if ready == 1 && socket.revents & libc::POLLIN != 0 {
            control.interrupt_and_kick(thread, || running.load(Ordering::Acquire));
            // gdb waits for the stop reply before it sends more: nothing to watch until the
            // guest runs again.
            while running.load(Ordering::Acquire) && !session_over.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
}

/// The VM as gdb sees it.
struct DebuggedVm<'a> {
    vm: Vm,
    control: Arc<Control>,
    /// The vCPU is in [`Vm::run`] for gdb: the interrupt watcher may kick it.
    running: Arc<AtomicBool>,
    breakpoints: Vec<u64>,
    single_step: bool,
    output: &'a mut dyn FnMut(&[u8]),
    /// How the guest ended, once it has.
    exit: Option<VmExit>,
}

/// What one run of the vCPU ended with.
enum Stop {
    /// A breakpoint or the end of a single step.
    Debug,
    /// gdb's interrupt byte arrived: the guest stopped where it was.
    Interrupted,
    /// The guest ended (or was stopped for good).
    Ended(VmExit),
}

impl DebuggedVm<'_> {
    /// Hands the breakpoints and the step flag to KVM.
    fn apply_debug(&self) -> std::io::Result<()> {
        self.vm
            .vcpu()
            .set_guest_debug(&guest_debug(self.single_step, &self.breakpoints))
            .map_err(|err| std::io::Error::from_raw_os_error(err.errno()))
    }

    fn run(&mut self) -> Stop {
        let output = &mut *self.output;
        // A request left from a stop that raced with it is not gdb's: gdb sends its
        // interrupt only after this run began, and the watcher only looks while it runs.
        self.control.take_interrupt();
        self.running.store(true, Ordering::Release);
        // The debugged guest's output always has a reader (the terminal).
        let exit = self.vm.run(&self.control, &mut |bytes: &[u8]| {
            output(bytes);
            true
        });
        self.running.store(false, Ordering::Release);
        let interrupted = self.control.take_interrupt();
        if exit == VmExit::Stopped && std::mem::take(&mut self.vm.debug_stop) {
            Stop::Debug
        } else if exit == VmExit::Stopped && interrupted && !self.control.stop_requested() {
            Stop::Interrupted
        } else {
            Stop::Ended(exit)
        }
    }

    /// Runs as gdb asked: one instruction, or on to a breakpoint. A continue from a
    /// breakpoint's own address first steps over it, or it would stop there again.
    fn resume(&mut self) -> std::io::Result<Stop> {
        let rip = self.vm.vcpu().get_regs().map(|regs| regs.rip).unwrap_or(0);
        if !self.single_step && self.breakpoints.contains(&rip) {
            self.vm
                .vcpu()
                .set_guest_debug(&guest_debug(true, &[]))
                .map_err(|err| std::io::Error::from_raw_os_error(err.errno()))?;
            match self.run() {
                Stop::Debug => {}
                other => return Ok(other),
            }
        }
        self.apply_debug()?;
        Ok(self.run())
    }
}

/// KVM's guest-debug settings: single stepping, and execution breakpoints in DR0-DR3.
fn guest_debug(single_step: bool, breakpoints: &[u64]) -> kvm_guest_debug {
    let mut debug = kvm_guest_debug {
        control: KVM_GUESTDBG_ENABLE,
        ..Default::default()
    };
    if single_step {
        debug.control |= KVM_GUESTDBG_SINGLESTEP;
    }
    if !breakpoints.is_empty() {
        debug.control |= KVM_GUESTDBG_USE_HW_BP;
        for (slot, &address) in breakpoints.iter().take(HW_BREAKPOINTS).enumerate() {
            debug.arch.debugreg[slot] = address;
            // DR7: the slot's local enable; its R/W and LEN bits stay 0 (execution).
            debug.arch.debugreg[7] |= 1 << (slot * 2);
        }
    }
    debug
}

impl Target for DebuggedVm<'_> {
    type Arch = X86_64_SSE;
    type Error = String;

    fn base_ops(&mut self) -> BaseOps<'_, Self::Arch, Self::Error> {
        BaseOps::SingleThread(self)
    }

    fn support_breakpoints(&mut self) -> Option<BreakpointsOps<'_, Self>> {
        Some(self)
    }
}

impl SingleThreadBase for DebuggedVm<'_> {
    fn read_registers(&mut self, regs: &mut X86_64CoreRegs) -> TargetResult<(), Self> {
        let vcpu = self.vm.vcpu();
        let r = vcpu
            .get_regs()
            .map_err(|err| TargetError::Fatal(err.to_string()))?;
        let s = vcpu
            .get_sregs()
            .map_err(|err| TargetError::Fatal(err.to_string()))?;
        regs.regs = [
            r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp, r.rsp, r.r8, r.r9, r.r10, r.r11,
            r.r12, r.r13, r.r14, r.r15,
        ];
        regs.rip = r.rip;
        regs.eflags = r.rflags as u32;
        regs.segments.cs = u32::from(s.cs.selector);
        regs.segments.ss = u32::from(s.ss.selector);
        regs.segments.ds = u32::from(s.ds.selector);
        regs.segments.es = u32::from(s.es.selector);
        regs.segments.fs = u32::from(s.fs.selector);
        regs.segments.gs = u32::from(s.gs.selector);
        Ok(())
    }

    fn write_registers(&mut self, regs: &X86_64CoreRegs) -> TargetResult<(), Self> {
        let vcpu = self.vm.vcpu();
        let mut r = vcpu
            .get_regs()
            .map_err(|err| TargetError::Fatal(err.to_string()))?;
        [
            r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp, r.rsp, r.r8, r.r9, r.r10, r.r11,
            r.r12, r.r13, r.r14, r.r15,
        ] = regs.regs;
        r.rip = regs.rip;
        r.rflags = (r.rflags & !0xffff_ffff) | u64::from(regs.eflags);
        vcpu.set_regs(&r)
            .map_err(|err| TargetError::Fatal(err.to_string()))?;
        Ok(())
    }

    fn read_addrs(&mut self, start: u64, data: &mut [u8]) -> TargetResult<usize, Self> {
        // gdb reads past the end of memory when it scans the stack: say how much there was.
        let mut done = 0;
        while done < data.len() {
            match self
                .vm
                .memory()
                .read(&mut data[done..], GuestAddress(start + done as u64))
            {
                Ok(0) | Err(_) => break,
                Ok(n) => done += n,
            }
        }
        if done == 0 && !data.is_empty() {
            return Err(TargetError::Errno(14)); // EFAULT
        }
        Ok(done)
    }

    fn write_addrs(&mut self, start: u64, data: &[u8]) -> TargetResult<(), Self> {
        self.vm
            .memory()
            .write_slice(data, GuestAddress(start))
            .map_err(|_| TargetError::Errno(14))
    }

    fn support_resume(&mut self) -> Option<SingleThreadResumeOps<'_, Self>> {
        Some(self)
    }
}

impl SingleThreadResume for DebuggedVm<'_> {
    fn resume(&mut self, _signal: Option<Signal>) -> Result<(), Self::Error> {
        self.single_step = false;
        Ok(())
    }

    fn support_single_step(&mut self) -> Option<SingleThreadSingleStepOps<'_, Self>> {
        Some(self)
    }
}

impl SingleThreadSingleStep for DebuggedVm<'_> {
    fn step(&mut self, _signal: Option<Signal>) -> Result<(), Self::Error> {
        self.single_step = true;
        Ok(())
    }
}

impl Breakpoints for DebuggedVm<'_> {
    fn support_sw_breakpoint(&mut self) -> Option<SwBreakpointOps<'_, Self>> {
        Some(self)
    }

    fn support_hw_breakpoint(&mut self) -> Option<HwBreakpointOps<'_, Self>> {
        Some(self)
    }
}

impl DebuggedVm<'_> {
    fn add_breakpoint(&mut self, address: u64) -> bool {
        if self.breakpoints.contains(&address) {
            return true;
        }
        if self.breakpoints.len() == HW_BREAKPOINTS {
            return false;
        }
        self.breakpoints.push(address);
        true
    }

    fn remove_breakpoint(&mut self, address: u64) -> bool {
        let before = self.breakpoints.len();
        self.breakpoints.retain(|&b| b != address);
        self.breakpoints.len() < before
    }
}

impl SwBreakpoint for DebuggedVm<'_> {
    fn add_sw_breakpoint(&mut self, address: u64, _kind: usize) -> TargetResult<bool, Self> {
        Ok(self.add_breakpoint(address))
    }

    fn remove_sw_breakpoint(&mut self, address: u64, _kind: usize) -> TargetResult<bool, Self> {
        Ok(self.remove_breakpoint(address))
    }
}

impl HwBreakpoint for DebuggedVm<'_> {
    fn add_hw_breakpoint(&mut self, address: u64, _kind: usize) -> TargetResult<bool, Self> {
        Ok(self.add_breakpoint(address))
    }

    fn remove_hw_breakpoint(&mut self, address: u64, _kind: usize) -> TargetResult<bool, Self> {
        Ok(self.remove_breakpoint(address))
    }
}

/// gdbstub's loop: run the guest until it stops, then answer gdb.
struct EventLoop<'a>(std::marker::PhantomData<&'a ()>);

impl<'a> run_blocking::BlockingEventLoop for EventLoop<'a> {
    type Target = DebuggedVm<'a>;
    type Connection = Box<dyn ConnectionExt<Error = std::io::Error>>;
    type StopReason = SingleThreadStopReason<u64>;

    #[allow(clippy::type_complexity)]
    fn wait_for_stop_reason(
        target: &mut DebuggedVm<'a>,
        conn: &mut Self::Connection,
    ) -> std::result::Result<
        run_blocking::Event<Self::StopReason>,
        run_blocking::WaitForStopReasonError<String, <Self::Connection as Connection>::Error>,
    > {
        let stop = target
            .resume()
            .map_err(|err| run_blocking::WaitForStopReasonError::Target(err.to_string()))?;
        Ok(run_blocking::Event::TargetStopped(match stop {
            // gdbstub reads the byte, sees the interrupt and asks `on_interrupt`.
            Stop::Interrupted => {
                let byte = conn
                    .read()
                    .map_err(run_blocking::WaitForStopReasonError::Connection)?;
                return Ok(run_blocking::Event::IncomingData(byte));
            }
            Stop::Debug if target.single_step => SingleThreadStopReason::DoneStep,
            Stop::Debug => SingleThreadStopReason::HwBreak(()),
            Stop::Ended(exit) => {
                let reason = match &exit {
                    VmExit::Status(status) => SingleThreadStopReason::Exited(*status as u8),
                    VmExit::Fault { .. } => SingleThreadStopReason::Terminated(Signal::SIGSEGV),
                    _ => SingleThreadStopReason::Terminated(Signal::SIGKILL),
                };
                target.exit = Some(exit);
                reason
            }
        }))
    }

    fn on_interrupt(
        _target: &mut DebuggedVm<'a>,
    ) -> std::result::Result<Option<Self::StopReason>, String> {
        Ok(Some(SingleThreadStopReason::Signal(Signal::SIGINT)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breakpoints_fill_the_debug_registers_in_order() {
        let debug = guest_debug(false, &[0x10_0000, 0x10_0abc]);
        assert_eq!(debug.control, KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_HW_BP);
        assert_eq!(&debug.arch.debugreg[..3], [0x10_0000, 0x10_0abc, 0]);
        // Local enables of DR0 and DR1, execution breakpoints of length 1.
        assert_eq!(debug.arch.debugreg[7], 0b0101);
        let step = guest_debug(true, &[]);
        assert_eq!(step.control, KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP);
        assert_eq!(step.arch.debugreg, [0; 8]);
    }
}
