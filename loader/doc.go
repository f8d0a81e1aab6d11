// Package loader is decouple's own ELF dynamic loader for x86-64 shared
// objects, with the system loader (dlopen) as a fallback backend.
//
// Loading has two steps. Parse reads a file into a Spec: its segments,
// dynamic symbols with versions, relocations, initialisers and the
// features that decide how it can be loaded. Parse depends only on the
// file. Load turns a Spec into an Image in the running process:
//
//   - it reserves a fresh range of address space at a random address for
//     the image alone and maps the PT_LOAD segments there. Code and
//     read-only data are private mappings of the file, so their pages are
//     shared with the page cache;
//   - it applies R_X86_64_RELATIVE (also packed as DT_RELR), 64,
//     GLOB_DAT, JUMP_SLOT and IRELATIVE relocations, binding a symbol the
//     library defines to its own definition;
//   - it binds imports through the system loader, looking each versioned
//     import up with dlvsym in the library that VERNEED names; dependencies
//     listed in Options.Isolate are loaded with the own loader instead;
//   - it applies PT_GNU_RELRO, registers the unwind tables of C++ libraries
//     with libgcc's unwinder, and runs DT_INIT and DT_INIT_ARRAY.
//
// Image.Close runs DT_FINI_ARRAY and DT_FINI (which also run the
// library's __cxa_atexit handlers through __cxa_finalize) and unmaps the
// whole range.
//
// The own loader rejects, with a NotSupportedError naming the file and the
// feature, what it does not load: thread-local storage, text relocations,
// executable stacks, copy relocations and unknown relocation types.
// BackendAuto (the default) hands such a library to the system loader and
// records the reason in Image.Fallback.
//
// # Security
//
// Parse validates every offset and size it reads against the file and
// the segments, and bounds the counts of headers, symbols and relocations,
// so a malformed file yields an error matching ErrFormat rather than a
// crash; a panic inside the parser is turned into such an error too.
// Validation cannot make a well-formed but hostile library safe: Load runs
// the library's initialisers and IFUNC resolvers in the process, so only
// load files you trust as much as the program itself. Admission checks
// (ownership, permissions) belong to the caller; see package hotswap.
//
// Symbols a library defines bind to its own definitions, as with
// -Bsymbolic, so one image never calls into another copy of the same
// library. Memory a library allocates with malloc lives in the process
// heap and is not part of the image.
package loader
