/*
 * versioned.c: one source built twice, as the 1.0.0 and 2.0.0 versions of
 * libversioned.so.1, for swap and drain tests. Both builds share the SONAME
 * libversioned.so.1 and differ only in VERSION_STRING.
 *
 * Exported:
 *   const char *vl_version(void)   returns VERSION_STRING, for example "2.0.0".
 *   int vl_version_major(void)     returns the leading number of VERSION_STRING.
 *   long vl_add(long a, long b)    returns a + b.
 *   long vl_sleep_ms(long ms)      sleeps ms milliseconds with nanosleep, then
 *                                  returns the major version. A drain test
 *                                  keeps a call in flight on the old image
 *                                  with it.
 *   int vl_calls                   counts calls to the four functions above.
 *                                  It is incremented atomically, so concurrent
 *                                  callers do not lose counts.
 *
 * Built with -DVL_ADD_AS_DATA (build/kind/libversioned.so.1), vl_add is a
 * data object (long vl_add = 5) instead of a function, for tests that a
 * swap rejects a library exporting a called name as data.
 */
#include <errno.h>
#include <time.h>

#ifndef VERSION_STRING
#error "build with -DVERSION_STRING='\"1.0.0\"' (see Makefile)"
#endif

int vl_calls;

static void count_call(void)
{
	__atomic_fetch_add(&vl_calls, 1, __ATOMIC_RELAXED);
}

static int parse_major(const char *s)
{
	int major = 0;

	for (; *s >= '0' && *s <= '9'; s++)
		major = major * 10 + (*s - '0');
	return major;
}

const char *vl_version(void)
{
	count_call();
	return VERSION_STRING;
}

int vl_version_major(void)
{
	count_call();
	return parse_major(VERSION_STRING);
}

#ifdef VL_ADD_AS_DATA
long vl_add = 5;
#else
long vl_add(long a, long b)
{
	count_call();
	return a + b;
}
#endif

long vl_sleep_ms(long ms)
{
	struct timespec left;

	count_call();
	if (ms > 0) {
		left.tv_sec = ms / 1000;
		left.tv_nsec = (ms % 1000) * 1000000L;
		/* A signal handler in the host (the Go runtime sends SIGURG)
		 * interrupts nanosleep, so sleep again for the time left. */
		while (nanosleep(&left, &left) != 0 && errno == EINTR)
			;
	}
	return parse_major(VERSION_STRING);
}
