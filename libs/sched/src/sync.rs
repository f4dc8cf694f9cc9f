//! Blocking synchronisation between threads: a mutex with priority inheritance and a
//! bounded channel. Both are `const`-constructible, so they can be statics, and neither
//! allocates.

use crate::state::{self, MAX_THREADS, ThreadId};
use core::fmt;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering, fence};
use unikernel_arch::acpi::MAX_CPUS;
use unikernel_arch::interrupts;
use unikernel_clock::{Duration, Instant};

/// The threads blocked on something, on any CPU: one bit set per CPU (`MAX_THREADS` is 64).
///
/// A waiter adds itself, then looks once more at what it waits for (under its CPU's lock,
/// which a waker must take to wake it); a waker changes what is waited for, then looks at
/// the set. With a full fence between each side's two steps, at least one of them sees
/// the other's change: no wake-up is lost.
pub(crate) struct WaitQueue([AtomicU64; MAX_CPUS]);

const _: () = assert!(MAX_THREADS <= 64);

impl WaitQueue {
    pub const fn new() -> Self {
        Self([const { AtomicU64::new(0) }; MAX_CPUS])
    }

    pub fn add(&self, thread: ThreadId) {
        self.0[thread.cpu].fetch_or(1 << thread.index, Ordering::SeqCst);
    }

    pub fn remove(&self, thread: ThreadId) {
        self.0[thread.cpu].fetch_and(!(1 << thread.index), Ordering::SeqCst);
    }

    /// Wakes the most urgent waiter that still waits (on equal ranks, the one that waited
    /// longest on the lowest CPU). Returns whether there was one.
    pub fn wake_one(&self) -> bool {
        fence(Ordering::SeqCst);
        let online = unikernel_arch::smp::online().min(MAX_CPUS);
        loop {
            let mut best: Option<(crate::rank::Rank, u64, ThreadId)> = None;
            for cpu in 0..online {
                let bits = self.0[cpu].load(Ordering::SeqCst);
                if bits == 0 || !state::runs_on(cpu) {
                    continue;
                }
                let mine = state::with_cpu(cpu, |state| {
                    (0..MAX_THREADS)
                        .filter(|&i| bits & (1 << i) != 0)
                        .map(|i| (state.rank(i), state.threads[i].since, i))
                        .min()
                });
                if let Some((rank, since, index)) = mine
                    && best.is_none_or(|(best_rank, _, _)| rank < best_rank)
                {
                    best = Some((rank, since, ThreadId { cpu, index }));
                }
            }
            let Some((_, _, thread)) = best else {
                return false;
            };
            // Claimed by this waker (another may have taken it meanwhile).
            let bit = 1 << thread.index;
            if self.0[thread.cpu].fetch_and(!bit, Ordering::SeqCst) & bit == 0 {
                continue;
            }
            // A waiter that timed out, or that saw the change itself, is not blocked: the
            // wake-up goes to the next one.
            if state::wake_thread(thread) {
                return true;
            }
        }
    }
}

/// Wakes the most urgent waiter of `queue`, if the scheduler runs.
fn wake_one(queue: &WaitQueue) {
    if state::is_running() {
        queue.wake_one();
    }
}

/// Whether the caller is a thread that can block (the scheduler runs on its CPU).
fn can_block() -> bool {
    state::is_running()
}

/// Blocks the running thread on `queue` while `blocked()` holds (looked at after the
/// thread joined the queue). Returns whether `until` passed.
pub(crate) fn block_on(
    queue: &WaitQueue,
    blocked: impl FnOnce() -> bool,
    until: Option<Instant>,
) -> bool {
    let me = state::current();
    let timed_out = state::block_with(
        |_, _| {
            queue.add(me);
            if !blocked() {
                queue.remove(me);
                return false;
            }
            true
        },
        until,
    );
    if timed_out {
        queue.remove(me);
    }
    timed_out
}

const NO_OWNER: usize = usize::MAX;

/// A mutual-exclusion lock whose waiters block (they do not spin), with priority
/// inheritance: while a more urgent thread (or real-time job) waits, the holder runs at
/// the waiter's rank, so that threads of middle priority cannot hold the waiter up.
///
/// Threads on different CPUs may share it: a waiter blocks on its own CPU, the unlock
/// wakes it there (an IPI), and the holder runs at the rank it inherited on its CPU.
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
            self.lend_rank();
            block_on(&self.waiters, || self.data.is_locked(), None);
        }
    }

    /// Priority inheritance: the holder, on whichever CPU, runs at least at the caller's
    /// rank until it unlocks. Its CPU is told (an IPI) so that it switches to it now.
    fn lend_rank(&self) {
        let owner = self.owner.load(Ordering::SeqCst);
        let me = state::current();
        if owner == NO_OWNER || owner == me.encode() {
            return;
        }
        let holder = ThreadId::decode(owner);
        let mine = state::with(|state| state.rank(me.index));
        // Under the holder's CPU's lock, while it still holds the mutex: its unlock clears
        // the loan under that lock after giving the mutex up, so a loan cannot outlive it.
        state::wake_where(holder.cpu, |state| {
            if self.owner.load(Ordering::SeqCst) != owner || mine >= state.rank(holder.index) {
                return false;
            }
            state.threads[holder.index].inherited = Some(mine);
            true
        });
    }

    /// Locks if nobody holds the lock.
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        let guard = self.data.try_lock()?;
        if can_block() {
            self.owner
                .store(state::current().encode(), Ordering::SeqCst);
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
        let owner = self.mutex.owner.swap(NO_OWNER, Ordering::SeqCst);
        self.guard = None;
        if !state::is_running() {
            return;
        }
        // The holder is the running thread: a loan is cleared on its own CPU.
        let lent = owner != NO_OWNER && {
            let holder = ThreadId::decode(owner);
            state::with_cpu(holder.cpu, |state| {
                state.threads[holder.index].inherited.take().is_some()
            })
        };
        self.mutex.waiters.wake_one();
        if lent {
            state::reschedule();
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
        block_on(queue, || blocked(&self.ring.lock()), until);
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
    fn a_wait_set_keeps_each_cpus_threads_apart() {
        let queue = WaitQueue::new();
        let on_0 = ThreadId { cpu: 0, index: 5 };
        let on_1 = ThreadId { cpu: 1, index: 5 };
        queue.add(on_0);
        queue.add(on_1);
        assert_eq!(queue.0[0].load(Ordering::Relaxed), 1 << 5);
        assert_eq!(queue.0[1].load(Ordering::Relaxed), 1 << 5);
        queue.remove(on_1);
        assert_eq!(queue.0[0].load(Ordering::Relaxed), 1 << 5);
        assert_eq!(queue.0[1].load(Ordering::Relaxed), 0);
        // Without a scheduler nobody can be woken; the waiter stays in the set.
        assert!(!queue.wake_one());
        assert_eq!(queue.0[0].load(Ordering::Relaxed), 1 << 5);
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
