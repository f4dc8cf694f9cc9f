/*
 * The body both trap entries share (exceptions in entry.s, interrupts in interrupts.s),
 * included right after each one's label, with {HANDLER} the Rust function it calls.
 * The stub before it pushed an error code (or zero) and the vector; this saves every
 * general-purpose register on top, so that the stack holds a TrapFrame (src/fault.rs),
 * calls the handler with a pointer to it, restores and returns from the trap.
 */
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
    call {HANDLER}
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
