//! Defence in depth for the threads that face a guest, as Firecracker does it: once a VM
//! is set up (memory mapped, vCPU created), its vCPU thread runs under a seccomp filter
//! that allows only the system calls the exit loop needs, refuses opening a file with an
//! error (see [`REFUSED_SYSCALLS`]), and kills the whole process on any other (a guest
//! that found a bug in the exit loop cannot open a file, start a program or make a
//! socket). The watchdog that stops a vCPU has a filter of its own.
//! As root, the thread also gives up root first: its user and group become `nobody`,
//! without supplementary groups, and `no_new_privs` keeps it so.
//!
//! The filters are per thread (no TSYNC): the runner's other threads go on reading files
//! and writing reports.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use crate::error::{Error, Result};

/// KVM's ioctl type (`KVMIO`), bits 8-15 of every KVM request number.
const KVMIO: u64 = 0xae;

/// What a vCPU thread may do after setup: KVM's ioctls, memory for output buffers (the
/// allocator maps and protects its arenas), waiting on and waking the other threads
/// (futexes), the kick signal's return, writing a panic message, and ending (closing the
/// VM's descriptors, which debug builds check with `fcntl(F_GETFD)` first, unmapping its
/// memory, thread exit).
const VCPU_SYSCALLS: &[i64] = &[
    libc::SYS_ioctl,
    libc::SYS_futex,
    libc::SYS_write,
    libc::SYS_mmap,
    libc::SYS_mprotect,
    libc::SYS_munmap,
    libc::SYS_mremap,
    libc::SYS_madvise,
    libc::SYS_brk,
    libc::SYS_rt_sigreturn,
    libc::SYS_rt_sigprocmask,
    libc::SYS_sigaltstack,
    libc::SYS_sched_yield,
    libc::SYS_clock_gettime,
    libc::SYS_close,
    libc::SYS_fcntl,
    libc::SYS_exit,
    libc::SYS_exit_group,
];

/// What the watchdog may do: sleep until a deadline, kick the vCPU thread (pthread_kill:
/// getpid, tgkill, with signals blocked around it) and end.
const WATCHDOG_SYSCALLS: &[i64] = &[
    libc::SYS_futex,
    libc::SYS_clock_gettime,
    libc::SYS_getpid,
    libc::SYS_gettid,
    libc::SYS_tgkill,
    libc::SYS_rt_sigprocmask,
    libc::SYS_rt_sigreturn,
    libc::SYS_write,
    libc::SYS_madvise,
    libc::SYS_munmap,
    libc::SYS_sigaltstack,
    libc::SYS_exit,
    libc::SYS_exit_group,
];

/// What the virtio device thread may do: wait in epoll, read and write its eventfds and
/// back ends (a tap's reads and writes, passt's socket through recv and write, a disk's
/// positioned reads and writes and its flush), memory for buffers, and end (closing
/// descriptors, which debug builds check with `fcntl(F_GETFD)` first). No open, no
/// socket, no exec: the back ends are opened before it starts.
const DEVICE_SYSCALLS: &[i64] = &[
    libc::SYS_epoll_wait,
    libc::SYS_epoll_pwait,
    libc::SYS_read,
    libc::SYS_write,
    libc::SYS_recvfrom,
    libc::SYS_sendto,
    libc::SYS_pread64,
    libc::SYS_pwrite64,
    libc::SYS_fdatasync,
    libc::SYS_futex,
    libc::SYS_mmap,
    libc::SYS_mprotect,
    libc::SYS_munmap,
    libc::SYS_mremap,
    libc::SYS_madvise,
    libc::SYS_brk,
    libc::SYS_rt_sigreturn,
    libc::SYS_rt_sigprocmask,
    libc::SYS_sigaltstack,
    libc::SYS_sched_yield,
    libc::SYS_clock_gettime,
    libc::SYS_close,
    libc::SYS_fcntl,
    libc::SYS_exit,
    libc::SYS_exit_group,
];
/// What a confined thread is refused with an error (EACCES) rather than killed for:
/// opening files. glibc's allocator opens /proc/sys/vm/overcommit_memory the first time
/// any thread of the process shrinks a heap arena (`check_may_shrink_heap`), and that
/// thread may be a vCPU thread freeing output buffers (a reader that went away, a thread's
/// exit): killed for it, the runner died by SIGSYS now and then. Refused, glibc gives up
/// that check and releases the memory with madvise; the thread still opens nothing.
const REFUSED_SYSCALLS: &[i64] = &[libc::SYS_open, libc::SYS_openat];

/// How many system calls a vCPU thread may make (for the README's figure and tests).
pub const VCPU_SYSCALL_COUNT: usize = VCPU_SYSCALLS.len();

/// The filter that answers [`REFUSED_SYSCALLS`] with EACCES and lets everything else
/// through to the allow list's filter, installed after it. (Of stacked filters the kernel
/// applies the strictest answer: an error beats the allow list's "allow", a kill beats
/// both.)
fn refusal_filter() -> Result<BpfProgram> {
    let rules = REFUSED_SYSCALLS
        .iter()
        .map(|&syscall| (syscall, Vec::new()))
        .collect();
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EACCES as u32),
        TargetArch::x86_64,
    )
    .map_err(|err| Error::Sandbox(err.to_string()))?;
    BpfProgram::try_from(filter).map_err(|err| Error::Sandbox(err.to_string()))
}

