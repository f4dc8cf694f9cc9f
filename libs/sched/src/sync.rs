//! Blocking synchronisation between threads: a mutex with priority inheritance and a
//! bounded channel. Both are `const`-constructible, so they can be statics, and neither
//! allocates.

use crate::state::{self, MAX_THREADS, Run, State};
use core::fmt;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use unikernel_arch::interrupts;
use unikernel_clock::{Duration, Instant};

/// The threads blocked on something, as a bit set (`MAX_THREADS` is 64).
pub(crate) struct WaitQueue(AtomicU64);

const _: () = assert!(MAX_THREADS <= 64);

impl WaitQueue {
    pub const fn new() -> Self {
        Self(AtomicU64::new(0))
    }

    pub fn add(&self, thread: usize) {
        self.0.fetch_or(1 << thread, Ordering::Relaxed);
    }

    pub fn remove(&self, thread: usize) {
        self.0.fetch_and(!(1 << thread), Ordering::Relaxed);
    }

    /// Wakes the most urgent waiter that still waits. Returns whether there was one.
    pub fn wake_one(&self, state: &mut State) -> bool {
        loop {
            let bits = self.0.load(Ordering::Relaxed);
            if bits == 0 {
                return false;
            }
            let best = (0..MAX_THREADS)
                .filter(|&i| bits & (1 << i) != 0)
                .min_by_key(|&i| (state.rank(i), state.threads[i].since))
                .expect("bits is not empty");
            self.remove(best);
            // A waiter that timed out is ready already: the wake-up goes to the next one.
            if state.threads[best].run == Run::Blocked {
                state.wake(best);
                return true;
            }
        }
    }
}

/// Wakes the most urgent waiter of `queue` and lets it run at once if it outranks the
/// running thread (from a thread; from an interrupt handler, after the handler).
fn wake_one(queue: &WaitQueue) {
    if !state::is_running() {
        return;
    }
    let woke = state::with(|state| queue.wake_one(state));
    if woke {
        reschedule_boot_cpu();
    }
}

/// Lets CPU 0 run a thread just woken: at once from CPU 0, through the wake-up IPI (and
/// the after-interrupt hook) from another CPU.
fn reschedule_boot_cpu() {
    if crate::cpus::on_boot_cpu() {
        state::reschedule();
    } else {
        crate::cpus::wake(0);
    }
}

/// Whether the caller is a thread that can block (not a job on another CPU, and the
/// scheduler runs).
fn can_block() -> bool {
    state::is_running() && crate::cpus::on_boot_cpu()
}

const NO_OWNER: usize = usize::MAX;

/// A mutual-exclusion lock whose waiters block (they do not spin), with priority
/// inheritance: while a more urgent thread (or real-time job) waits, the holder runs at
/// the waiter's rank, so that threads of middle priority cannot hold the waiter up.
///
/// Not for interrupt handlers (they cannot block). Before the scheduler runs, or without
/// one, a contended lock spins.
pub struct Mutex<T> {
    data: spin::Mutex<T>,
    owner: AtomicUsize,
    waiters: WaitQueue,
}

impl<T> Mutex<T> {
    pub const fn new(value: T) -> Self {
        Self {
            data: spin::Mutex::new(value),
            owner: AtomicUsize::new(NO_OWNER),
            waiters: WaitQueue::new(),
        }
    }

    /// Locks, blocking while another thread holds the lock.
    pub fn lock(&self) -> MutexGuard<'_, T> {
        loop {
            if let Some(guard) = self.try_lock() {
                return guard;
            }
            if !can_block() {
                core::hint::spin_loop();
                continue;
            }
            state::block_with(
                |state, me| {
                    if !self.data.is_locked() {
                        return false;
                    }
                    self.waiters.add(me);
                    // Priority inheritance.
                    let owner = self.owner.load(Ordering::Relaxed);
                    if owner < MAX_THREADS && owner != me {
                        let mine = state.rank(me);
                        if mine < state.rank(owner) {
                            state.threads[owner].inherited = Some(mine);
                        }
                    }
                    true
                },
                None,
            );
        }
    }

    /// Locks if nobody holds the lock.
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        let guard = self.data.try_lock()?;
        // A job on another CPU is no thread: it owns the lock anonymously (no priority
        // inheritance through it).
        if can_block() {
            self.owner
                .store(state::with(|state| state.current), Ordering::Relaxed);
        }
        Some(MutexGuard {
            mutex: self,
            guard: Some(guard),
        })
    }

    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Self {
        Self::new(T::default())
    }
}

impl<T: fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.data.try_lock() {
            Some(data) => f.debug_struct("Mutex").field("data", &*data).finish(),
            None => f.write_str("Mutex { <locked> }"),
        }
    }
}

/// Holds a [`Mutex`]; unlocks when dropped.
pub struct MutexGuard<'a, T> {
    mutex: &'a Mutex<T>,
    guard: Option<spin::MutexGuard<'a, T>>,
}

impl<T> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.guard.as_ref().expect("held until dropped")
    }
}

