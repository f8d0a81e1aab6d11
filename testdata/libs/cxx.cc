/*
 * cxx.cc: C++ linked against the shared libstdc++, for exception unwinding
 * through the library's .eh_frame and for static objects whose constructor
 * runs from .init_array and whose destructor is registered with __cxa_atexit.
 *
 * Exported (C linkage):
 *   int cx_throw_catch(int n)     throws an exception object carrying n from a
 *                                 separate non-inlined function, catches it in
 *                                 the library and returns n + 1.
 *   const char *cx_name(void)     returns the literal "libcxx".
 *   int cx_static_ready(void)     returns 1 if the constructor of the static
 *                                 object ran.
 *
 * The static object's destructor appends the line "cxx static destructor" to
 * the file named by the environment variable DECOUPLE_TEST_DTOR_FILE, if it is
 * set. The compiler registers that destructor with __cxa_atexit and the
 * library's __dso_handle. It runs when the library's finalizer calls
 * __cxa_finalize at unload, or in exit(3) if the library is still loaded.
 */
#include <cstdlib>
#include <fcntl.h>
#include <unistd.h>

namespace {

struct ThrownValue {
	int value;
};

class DtorRecorder {
public:
	DtorRecorder() : ready_(1) {}

	~DtorRecorder()
	{
		static const char line[] = "cxx static destructor\n";
		const char *path = std::getenv("DECOUPLE_TEST_DTOR_FILE");

		if (path == nullptr || *path == '\0')
			return;
		int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (fd < 0)
			return;
		ssize_t n = write(fd, line, sizeof(line) - 1);
		(void)n;
		close(fd);
	}

	int ready() const { return ready_; }

private:
	volatile int ready_;
};

DtorRecorder recorder;

// Throwing from a separate function makes the unwinder walk a real frame
// instead of letting the compiler turn throw and catch into a jump.
[[gnu::noinline]] void raise_value(int n)
{
	throw ThrownValue{n};
}

} // namespace

extern "C" int cx_throw_catch(int n)
{
	try {
		raise_value(n);
	} catch (const ThrownValue &e) {
		return e.value + 1;
	}
	return -1;
}

extern "C" const char *cx_name(void)
{
	return "libcxx";
}

extern "C" int cx_static_ready(void)
{
	return recorder.ready();
}
