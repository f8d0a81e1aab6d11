/* mapping.h declares functions that exercise every rule of the libwrapgen
 * type mapping. mapping.c implements most of them; the ones it leaves out
 * test that a declared but unexported function is skipped. */
#ifndef MAPPING_H
#define MAPPING_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

/* Typedef chains resolve to the underlying kind. */
typedef unsigned long ulong_t;
typedef ulong_t count_t;
typedef count_t length_t;
typedef int status_t;
typedef const char *cstr_t;

/* Enums map to the Go type of their underlying integer type. */
enum color { RED, GREEN, BLUE };
typedef enum color color_t;
enum delta { DOWN = -1, SAME = 0, UP = 1 };

struct point { int x, y; };
typedef struct point point_t;
union number { int i; double d; };

/* Function pointer parameters map to uintptr. */
typedef int (*compare_fn)(const void *a, const void *b);

/* Integer kinds of every width and signedness. */
signed char m_add_schar(signed char a, signed char b);
unsigned char m_add_uchar(unsigned char a, unsigned char b);
char m_char_id(char c);
short m_add_short(short a, short b);
unsigned short m_add_ushort(unsigned short a, unsigned short b);
int m_add_int(int a, int b);
unsigned int m_add_uint(unsigned int a, unsigned int b);
long m_add_long(long a, long b);
unsigned long m_add_ulong(unsigned long a, unsigned long b);
long long m_add_llong(long long a, long long b);
unsigned long long m_add_ullong(unsigned long long a, unsigned long long b);
int64_t m_neg_i64(int64_t v);
uint8_t m_not_u8(uint8_t v);
size_t m_strlen(const char *s);
length_t m_chain(count_t n, ulong_t m);
status_t m_status(void);
_Bool m_is_odd(int v);
bool m_not(bool v);

/* Enums. */
color_t m_next_color(color_t c);
enum delta m_flip(enum delta d);

/* Floating point, mixed with integers. */
float m_scale_f(float v, int times);
double m_hypot2(double x, double y);
double m_mix(int a, float b, long c, double d);
/* More arguments than registers: 7 integers and 9 doubles. */
double m_sum16(int i1, int i2, int i3, int i4, int i5, int i6, int i7,
               double d1, double d2, double d3, double d4, double d5,
               double d6, double d7, double d8, double d9);
/* Ten integer arguments: one more than Call9 takes. */
long m_sum10(long a1, long a2, long a3, long a4, long a5, long a6, long a7,
             long a8, long a9, long a10);
/* Ten floats: the last two go on the stack. */
float m_fsum10(float f1, float f2, float f3, float f4, float f5, float f6,
               float f7, float f8, float f9, float f10);
/* Nine signed chars: Call9, with the last three on the stack. */
int m_schar9(signed char a1, signed char a2, signed char a3, signed char a4,
             signed char a5, signed char a6, signed char a7, signed char a8,
             signed char a9);
/* Narrow integers and a _Bool on the stack, after six ints in registers. */
long m_narrow_stack(int a1, int a2, int a3, int a4, int a5, int a6,
                    signed char c, short s, _Bool b, unsigned char u);

/* Pointers of every flavour map to unsafe.Pointer. */
void m_fill(unsigned char *buf, size_t n, unsigned char v);
const char *m_greeting(void);
cstr_t m_name(const point_t *p);
void *m_identity(void *const p);
int m_sort(int *base, size_t n, compare_fn cmp);
int m_apply(int (*fn)(int), int v);
compare_fn m_get_compare(void);
void m_nothing(void);
int m_array_param(int values[4]);

/* Parameter names that are Go keywords or clash with generated names. */
int m_keywords(int type, int func, int range, int r, int l);
int m_unnamed(int, long);

/* Go name collisions: both map to MCollide before renaming. */
int m_collide(void);
int M_collide(void);
int _m_underscore(int v);

/* Not expressible: these must be skipped. */
point_t m_point_make(int x, int y);
int m_point_sum(struct point p);
union number m_number(int i);
int m_printf(const char *format, ...);
long double m_ld(long double v);
int m_takes_ld(long double v);
_Complex double m_complex(double re);

/* An indirect function (STT_GNU_IFUNC) counts as a function. */
int m_ifunc(int v);

/* Declared but not exported by the library. */
int m_missing(int v);
/* Exported only under the non-default version MAPPING_0. */
int m_old(void);

#endif