/// The allow list: `syscalls` (and the refused ones, which the refusal filter answers),
/// every other system call kills the process.
fn filter(syscalls: &[i64]) -> Result<BpfProgram> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for &syscall in syscalls {
        let condition = match syscall {
            // Only KVM's ioctls: the request's type byte is KVMIO.
            libc::SYS_ioctl => Some((SeccompCmpOp::MaskedEq(0xff00), KVMIO << 8)),
            // Only the descriptor check.
            libc::SYS_fcntl => Some((SeccompCmpOp::Eq, libc::F_GETFD as u64)),
            _ => None,
        };
        let rule = match condition {
            Some((operator, value)) => {
                let condition = SeccompCondition::new(1, SeccompCmpArgLen::Dword, operator, value)
                    .map_err(|err| Error::Sandbox(err.to_string()))?;
                vec![
                    SeccompRule::new(vec![condition])
                        .map_err(|err| Error::Sandbox(err.to_string()))?,
                ]
            }
            None => Vec::new(),
        };
        rules.insert(syscall, rule);
    }
    for &syscall in REFUSED_SYSCALLS {
        rules.insert(syscall, Vec::new());
    }
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::KillProcess,
        SeccompAction::Allow,
        TargetArch::x86_64,
    )
    .map_err(|err| Error::Sandbox(err.to_string()))?;
    BpfProgram::try_from(filter).map_err(|err| Error::Sandbox(err.to_string()))
}

/// The two filters of a kind of thread (refusals first, then the allow list), compiled
/// once per process: a VM per request confines a thread per request.
type Programs = std::result::Result<[BpfProgram; 2], String>;

fn compiled(
    syscalls: &[i64],
    cache: &'static OnceLock<Programs>,
) -> Result<&'static [BpfProgram; 2]> {
    cache
        .get_or_init(|| {
            let refusals = refusal_filter().map_err(|err| err.to_string())?;
            let allow_list = filter(syscalls).map_err(|err| err.to_string())?;
            Ok([refusals, allow_list])
        })
        .as_ref()
        .map_err(|err| Error::Sandbox(err.clone()))
}

/// Confines the calling thread as a vCPU thread: gives up root (if it has it), then
/// installs the vCPU filter. Call it after the VM is set up, before its first KVM_RUN.
pub fn confine_vcpu_thread() -> Result<()> {
    static PROGRAMS: OnceLock<Programs> = OnceLock::new();
    drop_root()?;
    apply(compiled(VCPU_SYSCALLS, &PROGRAMS)?)
}

/// Confines the calling thread as the virtio device thread.
pub fn confine_device_thread() -> Result<()> {
    static PROGRAMS: OnceLock<Programs> = OnceLock::new();
    drop_root()?;
    apply(compiled(DEVICE_SYSCALLS, &PROGRAMS)?)
}

/// Confines the calling thread as a watchdog.
pub fn confine_watchdog_thread() -> Result<()> {
    static PROGRAMS: OnceLock<Programs> = OnceLock::new();
    drop_root()?;
    apply(compiled(WATCHDOG_SYSCALLS, &PROGRAMS)?)
}

fn apply(programs: &[BpfProgram; 2]) -> Result<()> {
    // The refusals first: once the allow list is in, installing a filter is not allowed.
    for program in programs {
        seccompiler::apply_filter(program).map_err(|err| Error::Sandbox(err.to_string()))?;
    }
    Ok(())
}

/// The user and group ids of `nobody` (from /etc/passwd; 65534 if it is not there).
fn nobody() -> (u32, u32) {
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|passwd| {
            passwd.lines().find_map(|line| {
                let mut fields = line.split(':');
                if fields.next()? != "nobody" {
                    return None;
                }
                let uid = fields.nth(1)?.parse().ok()?;
                let gid = fields.next()?.parse().ok()?;
                Some((uid, gid))
            })
        })
        .unwrap_or((65534, 65534))
}

/// As root, makes the calling thread (and the threads it starts later) `nobody`: group
/// first, supplementary groups cleared, then the user (real, effective and saved, so there
/// is no way back). Does nothing for other users.
pub fn drop_root() -> Result<()> {
    if !rustix::process::geteuid().is_root() {
        return Ok(());
    }
    static NOBODY: std::sync::OnceLock<(u32, u32)> = std::sync::OnceLock::new();
    let &(uid, gid) = NOBODY.get_or_init(nobody);
    let uid = rustix::process::Uid::from_raw(uid);
    let gid = rustix::process::Gid::from_raw(gid);
    let failed = |what: &str, err: rustix::io::Errno| {
        Error::Sandbox(format!("giving up root failed ({what}): {err}"))
    };
    rustix::thread::set_thread_groups(&[]).map_err(|err| failed("setgroups", err))?;
    rustix::thread::set_thread_res_gid(gid, gid, gid).map_err(|err| failed("setresgid", err))?;
    rustix::thread::set_thread_res_uid(uid, uid, uid).map_err(|err| failed("setresuid", err))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filters_compile_and_stay_small() {
        assert_eq!(VCPU_SYSCALL_COUNT, 18);
        assert!(!filter(VCPU_SYSCALLS).unwrap().is_empty());
        assert!(!filter(WATCHDOG_SYSCALLS).unwrap().is_empty());
        for forbidden in [
            libc::SYS_open,
            libc::SYS_openat,
            libc::SYS_execve,
            libc::SYS_socket,
            libc::SYS_clone,
            libc::SYS_clone3,
            libc::SYS_fork,
            libc::SYS_ptrace,
            libc::SYS_read,
        ] {
            assert!(!VCPU_SYSCALLS.contains(&forbidden), "{forbidden}");
            assert!(!WATCHDOG_SYSCALLS.contains(&forbidden), "{forbidden}");
            if forbidden != libc::SYS_read {
                assert!(!DEVICE_SYSCALLS.contains(&forbidden), "{forbidden}");
            }
        }
        assert!(!filter(DEVICE_SYSCALLS).unwrap().is_empty());
    }
}
