// Package security measures and guards the attack surface that a library
// loaded by decouple leaves in the process.
//
// It is the home of three kinds of checks, none of which is implemented
// yet:
//
//   - gadget counts: how many return-oriented-programming gadgets a
//     library's executable segments contain, decoded with
//     golang.org/x/arch/x86/x86asm, and how many stay reachable between
//     calls in each protection mode;
//   - key-isolation scans: searching executable pages for WRPKRU and
//     XRSTOR instructions, which could re-enable a protection key from
//     inside a library loaded in ModeKeys;
//   - admission policy for swapped-in files: ownership, permissions and
//     signatures that a new image must pass before it is loaded.
//
// The hot-swap manager's current admission checks (regular file, owner,
// permissions, a valid ELF parse) live in package hotswap.
package security
