//! Host unit tests of the runner's pure logic: no QEMU, no cargo.

mod exit {
    use runner::boot::{Exit, map_exit};

    #[test]
    fn odd_statuses_carry_the_guests_status() {
        assert_eq!(map_exit(Some(1), None, ""), Exit::Status(0));
        assert_eq!(map_exit(Some(15), None, ""), Exit::Status(7));
        assert_eq!(map_exit(Some((101 << 1) | 1), None, ""), Exit::Status(101));
        assert_eq!(map_exit(Some((102 << 1) | 1), None, ""), Exit::Status(102));
        assert_eq!(map_exit(Some(255), None, ""), Exit::Status(127));
    }

    #[test]
    fn qemu_warnings_do_not_hide_status_zero() {
        let stderr = "qemu-system-x86_64: warning: host doesn't support requested feature\n";
        assert_eq!(map_exit(Some(1), None, stderr), Exit::Status(0));
    }

    #[test]
    fn qemu_errors_are_not_status_zero() {
        let stderr = "qemu-system-x86_64: -bogus: invalid option\n";
        assert_eq!(
            map_exit(Some(1), None, stderr),
            Exit::QemuFailed {
                code: Some(1),
                signal: None
            }
        );
    }

    #[test]
    fn zero_is_a_reset() {
        assert_eq!(map_exit(Some(0), None, ""), Exit::Reset);
    }

    #[test]
    fn even_statuses_and_signals_are_qemu_failures() {
        assert!(matches!(
            map_exit(Some(2), None, ""),
            Exit::QemuFailed { .. }
        ));
        assert_eq!(
            map_exit(None, Some(9), ""),
            Exit::QemuFailed {
                code: None,
                signal: Some(9)
            }
        );
    }
}

mod accel {
    use runner::qemu::{Accel, AccelRequest, choose_accel, cpuinfo_has_virtualisation};

    const INTEL: &str =
        "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu vme de pse tsc msr vmx ssse3\n";
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
        assert_eq!("auto".parse::<AccelRequest>(), Ok(AccelRequest::Auto));
        assert_eq!("kvm".parse::<AccelRequest>(), Ok(AccelRequest::Kvm));
        assert_eq!("tcg".parse::<AccelRequest>(), Ok(AccelRequest::Tcg));
        assert!("hvf".parse::<AccelRequest>().is_err());
    }
}

mod qemu_command {
    use runner::qemu::{Accel, Machine, QemuConfig, kernel_cmdline};

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
    fn machines() {
        assert_eq!("microvm".parse::<Machine>(), Ok(Machine::Microvm));
        assert_eq!("pc".parse::<Machine>(), Ok(Machine::Pc));
        assert_eq!("q35".parse::<Machine>(), Ok(Machine::Q35));
        assert!("virt".parse::<Machine>().is_err());
    }
}

mod elf {
    use runner::elf::{inspect, validate};

    /// A crafted ELF64: one PT_LOAD at 1 MiB (0x2000 bytes), optionally a PT_NOTE and a
    /// SHT_NOTE section with the Xen PVH note, optionally a multiboot header.
    struct Craft {
        class: u8,
        endian: u8,
        machine: u16,
        e_type: u16,
        load: bool,
        note_segment: bool,
        note_section: bool,
        note_type: u32,
        pvh_entry: u32,
        multiboot: bool,
    }

    impl Default for Craft {
        fn default() -> Self {
            Craft {
                class: 2,
                endian: 1,
                machine: 62,
                e_type: 2,
                load: true,
                note_segment: true,
                note_section: false,
                note_type: 18,
                pvh_entry: 0x10_0100,
                multiboot: false,
            }
        }
    }

