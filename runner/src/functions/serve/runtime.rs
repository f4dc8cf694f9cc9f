//! One function's VMs, on blocking threads: a boot per request (`fresh`), a restore per
//! request from a snapshot taken at the guest's first wait (`snapshot`), or one VM for
//! request after request (`warm`).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use unikernel_vmm::{CallError, Channel, Image, Kvm, Pool, Reply, Snapshot, Vm, VmConfig};

use crate::functions::{Function, Mode};

/// How long a guest may take to boot and run its init before its first wait.
const BOOT_TIMEOUT: Duration = Duration::from_secs(30);

/// What serving one request took.
#[derive(Debug)]
pub struct Outcome {
    pub result: Result<Reply, CallError>,
    /// The boot (`fresh`, or `warm`'s first request) or the restore (`snapshot`).
    pub setup: Option<Duration>,
    /// The request's VM, done with: dropped after the response is sent (tearing a VM
    /// down takes KVM a while).
    pub finished_vm: Option<Vm>,
}

/// The snapshot a `snapshot` function restores from, and VMs prepared for it.
struct Ready {
    snapshot: Arc<Snapshot>,
    mailbox: u64,
    pool: Pool,
    /// Holds the snapshot's files; removed when dropped.
    _dir: tempfile::TempDir,
}

/// A `warm` function's VM, waiting at its channel.
struct Warm {
    vm: Vm,
    channel: Channel,
}

/// One function and its VMs.
pub struct FunctionRuntime {
    pub name: String,
    pub function: Function,
    pub mode: Mode,
    image: Image,
    kvm: Kvm,
    pool_size: usize,
    ready: Mutex<Option<Arc<Ready>>>,
    warm: Mutex<Option<Warm>>,
    last_used: Mutex<Instant>,
    refilling: AtomicBool,
    /// Requests admitted: running or waiting for a slot.
    pub admitted: AtomicUsize,
    /// Requests that may run at once.
    pub slots: tokio::sync::Semaphore,
}