impl<T> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.guard.as_mut().expect("held until dropped")
    }
}

impl<T: fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        let owner = self.mutex.owner.swap(NO_OWNER, Ordering::Relaxed);
        self.guard = None;
        if !state::is_running() {
            return;
        }
        let woke = state::with(|state| {
            if owner < MAX_THREADS {
                state.threads[owner].inherited = None;
            }
            self.mutex.waiters.wake_one(state)
        });
        if woke {
            reschedule_boot_cpu();
        }
    }
}

/// A bounded first-in first-out channel of `N` values between threads (any number of
/// senders and receivers). `try_send` and `try_recv` never block and may be called from
/// interrupt handlers; `send` blocks while the channel is full, `recv` while it is empty.
pub struct Channel<T, const N: usize> {
    ring: spin::Mutex<Ring<T, N>>,
    receivers: WaitQueue,
    senders: WaitQueue,
}

struct Ring<T, const N: usize> {
    slots: [Option<T>; N],
    head: usize,
    len: usize,
}

impl<T, const N: usize> Ring<T, N> {
    fn push(&mut self, value: T) -> Result<(), T> {
        if self.len == N {
            return Err(value);
        }
        self.slots[(self.head + self.len) % N] = Some(value);
        self.len += 1;
        Ok(())
    }

    fn pop(&mut self) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        let value = self.slots[self.head].take();
        self.head = (self.head + 1) % N;
        self.len -= 1;
        value
    }
}

impl<T, const N: usize> Default for Channel<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T, const N: usize> fmt::Debug for Channel<T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Channel")
            .field("len", &self.len())
            .field("capacity", &N)
            .finish()
    }
}

impl<T, const N: usize> Channel<T, N> {
    pub const fn new() -> Self {
        assert!(N > 0, "a channel holds at least one value");
        Self {
            ring: spin::Mutex::new(Ring {
                slots: [const { None }; N],
                head: 0,
                len: 0,
            }),
            receivers: WaitQueue::new(),
            senders: WaitQueue::new(),
        }
    }

    /// Sends without blocking; gives the value back if the channel is full.
    pub fn try_send(&self, value: T) -> Result<(), T> {
        interrupts::without(|| self.ring.lock().push(value))?;
        wake_one(&self.receivers);
        Ok(())
    }

    /// Receives without blocking.
    pub fn try_recv(&self) -> Option<T> {
        let value = interrupts::without(|| self.ring.lock().pop())?;
        wake_one(&self.senders);
        Some(value)
    }

    /// Sends, blocking while the channel is full.
    pub fn send(&self, value: T) {
        let mut value = value;
        loop {
            match self.try_send(value) {
                Ok(()) => return,
                Err(back) => value = back,
            }
            self.wait(&self.senders, |ring| ring.len == N, None);
        }
    }

    /// Receives, blocking while the channel is empty.
    pub fn recv(&self) -> T {
        loop {
            if let Some(value) = self.try_recv() {
                return value;
            }
            self.wait(&self.receivers, |ring| ring.len == 0, None);
        }
    }

    /// Receives, blocking at most `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<T> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(value) = self.try_recv() {
                return Some(value);
            }
            if Instant::now() >= deadline {
                return None;
            }
            self.wait(&self.receivers, |ring| ring.len == 0, Some(deadline));
        }
    }

    /// Blocks on `queue` while `blocked(ring)` holds.
    fn wait(&self, queue: &WaitQueue, blocked: fn(&Ring<T, N>) -> bool, until: Option<Instant>) {
        if !can_block() {
            core::hint::spin_loop();
            return;
        }
        let timed_out = state::block_with(
            |_, me| {
                if !blocked(&self.ring.lock()) {
                    return false;
                }
                queue.add(me);
                true
            },
            until,
        );
        if timed_out {
            let me = state::with(|state| state.current);
            queue.remove(me);
        }
    }

    /// Values waiting to be received.
    pub fn len(&self) -> usize {
        interrupts::without(|| self.ring.lock().len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub const fn capacity(&self) -> usize {
        N
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_is_fifo_and_bounded() {
        let channel: Channel<u32, 3> = Channel::new();
        assert_eq!(channel.try_recv(), None);
        for i in 0..3 {
            channel.try_send(i).unwrap();
        }
        assert_eq!(channel.try_send(9), Err(9));
        assert_eq!(channel.len(), 3);
        assert_eq!(channel.try_recv(), Some(0));
        channel.try_send(3).unwrap();
        let got: [Option<u32>; 4] = core::array::from_fn(|_| channel.try_recv());
        assert_eq!(got, [Some(1), Some(2), Some(3), None]);
    }

    #[test]
    fn mutex_without_a_scheduler_locks_and_unlocks() {
        let mutex = Mutex::new(5);
        {
            let mut guard = mutex.lock();
            *guard += 1;
            assert!(mutex.try_lock().is_none());
        }
        assert_eq!(*mutex.lock(), 6);
        assert_eq!(mutex.into_inner(), 6);
    }
}
