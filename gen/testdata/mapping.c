/* mapping.c implements the functions of mapping.h. Build it with
 *   cc -shared -fPIC -Wl,--version-script=mapping.map -Wl,-soname,libmapping.so.1 \
 *      -o libmapping.so.1 mapping.c
 * The tests do that in a temporary directory. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "mapping.h"

signed char m_add_schar(signed char a, signed char b) { return a + b; }
unsigned char m_add_uchar(unsigned char a, unsigned char b) { return a + b; }
char m_char_id(char c) { return c; }
short m_add_short(short a, short b) { return a + b; }
unsigned short m_add_ushort(unsigned short a, unsigned short b) { return a + b; }
int m_add_int(int a, int b) { return a + b; }
unsigned int m_add_uint(unsigned int a, unsigned int b) { return a + b; }
long m_add_long(long a, long b) { return a + b; }
unsigned long m_add_ulong(unsigned long a, unsigned long b) { return a + b; }
long long m_add_llong(long long a, long long b) { return a + b; }
unsigned long long m_add_ullong(unsigned long long a, unsigned long long b) { return a + b; }
int64_t m_neg_i64(int64_t v) { return -v; }
uint8_t m_not_u8(uint8_t v) { return ~v; }
size_t m_strlen(const char *s) { return strlen(s); }
length_t m_chain(count_t n, ulong_t m) { return n * m; }
status_t m_status(void) { return -7; }
_Bool m_is_odd(int v) { return v & 1; }
bool m_not(bool v) { return !v; }

color_t m_next_color(color_t c) { return (c + 1) % 3; }
enum delta m_flip(enum delta d) { return -d; }

float m_scale_f(float v, int times) { return v * times; }
double m_hypot2(double x, double y) { return x * x + y * y; }
double m_mix(int a, float b, long c, double d) { return a + b + c + d; }
double m_sum16(int i1, int i2, int i3, int i4, int i5, int i6, int i7,
               double d1, double d2, double d3, double d4, double d5,
               double d6, double d7, double d8, double d9) {
	return i1 + 2 * i2 + 3 * i3 + 4 * i4 + 5 * i5 + 6 * i6 + 7 * i7 +
	       d1 + 2 * d2 + 3 * d3 + 4 * d4 + 5 * d5 + 6 * d6 + 7 * d7 + 8 * d8 + 9 * d9;
}
long m_sum10(long a1, long a2, long a3, long a4, long a5, long a6, long a7,
             long a8, long a9, long a10) {
	return a1 + 2 * a2 + 3 * a3 + 4 * a4 + 5 * a5 + 6 * a6 + 7 * a7 + 8 * a8 + 9 * a9 + 10 * a10;
}

float m_fsum10(float f1, float f2, float f3, float f4, float f5, float f6,
               float f7, float f8, float f9, float f10) {
	return f1 + 2 * f2 + 3 * f3 + 4 * f4 + 5 * f5 + 6 * f6 + 7 * f7 + 8 * f8 + 9 * f9 + 10 * f10;
}
int m_schar9(signed char a1, signed char a2, signed char a3, signed char a4,
             signed char a5, signed char a6, signed char a7, signed char a8,
             signed char a9) {
	return a1 + 2 * a2 + 3 * a3 + 4 * a4 + 5 * a5 + 6 * a6 + 7 * a7 + 8 * a8 + 9 * a9;
}
long m_narrow_stack(int a1, int a2, int a3, int a4, int a5, int a6,
                    signed char c, short s, _Bool b, unsigned char u) {
	return a1 + a2 + a3 + a4 + a5 + a6 + 1000L * c + 10L * s + (b ? 7 : 0) + 100000L * u;
}

void m_fill(unsigned char *buf, size_t n, unsigned char v) { memset(buf, v, n); }
const char *m_greeting(void) { return "hello"; }
cstr_t m_name(const point_t *p) { return p->x > p->y ? "wide" : "tall"; }
void *m_identity(void *const p) { return p; }
int m_sort(int *base, size_t n, compare_fn cmp) { qsort(base, n, sizeof *base, cmp); return 0; }
int m_apply(int (*fn)(int), int v) { return fn(v); }
static int compare_ints_desc(const void *a, const void *b) {
	int x = *(const int *)a, y = *(const int *)b;
	return (x < y) - (x > y);
}
compare_fn m_get_compare(void) { return compare_ints_desc; }
void m_nothing(void) {}
int m_array_param(int values[4]) { return values[0] + values[1] + values[2] + values[3]; }

int m_keywords(int type, int func, int range, int r, int l) { return type + func + range + r + l; }
int m_unnamed(int a, long b) { return a + (int)b; }

int m_collide(void) { return 1; }
int M_collide(void) { return 2; }
int _m_underscore(int v) { return v; }

point_t m_point_make(int x, int y) { point_t p = {x, y}; return p; }
int m_point_sum(struct point p) { return p.x + p.y; }
union number m_number(int i) { union number n; n.i = i; return n; }
int m_printf(const char *format, ...) {
	va_list ap;
	va_start(ap, format);
	int n = vprintf(format, ap);
	va_end(ap);
	return n;
}
long double m_ld(long double v) { return v; }
int m_takes_ld(long double v) { return (int)v; }
_Complex double m_complex(double re) { return re; }

static int m_ifunc_impl(int v) { return v * 3; }
static int (*resolve_m_ifunc(void))(int) { return m_ifunc_impl; }
int m_ifunc(int v) __attribute__((ifunc("resolve_m_ifunc")));

int m_old_impl(void) { return 0; }
__asm__(".symver m_old_impl, m_old@MAPPING_0");

/* Exported but not declared in mapping.h: the generator ignores it. */
int m_undeclared(void) { return 0; }
