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
    push rax
    push rbx
    push rcx
    push rdx
    push rsi
    push rdi
    push rbp
    push r8
    push r9
    push r10
    push r11
    push r12
    push r13
    push r14
    push r15
    mov rdi, rsp                            /* &mut TrapFrame */
    mov rbx, rsp
    and rsp, -16                            /* the SysV ABI wants a 16-byte aligned call */
    cld
    call {DISPATCH}
    mov rsp, rbx
    pop r15
    pop r14
    pop r13
    pop r12
    pop r11
    pop r10
    pop r9
    pop r8
    pop rbp
    pop rdi
    pop rsi
    pop rdx
    pop rcx
    pop rbx
    pop rax
    add rsp, 16                             /* vector and error code */
    iretq
