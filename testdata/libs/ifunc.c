/*
 * ifunc.c: a GNU indirect function. The loader must call the resolver and
 * store the address it returns, both for the exported STT_GNU_IFUNC symbol
 * and for the R_X86_64_IRELATIVE relocation of a function pointer table.
 *
 * Exported:
 *   long if_value(void)          an IFUNC whose resolver selects an
 *                                implementation returning 42.
 *   long if_call_table(int i)    calls entry i of a table of function
 *                                pointers: entry 0 is the IFUNC (42), entry 1
 *                                a plain function (7). It returns -1 when i is
 *                                outside [0, 2).
 *   int if_resolver_calls(void)  returns how many times the resolver ran.
 */
#include <stddef.h>

typedef long (*value_fn)(void);

static int resolver_calls;

static long value_impl(void)
{
	return 42;
}

static long plain_seven(void)
{
	return 7;
}

/* The resolver can run during relocation, before the constructors, so it
 * uses only data that needs no relocation. */
static value_fn resolve_value(void)
{
	__atomic_fetch_add(&resolver_calls, 1, __ATOMIC_RELAXED);
	return value_impl;
}

long if_value(void) __attribute__((ifunc("resolve_value")));

/* A reference to the exported if_value from data would become a symbolic
 * R_X86_64_64 relocation because the symbol can be interposed. This local
 * IFUNC with the same resolver binds inside the library, so the table entry
 * becomes an R_X86_64_IRELATIVE relocation. */
static long value_local(void) __attribute__((ifunc("resolve_value")));

static value_fn table[] = { value_local, plain_seven };

long if_call_table(int i)
{
	if (i < 0 || i >= (int)(sizeof(table) / sizeof(table[0])))
		return -1;
	return table[i]();
}

int if_resolver_calls(void)
{
	return __atomic_load_n(&resolver_calls, __ATOMIC_RELAXED);
}