    impl Craft {
        fn bytes(&self) -> Vec<u8> {
            let mut out = vec![0u8; 0x1000];
            out[..4].copy_from_slice(b"\x7fELF");
            out[4] = self.class;
            out[5] = self.endian;
            out[6] = 1;
            let put16 = |out: &mut Vec<u8>, at: usize, v: u16| {
                out[at..at + 2].copy_from_slice(&v.to_le_bytes())
            };
            let put32 = |out: &mut Vec<u8>, at: usize, v: u32| {
                out[at..at + 4].copy_from_slice(&v.to_le_bytes())
            };
            let put64 = |out: &mut Vec<u8>, at: usize, v: u64| {
                out[at..at + 8].copy_from_slice(&v.to_le_bytes())
            };
            put16(&mut out, 16, self.e_type);
            put16(&mut out, 18, self.machine);
            put32(&mut out, 20, 1);
            put64(&mut out, 24, 0x10_0000);
            put64(&mut out, 32, 64); // phoff
            put16(&mut out, 52, 64);
            put16(&mut out, 54, 56);
            let mut phnum = 0;
            let note_offset = 0x800u64;
            if self.load {
                let at = 64 + 56 * phnum;
                put32(&mut out, at, 1);
                put64(&mut out, at + 8, 0);
                put64(&mut out, at + 16, 0x10_0000);
                put64(&mut out, at + 24, 0x10_0000);
                put64(&mut out, at + 32, 0x1000);
                put64(&mut out, at + 40, 0x2000);
                phnum += 1;
            }
            if self.note_segment {
                let at = 64 + 56 * phnum;
                put32(&mut out, at, 4);
                put64(&mut out, at + 8, note_offset);
                put64(&mut out, at + 32, 40);
                put64(&mut out, at + 40, 40);
                phnum += 1;
            }
            put16(&mut out, 56, phnum as u16);
            // Two notes: an unrelated GNU note first, then Xen's.
            let n = note_offset as usize;
            put32(&mut out, n, 4);
            put32(&mut out, n + 4, 4);
            put32(&mut out, n + 8, 1);
            out[n + 12..n + 16].copy_from_slice(b"GNU\0");
            put32(&mut out, n + 16, 0xdead);
            put32(&mut out, n + 20, 4);
            put32(&mut out, n + 24, 4);
            put32(&mut out, n + 28, self.note_type);
            out[n + 32..n + 36].copy_from_slice(b"Xen\0");
            put32(&mut out, n + 36, self.pvh_entry);
            if self.note_section {
                // Section headers at 0x900: a null one and a SHT_NOTE one.
                put64(&mut out, 40, 0x900);
                put16(&mut out, 58, 64);
                put16(&mut out, 60, 2);
                let at = 0x900 + 64;
                put32(&mut out, at + 4, 7);
                put64(&mut out, at + 24, note_offset);
                put64(&mut out, at + 32, 40);
            }
            if self.multiboot {
                let magic = 0x1BAD_B002u32;
                let flags = 0x0001_0003u32;
                put32(&mut out, 0xa00, magic);
                put32(&mut out, 0xa04, flags);
                put32(
                    &mut out,
                    0xa08,
                    0u32.wrapping_sub(magic).wrapping_sub(flags),
                );
            }
            out
        }
    }

    #[test]
    fn pvh_image_is_bootable() {
        let info = inspect(&Craft::default().bytes()).unwrap();
        assert_eq!(info.pvh_entry, Some(0x10_0100));
        assert_eq!(info.multiboot_header, None);
        let both = Craft {
            multiboot: true,
            ..Craft::default()
        };
        let info = inspect(&both.bytes()).unwrap();
        assert_eq!(
            (info.pvh_entry, info.multiboot_header),
            (Some(0x10_0100), Some(0xa00))
        );
    }

    #[test]
    fn note_in_a_section_only() {
        let craft = Craft {
            note_segment: false,
            note_section: true,
            ..Craft::default()
        };
        assert_eq!(inspect(&craft.bytes()).unwrap().pvh_entry, Some(0x10_0100));
    }

    #[test]
    fn multiboot_only() {
        let craft = Craft {
            note_type: 5,
            multiboot: true,
            ..Craft::default()
        };
        let info = inspect(&craft.bytes()).unwrap();
        assert_eq!((info.pvh_entry, info.multiboot_header), (None, Some(0xa00)));
    }

    #[test]
    fn reasons() {
        let reason = |craft: Craft| inspect(&craft.bytes()).unwrap_err();
        assert_eq!(
            inspect(b"#!/bin/sh\n").unwrap_err(),
            "it is not an ELF file"
        );
        assert_eq!(
            inspect(b"\x7fELF\x02").unwrap_err(),
            "it is truncated (the ELF header is incomplete)"
        );
        assert!(
            reason(Craft {
                class: 1,
                ..Craft::default()
            })
            .contains("32-bit")
        );
        assert!(
            reason(Craft {
                endian: 2,
                ..Craft::default()
            })
            .contains("big-endian")
        );
        assert_eq!(
            reason(Craft {
                machine: 183,
                ..Craft::default()
            }),
            "it is built for AArch64 (e_machine 183), not x86_64"
        );
        assert!(
            reason(Craft {
                e_type: 1,
                ..Craft::default()
            })
            .contains("relocatable")
        );
        assert_eq!(
            reason(Craft {
                load: false,
                ..Craft::default()
            }),
            "it has no loadable segment"
        );
        assert_eq!(
            reason(Craft {
                note_type: 5,
                ..Craft::default()
            }),
            "it has neither a PVH entry note (.note.Xen, type 18) nor a multiboot header"
        );
        assert_eq!(
            reason(Craft {
                pvh_entry: 0x5000,
                ..Craft::default()
            }),
            "its PVH entry point 0x5000 lies outside every loadable segment"
        );
        let mut truncated = Craft::default().bytes();
        truncated[56] = 200; // phnum past the end of the file
        assert!(inspect(&truncated).unwrap_err().contains("truncated"));
    }

    #[test]
    fn validate_names_the_file() {
        let dir = std::env::temp_dir().join(format!("runner-elf-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("not-a-kernel");
        std::fs::write(&path, b"hello").unwrap();
        assert_eq!(
            validate(&path).unwrap_err().message(),
            format!(
                "{} is not a bootable unikernel image: it is not an ELF file",
                path.display()
            )
        );
        assert_eq!(
            validate(&dir.join("missing")).unwrap_err().message(),
            format!("{} does not exist", dir.join("missing").display())
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_floor_kernel_is_bootable() {
        let floor = runner::floor_elf();
        assert!(
            floor.is_file(),
            "no floor kernel at {} (set RUNNER_FLOOR)",
            floor.display()
        );
        let info = validate(&floor).unwrap();
        assert!(info.pvh_entry.is_some_and(|addr| addr >= 0x10_0000));
        assert_eq!(info.multiboot_header, None);
    }
}

mod timeline {
    use runner::timeline::{Stamp, entry_to_main_us, parse_line, render, rows};

    fn stamp(stage: &str, tsc: u64) -> Stamp {
        Stamp {
            stage: stage.into(),
            tsc,
        }
    }

    #[test]
    fn parse() {
        assert_eq!(
            parse_line("unikernel.timeline pvh 12345"),
            Some(stamp("pvh", 12345))
        );
        assert_eq!(
            parse_line("unikernel.timeline main 0x10\r\n"),
            Some(stamp("main", 16))
        );
        assert_eq!(parse_line("unikernel.timeline main"), None);
        assert_eq!(parse_line("unikernel.timeline main 12 extra"), None);
        assert_eq!(parse_line("unikernel.timeline main x"), None);
        assert_eq!(parse_line("hello unikernel.timeline main 1"), None);
    }

    #[test]
    fn conversion() {
        // 2 GHz: 2000 ticks per microsecond.
        let stamps = [
            stamp("pvh", 1_000_000),
            stamp("heap", 1_004_000),
            stamp("main", 1_010_000),
        ];
        let rows = rows(&stamps, 2e9);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].since_first_us, 0.0);
        assert_eq!(rows[1].since_first_us, 2.0);
        assert_eq!(rows[2].since_first_us, 5.0);
        assert_eq!(rows[2].delta_us, 3.0);
        assert_eq!(entry_to_main_us(&stamps, 2e9), Some(5.0));
        assert_eq!(entry_to_main_us(&stamps[..2], 2e9), None);
        let table = render(&stamps, 2e9);
        assert!(table.contains("main"), "{table}");
        assert!(table.contains("5.0 us"), "{table}");
    }

    #[test]
    fn host_tsc_is_measured() {
        let hz = runner::timeline::measure_tsc_hz().expect("x86_64 has a TSC");
        assert!((1e8..1e11).contains(&hz), "{hz}");
    }
}

mod serial {
    use runner::boot::SerialSink;
    use runner::timeline::Stamp;

    fn feed(timeline: bool, chunks: &[&[u8]]) -> (String, Vec<Stamp>) {
        let mut sink = SerialSink::new(timeline, false);
        for chunk in chunks {
            sink.push(chunk);
        }
        sink.finish()
    }

    #[test]
    fn timeline_lines_are_taken_out_across_chunks() {
        let (text, stamps) = feed(
            true,
            &[
                b"boot\nunikernel.time",
                b"line pvh 10\r\nhel",
                b"lo\nunikernel.timeline main 30\n",
                b"bye",
            ],
        );
        assert_eq!(text, "boot\nhello\nbye");
        let (text, _) = feed(false, &[b"a\r", b"\nb\r\n"]);
        assert_eq!(text, "a\nb\n");
        assert_eq!(stamps.len(), 2);
        assert_eq!(stamps[1].stage, "main");
        assert_eq!(stamps[1].tsc, 30);
    }

    #[test]
    fn look_alikes_stay() {
        let (text, stamps) = feed(
            true,
            &[
                b"unikernel.timeline is on\nunikernel.\n",
                b"unikernel.timeline x 1",
            ],
        );
        assert_eq!(text, "unikernel.timeline is on\nunikernel.\n");
        assert_eq!(stamps.len(), 1);
    }

    #[test]
    fn without_timeline_everything_stays() {
        let (text, stamps) = feed(false, &[b"unikernel.timeline pvh 1\n"]);
        assert_eq!(text, "unikernel.timeline pvh 1\n");
        assert!(stamps.is_empty());
    }
}

mod outcome {
    use std::time::Duration;

    use runner::boot::{BootOutcome, Exit};
    use runner::qemu::Accel;

    fn outcome(exit: Exit, stderr: &str) -> BootOutcome {
        BootOutcome {
            status: match exit {
                Exit::Status(s) => Some(s),
                _ => None,
            },
            timed_out: matches!(exit, Exit::TimedOut(_)),
            exit,
            serial: "so far\n".into(),
            stderr: stderr.into(),
            timeline: Vec::new(),
            wall: Duration::from_millis(30),
            accel: Accel::Tcg,
            command: "qemu-system-x86_64 ...".into(),
            vmm: runner::monitor::Vmm::Qemu,
            monitor: None,
        }
    }

    #[test]
    fn sentences_and_codes() {
        let ok = outcome(Exit::Status(0), "");
        assert_eq!(ok.exit_code(), 0);
        assert_eq!(ok.summary(), None);
        let seven = outcome(Exit::Status(7), "");
        assert_eq!(seven.exit_code(), 7);
        assert_eq!(seven.summary().unwrap(), "the guest exited with status 7");
        assert_eq!(
            outcome(Exit::Status(101), "").summary().unwrap(),
            "the guest exited with status 101 (it panicked)"
        );
        let hung = outcome(Exit::TimedOut(Duration::from_secs(30)), "");
        assert_eq!(hung.exit_code(), 124);
        assert_eq!(
            hung.summary().unwrap(),
            "the guest did not exit within 30 s; it was stopped (raise --timeout if it needs longer)"
        );
        let reset = outcome(Exit::Reset, "");
        assert_eq!(reset.exit_code(), 125);
        assert_eq!(
            reset.summary().unwrap(),
            "the guest reset (a triple fault?) before reporting an exit status"
        );
        let failed = outcome(
            Exit::QemuFailed {
                code: Some(1),
                signal: None,
            },
            "qemu-system-x86_64: -bogus: invalid option\n",
        );
        assert_eq!(failed.exit_code(), 126);
        assert_eq!(
            failed.summary().unwrap(),
            "QEMU failed with status 1: qemu-system-x86_64: -bogus: invalid option"
        );
        let killed = outcome(
            Exit::QemuFailed {
                code: None,
                signal: Some(9),
            },
            "",
        );
        assert_eq!(killed.summary().unwrap(), "QEMU was killed by signal 9");
    }

    #[test]
    #[should_panic(expected = "--- serial output ---\nso far\n")]
    fn assert_status_shows_the_serial_output() {
        outcome(Exit::TimedOut(Duration::from_secs(1)), "").assert_status(0);
    }
}

mod cli {
    use std::path::PathBuf;
    use std::time::Duration;

    use runner::cli::{BootOptions, Cli, RunTarget, parse};
    use runner::qemu::Protocol;
    use runner::qemu::{AccelRequest, Machine};

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn run_an_example_with_options_and_kernel_args() {
        let cli = parse(&args(
            "run hello --accel tcg --machine=q35 --memory 64 --timeout 5 --timeline --boot multiboot --qemu-arg -smp --qemu-arg 2 -q -- a -b",
        ))
        .unwrap();
        let expected = BootOptions {
            accel: AccelRequest::Tcg,
            machine: Machine::Q35,
            memory_mib: 64,
            timeout: Duration::from_secs(5),
            timeline: true,
            protocol: Protocol::Multiboot,
            qemu_args: vec!["-smp".into(), "2".into()],
            quiet: true,
            verbose: false,
            kernel_args: vec!["a".into(), "-b".into()],
            vmm: runner::monitor::Vmm::Qemu,
            stats: false,
            network: None,
        };
        assert_eq!(cli, Cli::Run(RunTarget::Example("hello".into()), expected));
    }

    #[test]
    fn network_options() {
        use runner::net::{Forward, NetChoice};
        let opts = |line: &str| match parse(&args(line)).unwrap() {
            Cli::Run(_, opts) => opts.network,
            other => panic!("{other:?}"),
        };
        assert_eq!(opts("run http"), None);
        assert_eq!(
            opts("run http --forward 8080:80 --forward=udp:7007:7"),
            Some(NetChoice::Forward(vec![
                "8080:80".parse::<Forward>().unwrap(),
                "udp:7007:7".parse().unwrap()
            ]))
        );
        assert_eq!(opts("run http --tap"), Some(NetChoice::Tap));
        assert_eq!(opts("run http --no-net"), Some(NetChoice::Off));
        for bad in [
            "run http --tap --no-net",
            "run http --forward 80",
            "run http --tap=1",
            "run http --forward 1:2 --tap",
        ] {
            assert!(parse(&args(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn run_targets() {
        assert!(matches!(
            parse(&args("run target/k.elf")).unwrap(),
            Cli::Run(RunTarget::Elf(_), _)
        ));
        assert!(matches!(
            parse(&args("run k.elf")).unwrap(),
            Cli::Run(RunTarget::Elf(_), _)
        ));
        assert_eq!(
            parse(&args("run --manifest-path app/Cargo.toml -p app")).unwrap(),
            Cli::Run(
                RunTarget::Manifest("app/Cargo.toml".into(), Some("app".into())),
                BootOptions::default()
            )
        );
        assert!(parse(&args("run")).is_err());
        assert!(parse(&args("run a b")).is_err());
        assert!(parse(&args("run hello --frob")).is_err());
        assert!(parse(&args("run hello --accel fast")).is_err());
        assert!(parse(&args("run hello --timeout")).is_err());
        assert!(parse(&args("run hello --timeout -1")).is_err());
    }

    #[test]
    fn boot_passes_everything_after_the_elf_to_the_kernel() {
        // What cargo's runner setting produces for `cargo run -- --x y`.
        let cli = parse(&args("boot --timeout 3 target/app --x y")).unwrap();
        let Cli::Boot(elf, opts) = cli else { panic!() };
        assert_eq!(elf, PathBuf::from("target/app"));
        assert_eq!(opts.timeout, Duration::from_secs(3));
        assert_eq!(opts.kernel_args, vec!["--x", "y"]);
        let Cli::Boot(_, opts) = parse(&args("boot k.elf -- a")).unwrap() else {
            panic!()
        };
        assert_eq!(opts.kernel_args, vec!["a"]);
        assert!(parse(&args("boot")).is_err());
    }

    #[test]
    fn other_commands() {
        assert_eq!(parse(&[]).unwrap(), Cli::Help);
        assert_eq!(
            parse(&args("test -- -p runner")).unwrap(),
            Cli::Test(args("-p runner"))
        );
        assert_eq!(
            parse(&args("new ../app --name=my-app")).unwrap(),
            Cli::New {
                path: "../app".into(),
                name: Some("my-app".into())
            }
        );
        assert_eq!(
            parse(&args("bench --runs 3 --floor f.elf")).unwrap(),
            Cli::Bench {
                runs: 3,
                floor: Some("f.elf".into()),
                quiet: false
            }
        );
        assert!(parse(&args("bench --runs 0")).is_err());
        assert_eq!(parse(&args("setup")).unwrap(), Cli::Setup { quiet: false });
        assert!(parse(&args("frob")).is_err());
    }
}

mod cargo_messages {
    use std::path::PathBuf;

    use runner::build::{Artifact, parse_artifacts, pick_executable};
    use runner::json::{Value, parse};

    #[test]
    fn json_values() {
        let value =
            parse(r#" {"a": [1, -2.5e1, true, null], "b": "x\"\u00e9\ud83d\ude00\n"} "#).unwrap();
        assert_eq!(
            value.get("a").unwrap().as_array().unwrap()[1],
            Value::Number(-25.0)
        );
        assert_eq!(value.get("b").unwrap().as_str(), Some("x\"é😀\n"));
        assert!(parse("{").is_none());
        assert!(parse(r#"{"a": 1} x"#).is_none());
        assert!(parse(&"[".repeat(1000)).is_none());
    }

    #[test]
    fn artifacts() {
        let stdout = r#"{"reason":"compiler-artifact","package_id":"path+file:///r/core#unikernel@0.1.0","target":{"kind":["lib"],"name":"unikernel"},"executable":null,"fresh":true}
{"reason":"compiler-artifact","package_id":"path+file:///r/examples/hello#0.1.0","target":{"kind":["bin"],"name":"hello"},"executable":"/r/examples/target/x86_64-unknown-none/release/hello","fresh":false}
{"reason":"build-finished","success":true}
"#;
        let artifacts = parse_artifacts(stdout);
        assert_eq!(artifacts.len(), 1);
        assert_eq!(artifacts[0].target_name, "hello");
        assert_eq!(
            pick_executable(&artifacts, Some("hello")),
            Ok(PathBuf::from(
                "/r/examples/target/x86_64-unknown-none/release/hello"
            ))
        );
        assert!(pick_executable(&[], None).is_err());
        let two = [
            Artifact {
                target_name: "a".into(),
                package_id: String::new(),
                executable: "/a".into(),
            },
            Artifact {
                target_name: "b".into(),
                package_id: String::new(),
                executable: "/b".into(),
            },
        ];
        assert_eq!(pick_executable(&two, Some("b")), Ok(PathBuf::from("/b")));
        assert!(pick_executable(&two, None).unwrap_err().contains("a, b"));
    }

    #[test]
    fn cargo_arguments() {
        let build = runner::build::CargoBuild {
            manifest_path: "/r/examples/Cargo.toml".into(),
            package: Some("hello".into()),
            release: true,
            quiet: true,
        };
        assert_eq!(
            build.args().join(" "),
            "build --manifest-path /r/examples/Cargo.toml --target x86_64-unknown-none \
             --message-format=json-render-diagnostics --release -p hello -q"
        );
    }
}

mod new_app {
    use std::path::Path;

    use runner::new::{check_crate_name, crate_name_for, template};

    #[test]
    fn names() {
        assert_eq!(
            crate_name_for(Path::new("/tmp/My App")),
            Some("my-app".into())
        );
        assert_eq!(crate_name_for(Path::new("/tmp/9lives")), None);
        assert!(check_crate_name("hello_world-2").is_ok());
        assert!(check_crate_name("hé").is_err());
        assert!(check_crate_name("").is_err());
    }

    #[test]
    fn files() {
        let files = template("demo", Path::new("/repo"), "x86_64-unknown-linux-gnu");
        let get = |name: &str| {
            files
                .iter()
                .find(|(path, _)| path == Path::new(name))
                .map(|(_, text)| text.clone())
                .unwrap()
        };
        let manifest = get("Cargo.toml");
        assert!(manifest.contains("name = \"demo\""));
        assert!(manifest.contains("unikernel = { path = \"/repo/core\" }"));
        assert!(manifest.contains("\n[workspace]\n"));
        assert!(
            manifest
                .contains("panic = \"abort\"\nopt-level = \"s\"\nlto = true\ncodegen-units = 1")
        );
        let config = get(".cargo/config.toml");
        assert!(config.contains("target = \"x86_64-unknown-none\""));
        assert!(config.contains(
            r#"rustflags = ["-C", "link-arg=-Tunikernel.ld", "-C", "relocation-model=static"]"#
        ));
        assert!(config.contains(
            r#"runner = ["cargo", "run", "-q", "--manifest-path", "/repo/runner/Cargo.toml", "--target", "x86_64-unknown-linux-gnu", "--", "boot"]"#
        ));
        let main = get("src/main.rs");
        assert!(main.contains("#[unikernel(console, heap = \"1 MiB\")]"));
        assert!(main.contains("println!(\"hello from demo\");"));
    }
}

mod bench {
    use runner::bench::{round_order, stats};

    #[test]
    fn statistics() {
        assert_eq!(stats(&[]), None);
        let s = stats(&[5.0, 1.0, 3.0]).unwrap();
        assert_eq!((s.median_ms, s.min_ms, s.p90_ms), (3.0, 1.0, 5.0));
        let ten: Vec<f64> = (1..=10).map(f64::from).collect();
        let s = stats(&ten).unwrap();
        assert_eq!((s.median_ms, s.min_ms, s.p90_ms), (5.5, 1.0, 9.0));
    }

    #[test]
    fn alternating_order() {
        assert_eq!(round_order(3, 0), vec![0, 1, 2]);
        assert_eq!(round_order(3, 1), vec![2, 1, 0]);
        assert_eq!(round_order(3, 2), vec![0, 1, 2]);
    }
}
