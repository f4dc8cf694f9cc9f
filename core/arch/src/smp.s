/*
 * Application-processor start-up. INIT-SIPI-SIPI starts an AP in real mode at
 * {TRAMPOLINE} (CS = {TRAMPOLINE} >> 4, IP = 0). The trampoline is copied there from
 * .rodata by smp.rs; it holds code and its own GDT only, nothing written after the copy,
 * so the page is mapped read-only and executable while the APs start, then unmapped.
 * What changes per AP (its stack and per-CPU block) is in AP_BOOT, a static of the kernel
 * (below 2 MiB, reachable with 32-bit addresses before paging is on).
 */
.section .rodata.unikernel_ap_trampoline, "a"
.balign 16
.global unikernel_ap_trampoline
unikernel_ap_trampoline:
.code16
    cli
    cld
    mov ax, cs
    mov ds, ax
    /* lgdt with a 32-bit base (0x66), at ds:offset: encoded by hand, the offset being a
       difference of labels */
    .byte 0x66, 0x0f, 0x01, 0x16
    .word ap_gdt_pointer - unikernel_ap_trampoline
    mov eax, cr0
    or eax, 1                                   /* PE */
    mov cr0, eax
    /* ljmpl 0x08:ap_protected, encoded by hand: its target is absolute */
    .byte 0x66, 0xea
    .long {TRAMPOLINE} + (ap_protected - unikernel_ap_trampoline)
    .word 0x08

.code32
ap_protected:
    mov eax, 0x10
    mov ds, eax
    mov es, eax
    mov ss, eax
    mov eax, cr4
    or eax, 1 << 5                              /* PAE */
    mov cr4, eax
    mov eax, dword ptr [{AP_BOOT}]              /* AP_BOOT.cr3: the BSP's PML4 */
    mov cr3, eax
    mov ecx, 0xC0000080                         /* EFER */
    rdmsr
    or eax, dword ptr [{AP_BOOT} + 8]           /* AP_BOOT.efer: LME, and NXE as the BSP has */
    wrmsr
    mov eax, cr0
    or eax, (1 << 31) | (1 << 16) | 1           /* PG | WP | PE */
    mov cr0, eax
    /* ljmp 0x18:ap_long_mode, into the kernel's text */
    .byte 0xea
    .long ap_long_mode
    .word 0x18

.balign 8
/* The accessed bits are set: loading a selector would otherwise write them, and once
   paging is on the page is read-only (a KVM guest faults there; TCG does not check). */
ap_gdt:
    .quad 0
    .quad 0x00cf9b000000ffff                    /* 0x08: 32-bit code */
    .quad 0x00cf93000000ffff                    /* 0x10: data */
    .quad 0x00af9b000000ffff                    /* 0x18: 64-bit code */
ap_gdt_pointer:
    .word 31
    .long {TRAMPOLINE} + (ap_gdt - unikernel_ap_trampoline)
.global unikernel_ap_trampoline_end
unikernel_ap_trampoline_end:

.section .text.unikernel_ap_long_mode, "ax"
.code64
ap_long_mode:
    mov eax, 0x10
    mov ds, eax
    mov es, eax
    mov ss, eax
    xor eax, eax
    mov fs, eax
    mov gs, eax
    mov rsp, qword ptr [rip + {AP_BOOT} + 16]   /* AP_BOOT.stack_top */
    mov rdi, qword ptr [rip + {AP_BOOT} + 24]   /* AP_BOOT.cpu */
    xor ebp, ebp
    call {AP_START}
    ud2
