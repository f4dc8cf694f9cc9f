/*
 * Switching between execution contexts (threads). A suspended context is its stack
 * pointer; what it needs to continue is on its stack.
 *
 * unikernel_context_switch(save: *mut u64 [rdi], next: u64 [rsi]):
 *   pushes the callee-saved registers (the SysV ABI lets the caller assume only these
 *   survive a call, so they are all a cooperative switch must keep), stores the stack
 *   pointer through `save`, loads `next` and pops that context's registers. The `ret`
 *   returns into whatever called the switch in that context, or, for a new context, into
 *   unikernel_context_start. There is no FPU/SSE state: the kernel is soft-float.
 *
 * A context preempted by an interrupt is suspended in the same way, from inside the
 * interrupt's dispatcher: the interrupt entry (interrupts.s) already saved every register
 * on that context's stack, and restores them when the context is resumed and the
 * dispatcher returns.
 */
.section .text.unikernel_context, "ax"
.global unikernel_context_switch
unikernel_context_switch:
    push rbp
    push rbx
    push r12
    push r13
    push r14
    push r15
    mov [rdi], rsp
    mov rsp, rsi
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbx
    pop rbp
    ret

/*
 * The first instructions of a new context: its initial stack (Context::new) holds r12 =
 * the Rust start function and r13 = its argument, and is 16-byte aligned here.
 */
.global unikernel_context_start
unikernel_context_start:
    mov rdi, r13
    xor ebp, ebp                            /* the end of the frame-pointer chain */
    call r12
    ud2
