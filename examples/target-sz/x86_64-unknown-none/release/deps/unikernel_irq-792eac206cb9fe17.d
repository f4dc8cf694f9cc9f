/work/main/examples/target-sz/x86_64-unknown-none/release/deps/unikernel_irq-792eac206cb9fe17.d: /tmp/szwt/libs/irq/src/lib.rs /tmp/szwt/libs/irq/src/ioapic.rs /tmp/szwt/libs/irq/src/lapic.rs /tmp/szwt/libs/irq/src/pic.rs

/work/main/examples/target-sz/x86_64-unknown-none/release/deps/libunikernel_irq-792eac206cb9fe17.rlib: /tmp/szwt/libs/irq/src/lib.rs /tmp/szwt/libs/irq/src/ioapic.rs /tmp/szwt/libs/irq/src/lapic.rs /tmp/szwt/libs/irq/src/pic.rs

/work/main/examples/target-sz/x86_64-unknown-none/release/deps/libunikernel_irq-792eac206cb9fe17.rmeta: /tmp/szwt/libs/irq/src/lib.rs /tmp/szwt/libs/irq/src/ioapic.rs /tmp/szwt/libs/irq/src/lapic.rs /tmp/szwt/libs/irq/src/pic.rs

/tmp/szwt/libs/irq/src/lib.rs:
/tmp/szwt/libs/irq/src/ioapic.rs:
/tmp/szwt/libs/irq/src/lapic.rs:
/tmp/szwt/libs/irq/src/pic.rs:
