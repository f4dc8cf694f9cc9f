/* The floor's whole boot: the PVH note, page tables and GDT built into the image, and the
 * 32-bit entry that turns on long mode and calls floor_main. */

.section .note.Xen, "a"
.align 4
.long 4, 4, 18              /* namesz, descsz, XEN_ELFNOTE_PHYS32_ENTRY */
.asciz "Xen"
.long pvh_start32

.section .data.pagetables, "aw"
.align 4096
pml4: .quad pdpt + 3
      .fill 511, 8, 0
pdpt: .quad pd + 3
      .fill 511, 8, 0
pd:
.set i, 0
.rept 512                   /* identity map of the first GiB in 2 MiB pages */
      .quad (i << 21) | 0x83
.set i, i + 1
.endr
gdt:  .quad 0
      .quad 0x00af9a000000ffff  /* 64-bit code */
      .quad 0x00cf92000000ffff  /* data */
gdt_ptr:
      .word 23
      .quad gdt

.section .boot32, "ax"
.code32
.global pvh_start32
pvh_start32:
    mov eax, offset pml4
    mov cr3, eax
    mov eax, cr4
    or eax, 1 << 5              /* PAE */
    mov cr4, eax
    mov ecx, 0xC0000080         /* EFER */
    rdmsr
    or eax, 1 << 8              /* LME */
    wrmsr
    mov eax, cr0
    or eax, (1 << 31) | 1       /* PG | PE */
    mov cr0, eax
    lgdt [gdt_ptr]
    ljmp 8, offset long_mode
.code64
long_mode:
    mov ax, 16
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov rsp, offset stack_top
    call floor_main
1:  hlt
    jmp 1b

.section .bss
.align 16
stack: .skip 16384
stack_top:
