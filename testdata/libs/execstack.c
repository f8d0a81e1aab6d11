/*
 * execstack.c: a library linked with -z execstack, so its PT_GNU_STACK
 * segment has PF_X. The loader is expected to reject it.
 *
 * Exported:
 *   long es_value(void)   returns 1.
 */
long es_value(void)
{
	return 1;
}
