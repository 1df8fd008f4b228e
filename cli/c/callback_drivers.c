/* The C side of `jitcall bench`'s callback section: loops that call a
 * function pointer the way a C library calls a callback, and equivalent
 * C functions for the direct baseline. Built by cli/build.rs with the
 * build's C compiler, in a translation unit of its own, so that no call
 * through a pointer is inlined. */

#include <stdint.h>

typedef void (*jcb_handler)(void *data, const uint64_t *args, uint64_t *ret);

/* Calls f(i, 1) n times; returns the sum, which keeps the calls live. */
int64_t jcb_drive_ii(int32_t (*f)(int32_t, int32_t), uint64_t n) {
    int64_t sum = 0;
    for (uint64_t i = 0; i < n; i++)
        sum += f((int32_t)i, 1);
    return sum;
}

/* Calls f(i, 0.5) n times. */
double jcb_drive_dd(double (*f)(double, double), uint64_t n) {
    double sum = 0;
    for (uint64_t i = 0; i < n; i++)
        sum += f((double)i, 0.5);
    return sum;
}

/* Calls f(&a, &b) n times, as qsort calls its comparator. */
int64_t jcb_drive_pp(int32_t (*f)(const void *, const void *), uint64_t n) {
    int32_t a = 1, b = 2;
    int64_t sum = 0;
    for (uint64_t i = 0; i < n; i++) {
        a = (int32_t)i;
        sum += f(&a, &b);
    }
    return sum;
}

/* Calls f with eight arguments, two of them on the stack on x86_64. */
int64_t jcb_drive_8(int64_t (*f)(int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                                 int64_t),
                    uint64_t n) {
    int64_t sum = 0;
    for (uint64_t i = 0; i < n; i++)
        sum += f((int64_t)i, 2, 3, 4, 5, 6, 7, 8);
    return sum;
}

/* The handler alone: packs (i, 1) into slots and calls h, as a
 * callback's code does before its handler runs. */
int64_t jcb_drive_handler_ii(jcb_handler h, void *data, uint64_t n) {
    uint64_t slots[2], ret = 0;
    int64_t sum = 0;
    for (uint64_t i = 0; i < n; i++) {
        slots[0] = (uint64_t)(int64_t)(int32_t)i;
        slots[1] = 1;
        h(data, slots, &ret);
        sum += (int32_t)ret;
    }
    return sum;
}

/* The equivalent C functions. */
int32_t jcb_add_ii(int32_t a, int32_t b) { return a + b; }
double jcb_add_dd(double a, double b) { return a + b; }
int32_t jcb_compare(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}
int64_t jcb_sum_8(int64_t a, int64_t b, int64_t c, int64_t d, int64_t e, int64_t f, int64_t g,
                  int64_t h) {
    return a + b + c + d + e + f + g + h;
}
