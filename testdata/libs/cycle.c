/*
 * cycle.c: two libraries that need each other (a DT_NEEDED cycle).
 *   libcyclea.so (-DCYCLE_A)  int cy_a(void) returns 1
 *   libcycleb.so              int cy_b(void) returns 2
 */
#ifdef CYCLE_A
int cy_a(void)
{
	return 1;
}
#else
int cy_b(void)
{
	return 2;
}
#endif
