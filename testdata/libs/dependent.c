/*
 * dependent.c: a library that imports a function from another test library.
 *   long dp_labs_twice(long x)  returns 2 * tl_labs(x), tl_labs being
 *                               libtrivial.so's
 */
long tl_labs(long x);

long dp_labs_twice(long x)
{
	return 2 * tl_labs(x);
}
