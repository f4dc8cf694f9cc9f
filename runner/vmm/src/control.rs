//! Stopping a vCPU from another thread: a stop flag, a condition variable a halted vCPU
//! thread sleeps on, and a signal that knocks a running one out of KVM_RUN.

use std::sync::{Condvar, Mutex, Once};
use std::time::{Duration, Instant};

/// The signal that interrupts KVM_RUN. Its handler does nothing: delivering it makes the
/// ioctl return EINTR, after which the vCPU loop looks at the stop flag.
fn kick_signal() -> libc::c_int {
    libc::SIGRTMIN() + 3
}

extern "C" fn on_kick(_: libc::c_int) {}

/// Installs the handler of the kick signal, once per process.
pub fn install_kick_handler() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: a zeroed sigaction is a valid "no flags, empty mask" value; the handler is
        // an `extern "C"` function that touches nothing, so it is async-signal-safe; and no
        // other code of the process uses this real-time signal.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_kick as *const () as libc::sighandler_t;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(kick_signal(), &action, std::ptr::null_mut());
        }
    });
}

/// The calling thread, to kick later.
pub fn current_thread() -> libc::pthread_t {
    // SAFETY: pthread_self has no preconditions.
    unsafe { libc::pthread_self() }
}

/// Sends the kick signal to `thread`.
pub fn kick(thread: libc::pthread_t) {
    // SAFETY: `thread` is a live thread of this process (the caller keeps it alive until it
    // has stopped kicking it), and the signal has a handler (install_kick_handler).
    unsafe {
        libc::pthread_kill(thread, kick_signal());
    }
}

#[derive(Debug, Default)]
struct State {
    stop: bool,
    finished: bool,
    /// gdb asked to interrupt the running guest: the vCPU leaves KVM_RUN once, and may
    /// run again after.
    interrupt: bool,
}

/// Shared between a vCPU thread and whoever may stop it.
#[derive(Debug, Default)]
pub struct Control {
    state: Mutex<State>,
    changed: Condvar,
}

impl Control {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether a stop was asked for.
    pub fn stop_requested(&self) -> bool {
        self.lock().stop
    }

    /// Whether a stop or a debugger's interrupt was asked for: the vCPU loop returns.
    pub fn stop_or_interrupt_requested(&self) -> bool {
        let state = self.lock();
        state.stop || state.interrupt
    }

    /// Asks the vCPU on `thread` to leave KVM_RUN for gdb, kicking it every millisecond
    /// while `running` says it still runs and the request is not taken (a kick that
    /// lands just before KVM_RUN is lost, the next one is not).
    pub fn interrupt_and_kick(&self, thread: libc::pthread_t, running: impl Fn() -> bool) {
        let mut state = self.lock();
        state.interrupt = true;
        while state.interrupt && !state.finished && running() {
            kick(thread);
            state = self
                .changed
                .wait_timeout(state, Duration::from_millis(1))
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
    }

    /// Takes a debugger's interrupt request: whether there was one.
    pub fn take_interrupt(&self) -> bool {
        let taken = std::mem::take(&mut self.lock().interrupt);
        self.changed.notify_all();
        taken
    }

    /// Asks the vCPU to stop; wakes it if it sleeps in [`Control::park`]. A vCPU inside
    /// KVM_RUN must also be kicked (see [`Control::stop_and_kick`]).
    pub fn request_stop(&self) {
        self.lock().stop = true;
        self.changed.notify_all();
    }

    /// Asks the vCPU on `thread` to stop and kicks it out of KVM_RUN every millisecond until
    /// its loop reports that it finished.
    pub fn stop_and_kick(&self, thread: libc::pthread_t) {
        let mut state = self.lock();
        state.stop = true;
        self.changed.notify_all();
        while !state.finished {
            kick(thread);
            state = self
                .changed
                .wait_timeout(state, Duration::from_millis(1))
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
    }

    /// The vCPU loop is done with KVM_RUN: no more kicks.
    pub fn finish(&self) {
        self.lock().finished = true;
        self.changed.notify_all();
    }

    /// Sleeps until a stop is asked for (a halted vCPU that nothing can wake).
    pub fn park(&self) {
        let mut state = self.lock();
        while !state.stop {
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }

    /// Waits until the vCPU finished or `deadline` passed; returns whether it finished.
    pub fn wait_finished(&self, deadline: Instant) -> bool {
        let mut state = self.lock();
        loop {
            if state.finished {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            state = self
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
    }
}
