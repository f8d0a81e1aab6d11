/*
 * relr.c: a table of 64 pointers to string literals. Each pointer needs an
 * R_X86_64_RELATIVE relocation, and linking with -z pack-relative-relocs
 * packs them into a DT_RELR table instead of 64 Elf64_Rela entries.
 *
 * Exported:
 *   const char *rr_name(int i)   returns entry i, "rr00" through "rr63", or
 *                                NULL when i is outside [0, 64).
 *   long rr_count(void)          returns 64.
 */
#include <stddef.h>

#define ROW(d) "rr" d "0", "rr" d "1", "rr" d "2", "rr" d "3", \
	       "rr" d "4", "rr" d "5", "rr" d "6", "rr" d "7", \
	       "rr" d "8", "rr" d "9"

static const char *const names[64] = {
	ROW("0"), ROW("1"), ROW("2"), ROW("3"), ROW("4"), ROW("5"),
	"rr60", "rr61", "rr62", "rr63",
};

const char *rr_name(int i)
{
	if (i < 0 || i >= (int)(sizeof(names) / sizeof(names[0])))
		return NULL;
	return names[i];
}

long rr_count(void)
{
	return (long)(sizeof(names) / sizeof(names[0]));
}