impl std::fmt::Debug for FunctionRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FunctionRuntime")
            .field("name", &self.name)
            .field("mode", &self.mode)
            .field("warm", &self.is_warm())
            .finish()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl FunctionRuntime {
    /// A function with nothing running yet; `concurrency` VMs may run at once (one for
    /// `warm`), `pool_size` VMs are prepared ahead for `snapshot`.
    pub fn new(
        name: String,
        function: Function,
        mode: Mode,
        concurrency: usize,
        pool_size: usize,
    ) -> crate::Result<FunctionRuntime> {
        let image = Image::open(&function.image)?;
        let kvm = unikernel_vmm::open_kvm()?;
        let slots = if mode == Mode::Warm { 1 } else { concurrency };
        Ok(FunctionRuntime {
            name,
            function,
            mode,
            image,
            kvm,
            pool_size,
            ready: Mutex::new(None),
            warm: Mutex::new(None),
            last_used: Mutex::new(Instant::now()),
            refilling: AtomicBool::new(false),
            admitted: AtomicUsize::new(0),
            slots: tokio::sync::Semaphore::new(slots),
        })
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.function.timeout_ms)
    }

    /// Boots the image and runs it to its first wait (its init done).
    fn boot(&self) -> Result<(Vm, Channel), CallError> {
        let config = VmConfig {
            memory_mib: self.function.memory_mib,
            ..VmConfig::default()
        };
        let mut vm = Vm::new(&self.kvm, &self.image, &config)?;
        let channel = Channel::new();
        vm.serve_function(channel.server())?;
        vm.run_until_waiting(&channel, BOOT_TIMEOUT)?;
        Ok((vm, channel))
    }

    /// Serves one request (its wire encoding).
    pub fn handle(&self, request: &[u8]) -> Outcome {
        *lock(&self.last_used) = Instant::now();
        let start = Instant::now();
        let made = match self.mode {
            Mode::Fresh => self.boot(),
            Mode::Snapshot => self.restore(),
            Mode::Warm => return self.warm_call(request),
        };
        let outcome = match made {
            Ok((mut vm, channel)) => {
                let setup = Some(start.elapsed());
                Outcome {
                    result: vm.call(&channel, request, self.timeout()),
                    setup,
                    finished_vm: Some(vm),
                }
            }
            Err(err) => Outcome {
                result: Err(err),
                setup: None,
                finished_vm: None,
            },
        };
        *lock(&self.last_used) = Instant::now();
        outcome
    }

    /// A new VM restored from the snapshot (taken now if there is none).
    fn restore(&self) -> Result<(Vm, Channel), CallError> {
        let ready = self.ready()?;
        let prepared = ready.pool.take()?;
        let channel = Channel::parked_at(ready.mailbox);
        let vm = Vm::restore(&ready.snapshot, prepared, Some(channel.server()))?;
        Ok((vm, channel))
    }

    /// The snapshot, taken at the first call: boot, init, the first wait.
    fn ready(&self) -> Result<Arc<Ready>, CallError> {
        let mut ready = lock(&self.ready);
        if let Some(ready) = &*ready {
            return Ok(Arc::clone(ready));
        }
        let (mut vm, channel) = self.boot()?;
        let mailbox = channel
            .mailbox()
            .ok_or_else(|| CallError::Protocol("it never waited for a request".into()))?;
        let dir = tempfile::Builder::new()
            .prefix("uk-snapshot-")
            .tempdir()
            .map_err(|err| {
                unikernel_vmm::Error::Snapshot(format!("a folder for the snapshot: {err}"))
            })?;
        vm.snapshot(dir.path(), Some(mailbox))?;
        drop(vm);
        let snapshot = Arc::new(Snapshot::load(dir.path())?);
        let pool = Pool::for_snapshot(Arc::clone(&snapshot), self.pool_size)?;
        let made = Arc::new(Ready {
            snapshot,
            mailbox,
            pool,
            _dir: dir,
        });
        *ready = Some(Arc::clone(&made));
        Ok(made)
    }

    /// Takes the snapshot and prepares VMs (at start, off the first request's path);
    /// a failure shows again, with its reason, at the first request.
    pub fn handle_warmup(&self) -> Result<(), CallError> {
        self.ready()?;
        self.refill();
        Ok(())
    }

    /// Prepares VMs for the next restores (off the request's path); one refill at a
    /// time, the others return at once.
    pub fn refill(&self) {
        let ready = lock(&self.ready).clone();
        if let Some(ready) = ready
            && ready.pool.len() < self.pool_size
            && !self.refilling.swap(true, Ordering::SeqCst)
        {
            // A failure here shows again, with its reason, at the next restore.
            let _ = ready.pool.refill();
            self.refilling.store(false, Ordering::SeqCst);
        }
    }

    fn warm_call(&self, request: &[u8]) -> Outcome {
        let mut warm = lock(&self.warm);
        let mut setup = None;
        if warm.is_none() {
            let start = Instant::now();
            match self.boot() {
                Ok((vm, channel)) => *warm = Some(Warm { vm, channel }),
                Err(err) => {
                    return Outcome {
                        result: Err(err),
                        setup: None,
                        finished_vm: None,
                    };
                }
            }
            setup = Some(start.elapsed());
        }
        let Warm { vm, channel } = warm.as_mut().expect("booted above");
        let result = vm.call(channel, request, self.timeout());
        // A VM that failed or was stopped mid-request is not reused.
        let finished_vm = if result.is_err() {
            warm.take().map(|warm| warm.vm)
        } else {
            None
        };
        *lock(&self.last_used) = Instant::now();
        Outcome {
            result,
            setup,
            finished_vm,
        }
    }

    /// Drops the snapshot, the prepared VMs and the warm VM if the function had no
    /// request for `idle` and none is running; returns whether it dropped anything.
    pub fn scale_to_zero_if_idle(&self, idle: Duration) -> bool {
        if self.admitted.load(Ordering::SeqCst) > 0 || lock(&self.last_used).elapsed() < idle {
            return false;
        }
        let ready = lock(&self.ready).take();
        let warm = lock(&self.warm).take();
        ready.is_some() || warm.is_some()
    }

    /// Whether the function holds a VM or a snapshot now.
    pub fn is_warm(&self) -> bool {
        lock(&self.ready).is_some() || lock(&self.warm).is_some()
    }

    /// Drops every VM and the snapshot (shutdown).
    pub fn stop(&self) {
        lock(&self.ready).take();
        lock(&self.warm).take();
    }
}
