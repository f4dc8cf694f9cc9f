//! QEMU's command line and the choice of accelerator.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use unikernel_vmm as vmm;

use crate::error::{Error, Result};

/// The QEMU binary's name.
pub const QEMU: &str = "qemu-system-x86_64";

/// `--realtime PRIO` (if `priority` is set) for QEMU, just started as `child` with `vcpus`
/// vCPUs and `-name debug-threads=on` (see [`set_realtime`]). A refusal kills and reaps
/// QEMU before it is returned: nothing the runner started outlives the error.
pub(crate) fn make_realtime(child: &mut Child, vcpus: u16, priority: Option<u8>) -> Result<()> {
    let Some(priority) = priority else {
        return Ok(());
    };
    set_realtime(child.id(), vcpus, priority).inspect_err(|_| {
        let _ = child.kill();
        let _ = child.wait();
    })
}

/// `--realtime PRIO` for QEMU process `pid` with `vcpus` vCPUs: its main thread (the main loop, which runs the guest's timers
/// and devices) goes to SCHED_FIFO at PRIO + 1, and with it the threads it starts from now
/// on; then each vCPU thread ("CPU n/TCG", "CPU n/KVM") down to PRIO as soon as it exists.
/// Returns once all are set, or at once if QEMU has ended; a refusal is an error.
fn set_realtime(pid: u32, vcpus: u16, priority: u8) -> Result<()> {
    let refused =
        |priority, err: std::io::Error| Error::new(vmm::realtime::refusal(priority, &err));
    vmm::realtime::set_fifo(pid, priority + 1).map_err(|err| refused(priority, err))?;
    // QEMU makes its vCPU threads while it sets up the machine: milliseconds.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut set = BTreeSet::new();
    while set.len() < usize::from(vcpus) {
        // Ended (a zombie until the caller reaps it): the caller reports how.
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if matches!(
            state
                .rsplit_once(") ")
                .map(|(_, rest)| rest.as_bytes().first()),
            None | Some(Some(b'Z' | b'X'))
        ) {
            return Ok(());
        }
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            return Ok(());
        };
        for task in tasks.flatten() {
            let Some(tid) = task.file_name().to_str().and_then(|tid| tid.parse().ok()) else {
                continue;
            };
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            if set.contains(&tid) || !is_vcpu_thread(comm.trim_end()) {
                continue;
            }
            match vmm::realtime::set_fifo(tid, priority) {
                Ok(()) => {
                    set.insert(tid);
                }
                Err(err) if err.raw_os_error() == Some(libc::ESRCH) => {} // gone meanwhile
                Err(err) => return Err(refused(priority, err)),
            }
        }
        if Instant::now() > deadline {
            return Err(Error::new(format!(
                "--realtime: QEMU started {} of its {vcpus} vCPU threads within 10 s",
                set.len()
            )));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

/// A QEMU vCPU thread's name under `-name debug-threads=on`.
fn is_vcpu_thread(comm: &str) -> bool {
    comm.starts_with("CPU ") && (comm.ends_with("/TCG") || comm.ends_with("/KVM"))
}

/// The accelerator the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum AccelRequest {
    /// KVM where it is real hardware virtualisation, TCG otherwise.
    #[default]
    Auto,
    /// KVM, even where it is slow (nested, emulated); an error where `/dev/kvm` is unusable.
    Kvm,
    /// QEMU's binary translator.
    Tcg,
}

/// The accelerator a boot uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    /// `-enable-kvm -cpu host,-arch-capabilities`.
    Kvm,
    /// `-accel tcg -cpu max`.
    Tcg,
}

impl fmt::Display for Accel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Accel::Kvm => "KVM",
            Accel::Tcg => "TCG",
        })
    }
}

/// Which of the image's two boot headers QEMU is made to use.
///
/// Images carry both a PVH note and a multiboot header. QEMU's `-kernel` loader tries
/// multiboot first, which on microvm costs about 4 ms of option-ROM work per boot; so for
/// PVH the runner boots a copy of the image whose multiboot magic is masked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Protocol {
    /// The Xen PVH direct boot: the fast path, as Firecracker and Cloud Hypervisor boot.
    #[default]
    Pvh,
    /// Multiboot, as GRUB boots.
    Multiboot,
}

/// The machine model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Machine {
    /// `-M microvm,pit=on,pic=on,rtc=on`: no firmware, the fastest boot.
    #[default]
    Microvm,
    /// `-M pc` (i440FX): SeaBIOS runs first (the floor: about 65 ms against microvm's 28 ms
    /// on the project's machine, with `-nodefaults`).
    Pc,
    /// `-M q35`: SeaBIOS runs first (the floor: about 75 ms).
    Q35,
}

impl Machine {
    /// The value of `-M`.
    pub fn qemu_value(self) -> &'static str {
        match self {
            Machine::Microvm => "microvm,pit=on,pic=on,rtc=on",
            Machine::Pc => "pc",
            Machine::Q35 => "q35",
        }
    }
}

/// Whether `/proc/cpuinfo` text shows hardware virtualisation (a `vmx` or `svm` flag).
pub(crate) fn cpuinfo_has_virtualisation(cpuinfo: &str) -> bool {
    cpuinfo.lines().any(|line| {
        let Some((key, value)) = line.split_once(':') else {
            return false;
        };
        key.trim() == "flags"
            && value
                .split_whitespace()
                .any(|flag| flag == "vmx" || flag == "svm")
    })
}

/// Tries to open `/dev/kvm` for reading and writing; the error says why it cannot be used.
pub fn probe_dev_kvm() -> Result<(), String> {
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
    {
        Ok(_) => Ok(()),
        Err(err) => Err(match err.kind() {
            std::io::ErrorKind::NotFound => "it does not exist".to_string(),
            std::io::ErrorKind::PermissionDenied => {
                "permission denied: add yourself to the kvm group".to_string()
            }
            _ => format!("opening it failed: {err}"),
        }),
    }
}

/// Chooses the accelerator from what was asked and what the host offers.
///
/// `dev_kvm` is the result of opening `/dev/kvm` read-write; `cpuinfo` the text of
/// `/proc/cpuinfo`. Auto picks KVM only when both say yes: a `/dev/kvm` without `vmx`/`svm`
/// is a nested, emulated KVM that runs guest code far slower than TCG.
pub(crate) fn choose_accel(
    request: AccelRequest,
    dev_kvm: &Result<(), String>,
    cpuinfo: &str,
) -> Result<Accel> {
    match request {
        AccelRequest::Tcg => Ok(Accel::Tcg),
        AccelRequest::Kvm => match dev_kvm {
            Ok(()) => Ok(Accel::Kvm),
            Err(reason) => Err(Error::new(format!(
                "--accel kvm: /dev/kvm is not usable here ({reason})"
            ))),
        },
        AccelRequest::Auto => Ok(if dev_kvm.is_ok() && cpuinfo_has_virtualisation(cpuinfo) {
            Accel::Kvm
        } else {
            Accel::Tcg
        }),
    }
}

/// Chooses the accelerator on this host.
pub fn detect_accel(request: AccelRequest) -> Result<Accel> {
    match request {
        AccelRequest::Tcg => Ok(Accel::Tcg),
        _ => {
            let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
            choose_accel(request, &probe_dev_kvm(), &cpuinfo)
        }
    }
}

/// Everything that goes into one QEMU command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QemuConfig {
    pub machine: Machine,
    pub accel: Accel,
    pub memory_mib: u32,
    /// vCPUs (`-smp`); 1 leaves QEMU's default single CPU and command line as they were.
    pub cpus: u16,
    pub kernel: PathBuf,
    /// The kernel command line (`-append`); left out when empty.
    pub cmdline: String,
    /// Passed through at the end, verbatim.
    pub extra: Vec<OsString>,
}

impl QemuConfig {
    /// The default configuration for booting `kernel` with `accel`.
    pub fn new(kernel: impl AsRef<Path>, accel: Accel) -> Self {
        QemuConfig {
            machine: Machine::Microvm,
            accel,
            memory_mib: 32,
            cpus: 1,
            kernel: kernel.as_ref().to_path_buf(),
            cmdline: String::new(),
            extra: Vec::new(),
        }
    }

    /// The arguments after the program name.
    ///
    /// Serial output goes to stdout (COM1 on `-serial stdio`), nothing else is attached
    /// (`-nodefaults -no-user-config -nographic -display none`), the guest leaves through
    /// the isa-debug-exit port at 0xf4, and a guest reset ends QEMU (`-no-reboot`).
    pub fn args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = Vec::new();
        let push = |args: &mut Vec<OsString>, items: &[&str]| {
            args.extend(items.iter().map(OsString::from))
        };
        push(&mut args, &["-M", self.machine.qemu_value()]);
        match self.accel {
            // One host thread per vCPU; QEMU's default with -smp, said explicitly so that
            // a change of default cannot serialise the vCPUs unnoticed.
            Accel::Tcg if self.cpus > 1 => {
                push(&mut args, &["-accel", "tcg,thread=multi", "-cpu", "max"])
            }
            Accel::Tcg => push(&mut args, &["-accel", "tcg", "-cpu", "max"]),
            Accel::Kvm => push(
                &mut args,
                &["-enable-kvm", "-cpu", "host,-arch-capabilities"],
            ),
        }
        push(&mut args, &["-m", &self.memory_mib.to_string()]);
        if self.cpus > 1 {
            push(&mut args, &["-smp", &self.cpus.to_string()]);
        }
        if self.machine != Machine::Microvm {
            // SeaBIOS would print its banner on the serial port, before the guest's output.
            push(&mut args, &["-fw_cfg", "name=etc/sercon-port,string=0"]);
        }
        push(
            &mut args,
            &[
                "-nodefaults",
                "-no-user-config",
                "-nographic",
                "-display",
                "none",
                "-serial",
                "stdio",
                "-device",
                "isa-debug-exit,iobase=0xf4,iosize=0x04",
                "-no-reboot",
                "-kernel",
            ],
        );
        args.push(self.kernel.clone().into_os_string());
        if !self.cmdline.is_empty() {
            args.push("-append".into());
            args.push(self.cmdline.clone().into());
        }
        args.extend(self.extra.iter().cloned());
        args
    }

    /// The command line as a person would type it (for `--verbose` and error messages).
    pub fn display(&self) -> String {
        std::iter::once(QEMU.to_string())
            .chain(
                self.args()
                    .iter()
                    .map(|arg| shell_quote(&arg.to_string_lossy())),
            )
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// QEMU's arguments that load `initrd` next to the kernel: the PVH module list (and the
/// multiboot module list) tells the guest where it is.
pub fn initrd_args(initrd: &Path) -> Vec<OsString> {
    vec!["-initrd".into(), initrd.as_os_str().to_owned()]
}

/// QEMU's arguments that attach the raw image at `image` as virtio-blk device `index`:
/// on virtio-mmio for microvm, on PCI for pc and q35. Writes reach the file when the guest
/// flushes (`cache=writeback`, QEMU's default: a guest's flush is an fdatasync).
pub fn disk_args(machine: Machine, image: &Path, index: usize, direct: bool) -> Vec<OsString> {
    let mut drive = OsString::from("file=");
    // QEMU's option syntax doubles a comma inside a value.
    drive.push(image.as_os_str().to_string_lossy().replace(',', ",,"));
    drive.push(format!(",if=none,id=disk{index},format=raw"));
    if direct {
        drive.push(",cache.direct=on");
    }
    let device = match machine {
        Machine::Microvm => "virtio-blk-device",
        Machine::Pc | Machine::Q35 => "virtio-blk-pci",
    };
    vec![
        "-drive".into(),
        drive,
        "-device".into(),
        format!("{device},drive=disk{index}").into(),
    ]
}

/// QEMU's own confinement, for a guest that breaks out of its emulation: QEMU's seccomp
/// filter (`-sandbox`: no obsolete system calls, no privilege changes, no new programs, no
/// resource or scheduler changes) where QEMU was built with it.
///
/// Not `-runas nobody` as root: changing credentials clears the parent-death signal that
/// makes QEMU die with the runner (see `cleanup`), and a QEMU that outlives a killed runner
/// is the worse risk; the filter already denies what root would most be used for.
pub fn confinement(has_seccomp: bool) -> Vec<OsString> {
    if has_seccomp {
        vec![
            "-sandbox".into(),
            "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny".into(),
        ]
    } else {
        Vec::new()
    }
}

/// Whether the QEMU at `path` was built with seccomp (it links libseccomp); `-sandbox`
/// exists only then. Looked up once per process.
pub fn has_seccomp(path: &Path) -> bool {
    static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAS.get_or_init(|| contains(path, b"libseccomp.so").unwrap_or(false))
}

/// Whether the file at `path` contains `needle`, read in pieces (a QEMU binary is tens of
/// MiB).
fn contains(path: &Path, needle: &[u8]) -> std::io::Result<bool> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut buffer = vec![0u8; 64 * 1024];
    // The last bytes of the previous piece, for a needle that spans two.
    let mut kept = 0;
    loop {
        let n = file.read(&mut buffer[kept..])?;
        if n == 0 {
            return Ok(false);
        }
        let filled = kept + n;
        if buffer[..filled].windows(needle.len()).any(|w| w == needle) {
            return Ok(true);
        }
        kept = (needle.len() - 1).min(filled);
        buffer.copy_within(filled - kept..filled, 0);
    }
}

/// The kernel command line: `[unikernel.timeline] -- <args>`.
///
/// The kernel reads flags (`unikernel.*`) before the `--` and gives the app the words after
/// it, split as a shell would (see `libs/args`). Plain arguments go as they are; one with a
/// space, a quote or a backslash is single-quoted so that it arrives as one argument. The
/// `--` is always there: QEMU's multiboot loader puts the kernel's file name first on the
/// command line, and the `--` keeps it out of the app's arguments.
pub(crate) fn kernel_cmdline(args: &[String], timeline: bool) -> String {
    let mut words: Vec<String> = Vec::new();
    if timeline {
        words.push(crate::timeline::CMDLINE_FLAG.to_string());
    }
    words.push("--".to_string());
    words.extend(args.iter().map(|arg| shell_quote(arg)));
    words.join(" ")
}

fn shell_quote(arg: &str) -> String {
    if !arg.is_empty()
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_=.,/:+@%".contains(&b))
    {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    mod accel {
        use crate::qemu::{Accel, AccelRequest, choose_accel, cpuinfo_has_virtualisation};
        use clap::ValueEnum;

        const INTEL: &str = "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu vme de pse tsc msr vmx ssse3\n";
        const AMD: &str = "processor\t: 0\nflags\t\t: fpu svm sse2\n";
        const NESTED: &str =
            "processor\t: 0\nflags\t\t: fpu vme hypervisor sse2 lahf_lm\nvmx flags\t: none\n";

        #[test]
        fn cpuinfo_flags() {
            assert!(cpuinfo_has_virtualisation(INTEL));
            assert!(cpuinfo_has_virtualisation(AMD));
            assert!(!cpuinfo_has_virtualisation(NESTED));
            assert!(!cpuinfo_has_virtualisation(""));
            // A flag that merely contains the letters does not count.
            assert!(!cpuinfo_has_virtualisation("flags : vmxnet svmx\n"));
        }

        #[test]
        fn auto_picks_kvm_only_with_both() {
            let ok = Ok(());
            let no = Err("it does not exist".to_string());
            assert_eq!(choose_accel(AccelRequest::Auto, &ok, INTEL), Ok(Accel::Kvm));
            assert_eq!(choose_accel(AccelRequest::Auto, &ok, AMD), Ok(Accel::Kvm));
            assert_eq!(
                choose_accel(AccelRequest::Auto, &ok, NESTED),
                Ok(Accel::Tcg)
            );
            assert_eq!(choose_accel(AccelRequest::Auto, &no, INTEL), Ok(Accel::Tcg));
        }

        #[test]
        fn forced_choices() {
            let ok = Ok(());
            let no = Err("permission denied: add yourself to the kvm group".to_string());
            assert_eq!(choose_accel(AccelRequest::Tcg, &ok, INTEL), Ok(Accel::Tcg));
            // Forced KVM is allowed without vmx/svm (a nested KVM, for VMM overhead figures).
            assert_eq!(choose_accel(AccelRequest::Kvm, &ok, NESTED), Ok(Accel::Kvm));
            let err = choose_accel(AccelRequest::Kvm, &no, INTEL).unwrap_err();
            assert_eq!(
                err.message(),
                "--accel kvm: /dev/kvm is not usable here (permission denied: add yourself to the kvm group)"
            );
        }

        #[test]
        fn parse_requests() {
            assert_eq!(
                AccelRequest::from_str("auto", false),
                Ok(AccelRequest::Auto)
            );
            assert_eq!(AccelRequest::from_str("kvm", false), Ok(AccelRequest::Kvm));
            assert_eq!(AccelRequest::from_str("tcg", false), Ok(AccelRequest::Tcg));
            assert!(AccelRequest::from_str("hvf", false).is_err());
        }
    }

    mod command {
        use crate::qemu::{
            Accel, Machine, QemuConfig, confinement, disk_args, initrd_args, kernel_cmdline,
        };
        use clap::ValueEnum;
        use std::path::Path;

        fn strings(config: &QemuConfig) -> Vec<String> {
            config
                .args()
                .into_iter()
                .map(|arg| arg.into_string().unwrap())
                .collect()
        }

        #[test]
        fn default_tcg_microvm() {
            let config = QemuConfig::new("/k.elf", Accel::Tcg);
            assert_eq!(
                strings(&config).join(" "),
                "-M microvm,pit=on,pic=on,rtc=on -accel tcg -cpu max -m 32 -nodefaults \
                 -no-user-config -nographic -display none -serial stdio \
                 -device isa-debug-exit,iobase=0xf4,iosize=0x04 -no-reboot -kernel /k.elf"
            );
        }

        #[test]
        fn several_cpus_get_smp_and_multi_threaded_tcg() {
            let mut config = QemuConfig::new("/k.elf", Accel::Tcg);
            config.cpus = 4;
            let joined = strings(&config).join(" ");
            assert!(joined.contains("-accel tcg,thread=multi -cpu max -m 32 -smp 4 "));
            config.accel = Accel::Kvm;
            let joined = strings(&config).join(" ");
            assert!(joined.contains("-enable-kvm -cpu host,-arch-capabilities -m 32 -smp 4 "));
        }

        #[test]
        fn qemu_is_confined_where_it_can_be() {
            let joined: Vec<String> = confinement(true)
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            assert_eq!(
                joined,
                [
                    "-sandbox",
                    "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"
                ]
            );
            assert!(confinement(false).is_empty());
        }

        #[test]
        fn kvm_pc_with_append_and_extra() {
            let mut config = QemuConfig::new("/k.elf", Accel::Kvm);
            config.machine = Machine::Q35;
            config.memory_mib = 64;
            config.cmdline = kernel_cmdline(&["a=1".into(), "b".into()], true);
            config.extra = vec!["-smp".into(), "2".into()];
            let args = strings(&config);
            let joined = args.join(" ");
            assert!(joined.starts_with("-M q35 -enable-kvm -cpu host,-arch-capabilities -m 64 "));
            // SeaBIOS keeps off the serial port.
            assert!(joined.contains("-fw_cfg name=etc/sercon-port,string=0"));
            assert!(joined.ends_with("-kernel /k.elf -append unikernel.timeline -- a=1 b -smp 2"));
            // The command line is one argument, quoted as nothing.
            assert!(args.contains(&"unikernel.timeline -- a=1 b".to_string()));
            assert!(
                config
                    .display()
                    .contains("-append 'unikernel.timeline -- a=1 b'")
            );
        }

        #[test]
        fn cmdline() {
            assert_eq!(kernel_cmdline(&[], false), "--");
            assert_eq!(kernel_cmdline(&[], true), "unikernel.timeline --");
            assert_eq!(
                kernel_cmdline(&["x y".into(), "z".into(), "it's".into(), "".into()], false),
                r"-- 'x y' z 'it'\''s' ''"
            );
            assert_eq!(
                kernel_cmdline(&["--n=1".into(), "a/b:c".into()], false),
                "-- --n=1 a/b:c"
            );
        }

        #[test]
        fn initrd_and_disks() {
            let initrd = initrd_args(Path::new("/tmp/files.cpio"));
            assert_eq!(initrd, ["-initrd", "/tmp/files.cpio"]);
            let mmio = disk_args(Machine::Microvm, Path::new("/d/a,b.img"), 0, false);
            assert_eq!(
                mmio,
                [
                    "-drive",
                    "file=/d/a,,b.img,if=none,id=disk0,format=raw",
                    "-device",
                    "virtio-blk-device,drive=disk0"
                ]
            );
            let pci = disk_args(Machine::Q35, Path::new("/d/data.img"), 1, true);
            assert_eq!(
                pci[1],
                "file=/d/data.img,if=none,id=disk1,format=raw,cache.direct=on"
            );
            assert_eq!(pci[3], "virtio-blk-pci,drive=disk1");
        }

        #[test]
        fn machines() {
            assert_eq!(Machine::from_str("microvm", false), Ok(Machine::Microvm));
            assert_eq!(Machine::from_str("pc", false), Ok(Machine::Pc));
            assert_eq!(Machine::from_str("q35", false), Ok(Machine::Q35));
            assert!(Machine::from_str("virt", false).is_err());
        }
    }
}
