/* Callees for the node:ffi tests and the benchmark, in a shared object of
 * their own (libjitcall_qjs_fixtures.so) so that a script can load them
 * with dlopen, from this engine or from Node's node:ffi. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* The benchmark's two-argument integer add. */
int32_t add_i32(int32_t a, int32_t b) { return a + b; }

/* Identity for every scalar type: what comes in goes back out. */
int8_t echo_i8(int8_t x) { return x; }
uint8_t echo_u8(uint8_t x) { return x; }
int16_t echo_i16(int16_t x) { return x; }
uint16_t echo_u16(uint16_t x) { return x; }
int32_t echo_i32(int32_t x) { return x; }
uint32_t echo_u32(uint32_t x) { return x; }
int64_t echo_i64(int64_t x) { return x; }
uint64_t echo_u64(uint64_t x) { return x; }
float echo_f32(float x) { return x; }
double echo_f64(double x) { return x; }
bool echo_bool(bool x) { return x; }
void *echo_pointer(void *x) { return x; }

/* Every integer width at once, weighted by position, as a double. */
double mix(int8_t a, uint8_t b, int16_t c, uint16_t d, int32_t e, uint32_t f, int64_t g,
           uint64_t h, float i, double j) {
    return a + 2.0 * b + 3.0 * c + 4.0 * d + 5.0 * e + 6.0 * f + 7.0 * (double)g +
           8.0 * (double)h + 9.0 * i + 10.0 * j;
}

/* The address a pointer argument arrives as. */
uintptr_t address_of(const void *p) { return (uintptr_t)p; }

/* The sum of `n` bytes at `p`: a buffer argument. */
uint64_t sum_bytes(const uint8_t *p, uint64_t n) {
    uint64_t sum = 0;
    for (uint64_t i = 0; i < n; i++)
        sum += p[i];
    return sum;
}

/* Calls `f` with each of 1..=n and returns the sum of what it returned. */
int64_t sum_through(int64_t (*f)(int64_t), int64_t n) {
    int64_t sum = 0;
    for (int64_t i = 1; i <= n; i++)
        sum += f(i);
    return sum;
}

/* Calls `f(x)` for a callback of every scalar type. */
double apply_f64(double (*f)(double), double x) { return f(x); }
int8_t apply_i8(int8_t (*f)(int8_t), int8_t x) { return f(x); }
uint16_t apply_u16(uint16_t (*f)(uint16_t), uint16_t x) { return f(x); }
void *apply_pointer(void *(*f)(void *), void *x) { return f(x); }
