/*
 * dockyard's BIOS boot loader: the 440 bytes of MBR boot code of a raw-bios
 * disk. It needs no installer and no file system code: the disk writer knows
 * where everything lies (the kernel and initrd are contiguous files of the
 * FAT partition it writes) and fills in the load table at offset 0x180.
 *
 * It reads three extents with INT 13h AH=42h (EDD packets) in 32 KiB chunks
 * into a bounce buffer at 0x10000 and copies each chunk to its place with
 * INT 15h AH=87h (works above 1 MiB on every BIOS, SeaBIOS included):
 *   1. the "low image" from the MBR gap: the kernel's real-mode setup with its
 *      header already filled in by the writer (Linux x86 boot protocol 2.02+:
 *      type_of_loader, CAN_USE_HEAP, heap_end_ptr, cmd_line_ptr,
 *      ramdisk_image/size) and the command line at +0xE000  -> 0x90000
 *   2. the kernel's protected-mode part                       -> 0x100000
 *   3. the initrd                                             -> where the writer put it
 * then jumps to the setup code at 0x9020:0000 with DS=ES=FS=GS=SS=0x9000 and
 * SP=0xE000, as the boot protocol describes for a loader at 0x90000.
 *
 * Assembled with GNU as (test/unit/boot checks the bytes in mbrload.ts):
 *   as --32 -o mbrload.o mbrload.S
 *   ld -m elf_i386 -Ttext=0x7c00 --oformat=binary -o mbrload.bin mbrload.o
 */
        .code16
        .intel_syntax noprefix
        .text
        .globl _start
_start:
        ljmp    0, offset start                 /* some BIOSes enter at 07C0:0000 */
start:
        cli
        xor     ax, ax
        mov     ds, ax
        mov     es, ax
        mov     ss, ax
        mov     sp, 0x7c00
        sti
        cld
        mov     [drive], dl
        mov     word ptr [entry], offset table

next_entry:
        mov     si, [entry]
        cmp     si, offset table_end
        jae     boot
        mov     eax, [si]                       /* first LBA */
        mov     [dap_lba], eax
        mov     eax, [si + 4]                   /* sectors */
        mov     [remain], eax
        mov     eax, [si + 8]                   /* destination (linear) */
        mov     [dest], eax
        add     word ptr [entry], 12

chunk:
        mov     eax, [remain]
        test    eax, eax
        jz      next_entry
        cmp     eax, 64
        jbe     1f
        mov     ax, 64
1:
        mov     [dap_count], ax
        mov     si, offset dap
        mov     dl, [drive]
        mov     ah, 0x42                        /* INT 13h extended read */
        int     0x13
        jc      fail
        mov     eax, [dest]                     /* destination descriptor base */
        mov     [gdt_dst + 2], ax
        shr     eax, 16
        mov     [gdt_dst + 4], al
        mov     [gdt_dst + 7], ah
        mov     cx, [dap_count]
        shl     cx, 8                           /* sectors -> words */
        xor     ax, ax
        mov     es, ax
        mov     si, offset gdt
        mov     ah, 0x87                        /* INT 15h block move */
        int     0x15
        jc      fail
        movzx   eax, word ptr [dap_count]
        add     [dap_lba], eax
        sub     [remain], eax
        shl     eax, 9
        add     [dest], eax
        jmp     chunk

boot:
        cli
        mov     ax, 0x9000
        mov     ds, ax
        mov     es, ax
        mov     fs, ax
        mov     gs, ax
        mov     ss, ax
        mov     sp, 0xe000
        ljmp    0x9020, 0

fail:
        mov     si, offset msg
2:
        lodsb
        test    al, al
        jz      3f
        mov     ah, 0x0e
        mov     bx, 7
        int     0x10
        jmp     2b
3:
        hlt
        jmp     3b

msg:    .asciz  "dockyard: disk read error\r\n"

        .balign 4
dap:    .byte   0x10, 0                         /* EDD disk address packet */
dap_count:
        .word   0
        .word   0, 0x1000                       /* buffer 1000:0000 */
dap_lba:
        .long   0, 0
remain: .long   0
dest:   .long   0
entry:  .word   0
drive:  .byte   0

        .balign 8
gdt:                                            /* INT 15h AH=87h descriptor table */
        .quad   0, 0
        .word   0xffff, 0x0000                  /* source: 0x10000 */
        .byte   0x01, 0x93, 0x00, 0x00
gdt_dst:
        .word   0xffff, 0x0000                  /* destination: filled in per chunk */
        .byte   0x00, 0x93, 0x00, 0x00
        .quad   0, 0

        .org    0x180
        .ascii  "DYLD"                          /* load table, filled in by the writer */
table:
        .long   0, 0, 0                         /* low image: LBA, sectors, 0x90000 */
        .long   0, 0, 0                         /* kernel protected-mode part */
        .long   0, 0, 0                         /* initrd */
table_end:
        .org    440
