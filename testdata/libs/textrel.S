/*
 * textrel.S: a library with a text relocation. The movabs instruction holds
 * the absolute address of tr_data in .text, so the dynamic linker would have
 * to write to the code segment (DT_TEXTREL, DF_TEXTREL). It is linked with
 * -z notext. The loader is expected to reject it.
 *
 * Exported:
 *   long tr_value(void)   returns tr_data, loaded through the absolute
 *                         address patched into .text.
 *   long tr_data          a global, 99.
 */
	.text
	.globl	tr_value
	.type	tr_value, @function
tr_value:
	movabs	$tr_data, %rax
	movq	(%rax), %rax
	ret
	.size	tr_value, .-tr_value

	.data
	.globl	tr_data
	.type	tr_data, @object
	.align	8
tr_data:
	.quad	99
	.size	tr_data, 8

	.section .note.GNU-stack, "", @progbits
