/*
 * symver.c: one name exported at two versions, through symver.map.
 *   int sv_value(void)  sv_value@V1 returns 1, the default sv_value@@V2
 *                       returns 2.
 */
int sv_value_v1(void)
{
	return 1;
}

int sv_value_v2(void)
{
	return 2;
}

__asm__(".symver sv_value_v1, sv_value@V1");
__asm__(".symver sv_value_v2, sv_value@@V2");
