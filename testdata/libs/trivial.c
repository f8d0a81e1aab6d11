/*
 * trivial.c: plain C with no unusual ELF features, for the basic loader and
 * call tests: integer, float and stack arguments, callbacks, libc calls, an
 * exported global, a string in .rodata, and a constructor and destructor.
 *
 * Exported:
 *   long tl_labs(long x)                  returns |x|.
 *   long tl_sum9(long a1, ..., long a9)   returns the sum of its 9 arguments.
 *                                         a7..a9 are passed on the stack.
 *   double tl_mix(int a, double b, long c, float d, double e)
 *                                         returns a + b + c + d + e, with
 *                                         integer and float arguments mixed.
 *   float tl_halve(float x)               returns x / 2.
 *   double tl_sum10d(double x1, ..., double x10)
 *                                         returns the sum of its 10 arguments.
 *                                         x9 and x10 are passed on the stack
 *                                         because only xmm0..xmm7 carry
 *                                         arguments.
 *   long tl_apply(long (*cb)(long), long x)
 *                                         returns cb(x).
 *   void tl_sort(long *v, size_t n, int (*cmp)(const void *, const void *))
 *                                         sorts v[0..n) with libc qsort, which
 *                                         calls cmp.
 *   long tl_counter                       a global, 0 at load time.
 *   long tl_bump(void)                    increments tl_counter atomically and
 *                                         returns the new value.
 *   const char *tl_hello(void)            returns the literal "hello from libtrivial".
 *   int tl_ctor_ran(void)                 returns 1 if the constructor ran.
 *
 * At unload the destructor appends the line "trivial destructor" to the file
 * named by the environment variable DECOUPLE_TEST_DTOR_FILE, if it is set.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

long tl_counter;

static int ctor_ran;

__attribute__((constructor)) static void trivial_init(void)
{
	ctor_ran = 1;
}

/* The destructor uses open and write instead of stdio so that the line
 * reaches the file at once. A stdio buffer is never flushed if the process
 * ends without exit(3), as a Go program does. */
__attribute__((destructor)) static void trivial_fini(void)
{
	static const char line[] = "trivial destructor\n";
	const char *path = getenv("DECOUPLE_TEST_DTOR_FILE");
	ssize_t n;
	int fd;

	if (path == NULL || *path == '\0')
		return;
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	/* A short write to an O_APPEND file goes to the end in one piece, so
	 * lines from several libraries do not interleave. */
	n = write(fd, line, sizeof(line) - 1);
	(void)n;
	close(fd);
}

long tl_labs(long x)
{
	return x < 0 ? -x : x;
}

long tl_sum9(long a1, long a2, long a3, long a4, long a5, long a6, long a7,
	     long a8, long a9)
{
	return a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9;
}

double tl_mix(int a, double b, long c, float d, double e)
{
	return (double)a + b + (double)c + (double)d + e;
}

float tl_halve(float x)
{
	return x / 2.0f;
}

double tl_sum10d(double x1, double x2, double x3, double x4, double x5,
		 double x6, double x7, double x8, double x9, double x10)
{
	return x1 + x2 + x3 + x4 + x5 + x6 + x7 + x8 + x9 + x10;
}

long tl_apply(long (*cb)(long), long x)
{
	return cb(x);
}

void tl_sort(long *v, size_t n, int (*cmp)(const void *, const void *))
{
	qsort(v, n, sizeof(*v), cmp);
}

long tl_bump(void)
{
	return __atomic_add_fetch(&tl_counter, 1, __ATOMIC_SEQ_CST);
}

const char *tl_hello(void)
{
	return "hello from libtrivial";
}

int tl_ctor_ran(void)
{
	return ctor_ran;
}
