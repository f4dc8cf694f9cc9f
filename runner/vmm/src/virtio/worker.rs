//! The device thread: waits in epoll for queue notifications (the ioeventfds KVM signals
//! on a write to QueueNotify), for the back ends (a frame from the tap or passt, room to
//! write again) and for the stop signal, and runs the device each one is for. It runs
//! under a seccomp filter of its own (`sandbox::confine_device_thread`).

use std::io;
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use vmm_sys_util::epoll::{ControlOperation, Epoll, EpollEvent, EventSet};
use vmm_sys_util::eventfd::{EFD_NONBLOCK, EventFd};

use super::{Event, Transport};

/// The token of the stop signal.
const STOP: u64 = u64::MAX;
/// The queue index that stands for the back end in a token.
const BACKEND: u64 = 0xffff;

/// A transport and the notifiers of its queues (index = queue).
#[derive(Debug)]
pub struct Attached {
    pub transport: Arc<Mutex<Transport>>,
    pub notifiers: Vec<EventFd>,
}

/// Locks a transport; a panic elsewhere while it was held does not stop the device.
pub fn lock(transport: &Mutex<Transport>) -> MutexGuard<'_, Transport> {
    transport
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The running device thread; stopped and joined when dropped.
#[derive(Debug)]
pub struct Worker {
    stop: EventFd,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    /// Starts the thread for `devices`.
    pub fn spawn(devices: Vec<Attached>) -> io::Result<Worker> {
        let stop = EventFd::new(EFD_NONBLOCK)?;
        let epoll = Epoll::new()?;
        epoll.ctl(
            ControlOperation::Add,
            stop.as_raw_fd(),
            EpollEvent::new(EventSet::IN, STOP),
        )?;
        for (index, device) in devices.iter().enumerate() {
            for (queue, notifier) in device.notifiers.iter().enumerate() {
                epoll.ctl(
                    ControlOperation::Add,
                    notifier.as_raw_fd(),
                    EpollEvent::new(EventSet::IN, token(index, queue as u64)),
                )?;
            }
            if let Some(fd) = lock(&device.transport).backend_fd() {
                // Edge-triggered: the device reads until there is nothing more, or until
                // the guest has no buffers, and reads on at the guest's next notification.
                epoll.ctl(
                    ControlOperation::Add,
                    fd,
                    EpollEvent::new(
                        EventSet::IN | EventSet::OUT | EventSet::EDGE_TRIGGERED,
                        token(index, BACKEND),
                    ),
                )?;
            }
        }
        let thread = std::thread::Builder::new()
            .name("virtio".into())
            .spawn(move || {
                // The thread's first allocation picks its malloc arena, and the first
                // new arena of the process reads the CPU count from /sys (an openat the
                // filter forbids): allocate once before confining.
                std::hint::black_box(vec![0u8; 64]);
                // A thread that cannot be confined does no device work: the vCPU
                // thread's own filter reports why.
                if crate::sandbox::confine_device_thread().is_err() {
                    return;
                }
                run(&epoll, &devices);
            })?;
        Ok(Worker {
            stop,
            thread: Some(thread),
        })
    }
}

fn token(device: usize, queue: u64) -> u64 {
    ((device as u64) << 16) | queue
}

fn run(epoll: &Epoll, devices: &[Attached]) {
    let mut events = vec![EpollEvent::default(); 32];
    loop {
        let count = match epoll.wait(-1, &mut events) {
            Ok(count) => count,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        for event in &events[..count] {
            let data = event.data();
            if data == STOP {
                return;
            }
            let Some(device) = devices.get((data >> 16) as usize) else {
                continue;
            };
            let queue = data & 0xffff;
            let event = if queue == BACKEND {
                Event::Backend
            } else {
                if let Some(notifier) = device.notifiers.get(queue as usize) {
                    // Clears the count; the notifications are one event.
                    let _ = notifier.read();
                }
                Event::Queue(queue as usize)
            };
            lock(&device.transport).process(event);
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.stop.write(1);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
