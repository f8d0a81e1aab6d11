/*
 * tls.c: a thread-local counter, built three times with different TLS access
 * models:
 *   libtlsgd.so    general dynamic (the default for -fPIC): __tls_get_addr
 *                  with R_X86_64_DTPMOD64 and R_X86_64_DTPOFF64 relocations.
 *   libtlsdesc.so  general dynamic with -mtls-dialect=gnu2: TLS descriptors
 *                  with R_X86_64_TLSDESC relocations.
 *   libtlsie.so    initial exec (-DTLS_INITIAL_EXEC): a fixed offset from the
 *                  thread pointer with an R_X86_64_TPOFF64 relocation and
 *                  DF_STATIC_TLS, so it needs space in the static TLS block.
 *
 * Exported:
 *   __thread long tg_counter     the counter, 0 in every new thread.
 *   __thread long tg_seed_value TLS_MODEL = 4242;

long tg_seed(void)
{
	return tg_seed_value++;
}

long tg_next(void)           increments this thread's counter and returns
 *                                the new value: 1, 2, 3, ... per thread.
 *   long tg_seed(void)           returns this thread's copy of an initialised
 *                                thread-local variable (4242 in a new thread),
 *                                so the library has a TLS initialization image
 *                                (.tdata) that the system loader copies into
 *                                every new thread.
 */
#ifdef TLS_INITIAL_EXEC
#define TLS_MODEL __attribute__((tls_model("initial-exec")))
#else
#define TLS_MODEL
#endif

/* The variable is exported with default visibility so that the compiler uses
 * the general dynamic model. A static variable would get local dynamic. */
__thread long tg_counter TLS_MODEL;

__thread long tg_seed_value TLS_MODEL = 4242;

long tg_seed(void)
{
	return tg_seed_value++;
}

long tg_next(void)
{
	return ++tg_counter;
}
