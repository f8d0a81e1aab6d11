/*
 * needsm.c: a library with a DT_NEEDED entry for libm.so.6, so the loader
 * must resolve a symbol from another shared library.
 *
 * Exported:
 *   double nm_hypot(double x, double y)   returns libm's hypot(x, y).
 */
#include <math.h>

double nm_hypot(double x, double y)
{
	return hypot(x, y);
}
