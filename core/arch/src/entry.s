/*
 * Boot entry: from a loader's 32-bit protected mode to Rust in long mode.
 *
 * Both loaders leave paging off, interrupts off and no usable stack:
 * - PVH: ebx = physical address of the hvm_start_info;
 * - multiboot: eax = 0x2BADB002, ebx = physical address of the multiboot info.
 * The path is kept short on purpose: on a software-assisted KVM every instruction before
 * the page tables are live is emulated. So nothing loops here; the three boot page-table
 * entries are single stores into tables the loader zeroed with the rest of .bss.
 */

.section .note.Xen, "a"
.balign 4
    .long 4                     /* namesz */
    .long 4                     /* descsz */
    .long 18                    /* XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .long pvh_entry32

.section .multiboot, "a"
.balign 4
.global multiboot_header
multiboot_header:
    .long 0x1BADB002                        /* magic */
    .long 0x00010002                        /* flags: memory map (1), load addresses (16) */
    .long -(0x1BADB002 + 0x00010002)        /* checksum */
    .long multiboot_header                  /* header_addr */
    .long __image_start                     /* load_addr */
    .long __multiboot_load_end              /* load_end_addr */
    .long __image_end                       /* bss_end_addr */
    .long multiboot_entry32                 /* entry_addr */

.section .text.boot32, "ax"
.code32
.global pvh_entry32
pvh_entry32:
    mov edi, {LOADER_PVH}
    jmp 1f
.global multiboot_entry32
multiboot_entry32:
    /* Move rodata from where the flat load put it (inside bss) to its address, then
       zero what it occupied there (see unikernel.ld). */
    cld
    mov esi, offset __multiboot_rodata_load
    mov edi, offset __rodata_start
    mov ecx, offset __rodata_size
    rep movsb
    mov edi, offset __multiboot_rodata_load
    mov ecx, offset __rodata_size
    xor eax, eax
    rep stosb
    mov edi, {LOADER_MULTIBOOT}
1:
    mov esi, ebx                            /* boot info pointer, kept for Rust */
    rdtsc                                   /* the timeline's first stamp */
    mov dword ptr [{ENTRY_TSC}], eax
    mov dword ptr [{ENTRY_TSC} + 4], edx

    /* Identity map the first 2 MiB with one large page; Rust refines it to W^X 4 KiB pages. */
    mov dword ptr [{PML4}], offset {PDPT} + 3     /* present | writable */
    mov dword ptr [{PDPT}], offset {PD} + 3
    mov dword ptr [{PD}], 0x83                    /* present | writable | 2 MiB */
    mov eax, offset {PML4}
    mov cr3, eax

    mov eax, cr4
    or eax, 1 << 5                          /* PAE */
    mov cr4, eax
    mov ecx, 0xC0000080                     /* EFER */
    rdmsr
    or eax, 1 << 8                          /* LME */
    wrmsr
    mov eax, cr0
    or eax, (1 << 31) | (1 << 16) | 1       /* PG | WP (ring 0 honours read-only) | PE */
    mov cr0, eax

    lgdt [boot_gdt_pointer]
    ljmp 8, offset long_mode_entry

.code64
long_mode_entry:
    mov eax, 16
    mov ds, eax
    mov es, eax
    mov ss, eax
    xor eax, eax
    mov fs, eax
    mov gs, eax
    lea rsp, [rip + {BOOT_STACK} + {BOOT_STACK_END}]
    xor ebp, ebp
    mov edi, edi                            /* upper halves are undefined after the switch */
    mov esi, esi
    call {RUST_START}
    ud2

.section .rodata
.balign 8
boot_gdt:
    .quad 0
    .quad 0x00af9a000000ffff                /* 64-bit code */
    .quad 0x00cf92000000ffff                /* data */
boot_gdt_pointer:
    .word 23
    .quad boot_gdt

/*
 * CPU exception entry. Each stub pushes a zero where the CPU pushes no error code, then
 * the vector, so that every frame has the same layout (TrapFrame in src/fault.rs).
 */
.section .text
.macro EXCEPTION_STUB vector, has_error_code
exception_stub_\vector:
    .if \has_error_code == 0
    push 0
    .endif
    push \vector
    jmp exception_common
.endm

EXCEPTION_STUB 0, 0
EXCEPTION_STUB 1, 0
EXCEPTION_STUB 2, 0
EXCEPTION_STUB 3, 0
EXCEPTION_STUB 4, 0
EXCEPTION_STUB 5, 0
EXCEPTION_STUB 6, 0
EXCEPTION_STUB 7, 0
EXCEPTION_STUB 8, 1
EXCEPTION_STUB 9, 0
EXCEPTION_STUB 10, 1
EXCEPTION_STUB 11, 1
EXCEPTION_STUB 12, 1
EXCEPTION_STUB 13, 1
EXCEPTION_STUB 14, 1
EXCEPTION_STUB 15, 0
EXCEPTION_STUB 16, 0
EXCEPTION_STUB 17, 1
EXCEPTION_STUB 18, 0
EXCEPTION_STUB 19, 0
EXCEPTION_STUB 20, 0
EXCEPTION_STUB 21, 1
EXCEPTION_STUB 22, 0
EXCEPTION_STUB 23, 0
EXCEPTION_STUB 24, 0
EXCEPTION_STUB 25, 0
EXCEPTION_STUB 26, 0
EXCEPTION_STUB 27, 0
EXCEPTION_STUB 28, 0
EXCEPTION_STUB 29, 1
EXCEPTION_STUB 30, 1
EXCEPTION_STUB 31, 0

/* 32-bit addresses: the image lies below 2 MiB (unikernel.ld). */
.section .rodata
.balign 4
.global exception_stubs
exception_stubs:
.irp vector, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    .long exception_stub_\vector
.endr

.section .text
/* The common body follows: trap.s. */
exception_common:
