/work/main/examples/target-sz/x86_64-unknown-none/release/deps/unikernel_arch-ea790f0323878eeb.d: /tmp/szwt/core/arch/src/lib.rs /tmp/szwt/core/arch/src/boot.rs /tmp/szwt/core/arch/src/cmdline.rs /tmp/szwt/core/arch/src/context.rs /tmp/szwt/core/arch/src/device.rs /tmp/szwt/core/arch/src/exit.rs /tmp/szwt/core/arch/src/fault.rs /tmp/szwt/core/arch/src/hypervisor.rs /tmp/szwt/core/arch/src/interrupts.rs /tmp/szwt/core/arch/src/memory.rs /tmp/szwt/core/arch/src/serial.rs /tmp/szwt/core/arch/src/timeline.rs /tmp/szwt/core/arch/src/wait.rs /tmp/szwt/core/arch/src/cpu.rs /tmp/szwt/core/arch/src/paging.rs /tmp/szwt/core/arch/src/start.rs /tmp/szwt/core/arch/src/context.s /tmp/szwt/core/arch/src/interrupts.s /tmp/szwt/core/arch/src/trap.s /tmp/szwt/core/arch/src/entry.s

/work/main/examples/target-sz/x86_64-unknown-none/release/deps/libunikernel_arch-ea790f0323878eeb.rlib: /tmp/szwt/core/arch/src/lib.rs /tmp/szwt/core/arch/src/boot.rs /tmp/szwt/core/arch/src/cmdline.rs /tmp/szwt/core/arch/src/context.rs /tmp/szwt/core/arch/src/device.rs /tmp/szwt/core/arch/src/exit.rs /tmp/szwt/core/arch/src/fault.rs /tmp/szwt/core/arch/src/hypervisor.rs /tmp/szwt/core/arch/src/interrupts.rs /tmp/szwt/core/arch/src/memory.rs /tmp/szwt/core/arch/src/serial.rs /tmp/szwt/core/arch/src/timeline.rs /tmp/szwt/core/arch/src/wait.rs /tmp/szwt/core/arch/src/cpu.rs /tmp/szwt/core/arch/src/paging.rs /tmp/szwt/core/arch/src/start.rs /tmp/szwt/core/arch/src/context.s /tmp/szwt/core/arch/src/interrupts.s /tmp/szwt/core/arch/src/trap.s /tmp/szwt/core/arch/src/entry.s

/work/main/examples/target-sz/x86_64-unknown-none/release/deps/libunikernel_arch-ea790f0323878eeb.rmeta: /tmp/szwt/core/arch/src/lib.rs /tmp/szwt/core/arch/src/boot.rs /tmp/szwt/core/arch/src/cmdline.rs /tmp/szwt/core/arch/src/context.rs /tmp/szwt/core/arch/src/device.rs /tmp/szwt/core/arch/src/exit.rs /tmp/szwt/core/arch/src/fault.rs /tmp/szwt/core/arch/src/hypervisor.rs /tmp/szwt/core/arch/src/interrupts.rs /tmp/szwt/core/arch/src/memory.rs /tmp/szwt/core/arch/src/serial.rs /tmp/szwt/core/arch/src/timeline.rs /tmp/szwt/core/arch/src/wait.rs /tmp/szwt/core/arch/src/cpu.rs /tmp/szwt/core/arch/src/paging.rs /tmp/szwt/core/arch/src/start.rs /tmp/szwt/core/arch/src/context.s /tmp/szwt/core/arch/src/interrupts.s /tmp/szwt/core/arch/src/trap.s /tmp/szwt/core/arch/src/entry.s

/tmp/szwt/core/arch/src/lib.rs:
/tmp/szwt/core/arch/src/boot.rs:
/tmp/szwt/core/arch/src/cmdline.rs:
/tmp/szwt/core/arch/src/context.rs:
/tmp/szwt/core/arch/src/device.rs:
/tmp/szwt/core/arch/src/exit.rs:
/tmp/szwt/core/arch/src/fault.rs:
/tmp/szwt/core/arch/src/hypervisor.rs:
/tmp/szwt/core/arch/src/interrupts.rs:
/tmp/szwt/core/arch/src/memory.rs:
/tmp/szwt/core/arch/src/serial.rs:
/tmp/szwt/core/arch/src/timeline.rs:
/tmp/szwt/core/arch/src/wait.rs:
/tmp/szwt/core/arch/src/cpu.rs:
/tmp/szwt/core/arch/src/paging.rs:
/tmp/szwt/core/arch/src/start.rs:
/tmp/szwt/core/arch/src/context.s:
/tmp/szwt/core/arch/src/interrupts.s:
/tmp/szwt/core/arch/src/trap.s:
/tmp/szwt/core/arch/src/entry.s:
