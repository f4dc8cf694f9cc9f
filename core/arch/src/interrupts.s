/*
 * Entry stubs for the interrupt vectors 32..255 (external, timer, inter-processor and
 * spurious interrupts; 0..31 are CPU exceptions, in entry.s).
 *
 * Each stub is 16 bytes, at interrupt_stubs + 16 * (vector - 32), so no table of
 * addresses is needed. It pushes a zero error code and its vector, like the exception
 * stubs, so that the saved registers have the TrapFrame layout (src/fault.rs).
 *
 * The section is only referenced by `interrupts::install`, so an app without interrupts
 * links none of it (the linker drops unreferenced sections).
 */
.section .text.unikernel_interrupt_stubs, "ax"
.balign 16
.global unikernel_interrupt_stubs
unikernel_interrupt_stubs:
.set .Lvector, 32
.rept 224
    .balign 16
    push 0
    push .Lvector
    jmp interrupt_common
    .set .Lvector, .Lvector + 1
.endr

/*
 * Saves every general-purpose register (the interrupted code did not expect to be
 * interrupted), calls the Rust dispatcher with the frame, restores and returns.
 * The dispatcher may switch to another thread before it returns (see context.rs): this
 * frame then stays on the interrupted thread's stack until that thread is resumed.
 */
interrupt_common:
/* The common body follows: trap.s. */
