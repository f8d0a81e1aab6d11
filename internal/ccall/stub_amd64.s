#include "go_asm.h"
#include "textflag.h"

// The stubs below are entered by runtime.cgocall (through asmcgocall) on the
// thread's system stack, with the C calling convention: DI holds the frame
// pointer and SP is 8 mod 16 after the CALL pushed the return address.
// They save BP, BX and R12 to R15, which the System V ABI makes
// callee-saved in C too, so these registers survive the call into the
// library. BX holds the frame pointer, R12 the PKRU mask, R13 the saved
// PKRU value, R14 the goroutine's stack top and R15 a result.
// SP is realigned to 16 bytes before the call and restored from BP after it.
//
// The frame lives on the calling goroutine's stack. If the library calls
// back into Go and the callback grows that stack, the runtime moves it, so
// the stub reads the stack top (runtime's _cgo_topofstack, which cgo's own
// wrappers use for the same purpose) before and after the call and shifts
// the frame pointer by the difference before it stores the results.

// RDPKRU and WRPKRU, written as bytes so that older assemblers accept them.
#define RDPKRU BYTE $0x0F; BYTE $0x01; BYTE $0xEE
#define WRPKRU BYTE $0x0F; BYTE $0x01; BYTE $0xEF

// KEY_ENTER clears the bits of R12 (a frame's PKRU mask) in the thread's PKRU
// register and keeps the old value in R13. It does nothing when R12 is zero.
#define KEY_ENTER(skip) \
	TESTL R12, R12; \
	JZ    skip; \
	XORL  CX, CX; \
	RDPKRU; \
	MOVL  AX, R13; \
	MOVL  R12, DX; \
	NOTL  DX; \
	ANDL  DX, AX; \
	XORL  CX, CX; \
	XORL  DX, DX; \
	WRPKRU; \
skip:

// KEY_EXIT writes back the PKRU value saved by KEY_ENTER.
#define KEY_EXIT(skip) \
	TESTL R12, R12; \
	JZ    skip; \
	MOVL  R13, AX; \
	XORL  CX, CX; \
	XORL  DX, DX; \
	WRPKRU; \
skip:

// callInts(frame *intFrame): up to six register and three stack arguments,
// all integer or pointer, one integer result.
TEXT callInts<>(SB), NOSPLIT|NOFRAME, $0
	PUSHQ BP
	MOVQ  SP, BP
	PUSHQ BX
	PUSHQ R12
	PUSHQ R13
	PUSHQ R14
	PUSHQ R15
	MOVQ  DI, BX
	CALL  _cgo_topofstack(SB)
	MOVQ  AX, R14
	SUBQ  $32, SP
	ANDQ  $~15, SP

	MOVQ intFrame_stack+0(BX), AX
	MOVQ AX, 0(SP)
	MOVQ intFrame_stack+8(BX), AX
	MOVQ AX, 8(SP)
	MOVQ intFrame_stack+16(BX), AX
	MOVQ AX, 16(SP)

	MOVL intFrame_pkru(BX), R12
	KEY_ENTER(intsKeyEnter)

	MOVQ intFrame_ints+0(BX), DI
	MOVQ intFrame_ints+8(BX), SI
	MOVQ intFrame_ints+16(BX), DX
	MOVQ intFrame_ints+24(BX), CX
	MOVQ intFrame_ints+32(BX), R8
	MOVQ intFrame_ints+40(BX), R9
	MOVQ intFrame_fn(BX), R10
	XORL AX, AX // no vector registers carry arguments (for variadic callees)
	CALL R10
	MOVQ AX, R15
	CALL _cgo_topofstack(SB)
	SUBQ R14, AX
	ADDQ AX, BX
	MOVQ R15, intFrame_r0(BX)

	KEY_EXIT(intsKeyExit)

	LEAQ  -40(BP), SP
	POPQ  R15
	POPQ  R14
	POPQ  R13
	POPQ  R12
	POPQ  BX
	POPQ  BP
	RET

// callFull(frame *fullFrame): six integer registers, eight vector registers,
// up to MaxStackArgs stack words; results in AX, DX, X0 and X1.
TEXT callFull<>(SB), NOSPLIT|NOFRAME, $0
	PUSHQ BP
	MOVQ  SP, BP
	PUSHQ BX
	PUSHQ R12
	PUSHQ R13
	PUSHQ R14
	PUSHQ R15
	MOVQ  DI, BX
	CALL  _cgo_topofstack(SB)
	MOVQ  AX, R14

	MOVQ fullFrame_nstack(BX), CX
	MOVQ CX, AX
	SHLQ $3, AX
	SUBQ AX, SP
	ANDQ $~15, SP
	XORQ DX, DX

fullCopy:
	CMPQ DX, CX
	JGE  fullCopied
	MOVQ fullFrame_stack(BX)(DX*8), AX
	MOVQ AX, 0(SP)(DX*8)
	INCQ DX
	JMP  fullCopy

fullCopied:
	MOVL fullFrame_pkru(BX), R12
	KEY_ENTER(fullKeyEnter)

	MOVQ fullFrame_floats+0(BX), X0
	MOVQ fullFrame_floats+8(BX), X1
	MOVQ fullFrame_floats+16(BX), X2
	MOVQ fullFrame_floats+24(BX), X3
	MOVQ fullFrame_floats+32(BX), X4
	MOVQ fullFrame_floats+40(BX), X5
	MOVQ fullFrame_floats+48(BX), X6
	MOVQ fullFrame_floats+56(BX), X7
	MOVQ fullFrame_ints+0(BX), DI
	MOVQ fullFrame_ints+8(BX), SI
	MOVQ fullFrame_ints+16(BX), DX
	MOVQ fullFrame_ints+24(BX), CX
	MOVQ fullFrame_ints+32(BX), R8
	MOVQ fullFrame_ints+40(BX), R9
	MOVQ fullFrame_fn(BX), R10
	MOVL $8, AX // upper bound of vector registers used, for variadic callees
	CALL R10
	MOVQ AX, R15
	CALL _cgo_topofstack(SB) // preserves DX, X0 and X1
	SUBQ R14, AX
	ADDQ AX, BX
	MOVQ R15, fullFrame_r0(BX)
	MOVQ DX, fullFrame_r1(BX)
	MOVQ X0, fullFrame_x0(BX)
	MOVQ X1, fullFrame_x1(BX)

	KEY_EXIT(fullKeyExit)

	LEAQ  -40(BP), SP
	POPQ  R15
	POPQ  R14
	POPQ  R13
	POPQ  R12
	POPQ  BX
	POPQ  BP
	RET

GLOBL ·callIntsABI0(SB), NOPTR|RODATA, $8
DATA ·callIntsABI0(SB)/8, $callInts<>(SB)
GLOBL ·callFullABI0(SB), NOPTR|RODATA, $8
DATA ·callFullABI0(SB)/8, $callFull<>(SB)
