/* Functions: binding by symbol, by address and in batches, every option,
 * calls through jitcall_call_packed and the raw entries, tiers and their
 * reasons, errno capture, and bad input. Run twice: as it is, and with
 * JITCALL_DISABLE_JIT=1 (JITCALL_CAPI_TEST_JIT says which tiers to
 * expect). */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>

#include "check.h"

/* What the environment lets the JIT do: "available", "disabled" (by
 * JITCALL_DISABLE_JIT) or "unavailable". */
static const char *jit;

static int jit_available(void) { return strcmp(jit, "available") == 0; }

static int calls;

static int32_t add_i32(int32_t a, int32_t b) {
    calls++;
    return a + b;
}

static double scale(double x, int32_t k) { return x * k; }

static double halve(double x) { return x / 2; }

static float add_f32(float a, float b) { return a + b; }

static int16_t narrow(int8_t a, uint16_t b) { return (int16_t)(a * b); }

static void count_call(void) { calls++; }

static int64_t sum_8(int64_t a, int64_t b, int64_t c, int64_t d, int64_t e, int64_t f,
                     int64_t g, int64_t h) {
    return a + 2 * b + 3 * c + 4 * d + 5 * e + 6 * f + 7 * g + 8 * h;
}

typedef struct {
    int64_t a, b, c;
} triple;

static triple make_triple(int64_t x) {
    triple t = {x, x * 2, x * 3};
    return t;
}

typedef struct {
    int32_t n;
    double x;
} pair;

static double pair_sum(pair p) { return p.n + p.x; }

typedef struct {
    const void *data;
    size_t len;
} buffer_view;

static uint64_t first_byte(const uint8_t *data) { return data[0]; }

#if defined(__x86_64__)
__attribute__((ms_abi)) static double weigh(int32_t a, double b, int8_t c, float d,
                                            int64_t e) {
    return a + 2.0 * b + 3.0 * c + 4.0 * d + 5.0 * (double)e;
}
typedef void(__attribute__((ms_abi)) * win64_packed_fn)(const uint64_t *, uint64_t *);
#endif

static uint64_t f64_bits(double x) {
    uint64_t bits;
    memcpy(&bits, &x, sizeof bits);
    return bits;
}

static double bits_f64(uint64_t bits) {
    double x;
    memcpy(&x, &bits, sizeof x);
    return x;
}

static uint64_t f32_bits(float x) {
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    return bits;
}

static float bits_f32(uint64_t slot) {
    uint32_t bits = (uint32_t)slot;
    float x;
    memcpy(&x, &bits, sizeof x);
    return x;
}

static jitcall_options *options_with(void) {
    jitcall_options *options = NULL;
    CHECK_STATUS(jitcall_options_new(&options), JITCALL_OK);
    return options;
}

/* Binds `address` to `text` with `options`, or fails the program. */
static jitcall_function *bind_address(const void *address, const char *text,
                                      const jitcall_options *options) {
    jitcall_signature *sig = parse(text);
    jitcall_function *f = NULL;
    jitcall_error *error = NULL;
    CHECK_ERROR(jitcall_function_bind_address(NULL, address, sig, options, &f, &error),
                JITCALL_OK, error);
    if (f == NULL) {
        fprintf(stderr, "cannot bind %s: %s\n", text, jitcall_error_message(error));
        exit(2);
    }
    CHECK_STATUS(jitcall_signature_free(sig), JITCALL_OK);
    return f;
}

/* `f` is on `tier` for `reason`, and its description starts with `text`. */
static void check_tier(const jitcall_function *f, jitcall_tier tier, jitcall_reason reason,
                       const char *text) {
    jitcall_tier got = 0;
    jitcall_reason why = 99;
    const char *description = NULL;
    CHECK_STATUS(jitcall_function_tier(f, &got, &why, &description), JITCALL_OK);
    CHECK(got == tier);
    CHECK(why == reason);
    CHECK(description != NULL && strncmp(description, text, strlen(text)) == 0);
    if (got != tier || why != reason) {
        fprintf(stderr, "  tier %u reason %u (%s), expected %u %u\n", got, why,
                description ? description : "?", tier, reason);
    }
}

/* The tier a binding that would take `jit_tier` takes in this process. */
static void check_fast_tier(const jitcall_function *f, jitcall_tier jit_tier) {
    if (jit_available()) {
        check_tier(f, jit_tier, JITCALL_REASON_NONE,
                   jit_tier == JITCALL_TIER_JIT ? "JIT" : "shared JIT stub");
    } else if (strcmp(jit, "disabled") == 0) {
        check_tier(f, JITCALL_TIER_BAKED, JITCALL_REASON_JIT_DISABLED, "baked");
    } else {
        jitcall_tier tier = 0;
        CHECK_STATUS(jitcall_function_tier(f, &tier, NULL, NULL), JITCALL_OK);
        CHECK(tier == JITCALL_TIER_BAKED);
    }
}

static void by_symbol(void) {
    jitcall_library *libm = NULL;
    jitcall_error *error = NULL;
    jitcall_signature *sig = parse("(f64) -> f64");
    jitcall_function *cos_fn = NULL;
    uint64_t args[1], ret = 0;

    CHECK_ERROR(jitcall_library_open("libm.so.6", &libm, &error), JITCALL_OK, error);
    CHECK_ERROR(jitcall_function_bind(libm, "cos", sig, NULL, &cos_fn, &error), JITCALL_OK,
                error);
    /* The handles it was bound with may go at once. */
    CHECK_STATUS(jitcall_signature_free(sig), JITCALL_OK);
    CHECK_STATUS(jitcall_library_free(libm), JITCALL_OK);

    check_fast_tier(cos_fn, JITCALL_TIER_SHARED);
    args[0] = f64_bits(0.0);
    CHECK_STATUS(jitcall_call_packed(cos_fn, args, &ret), JITCALL_OK);
    CHECK(bits_f64(ret) == 1.0);
    args[0] = f64_bits(3.141592653589793);
    CHECK_STATUS(jitcall_call_packed(cos_fn, args, &ret), JITCALL_OK);
    CHECK(bits_f64(ret) == -1.0);
    {
        const void *target = NULL;
        CHECK_STATUS(jitcall_function_target(cos_fn, &target), JITCALL_OK);
        CHECK(target == (const void *)&cos);
        CHECK_STATUS(jitcall_function_target(cos_fn, NULL), JITCALL_E_NULL_POINTER);
        CHECK_STATUS(jitcall_function_target(NULL, &target), JITCALL_E_NULL_POINTER);
    }
    /* Not on the JIT tier: no packed entry. */
    {
        jitcall_packed_fn entry = (jitcall_packed_fn)&count_call;
        CHECK_STATUS(jitcall_function_jit_entry(cos_fn, &entry), JITCALL_OK);
        CHECK(entry == NULL);
    }
    CHECK_STATUS(jitcall_function_free(cos_fn), JITCALL_OK);
}

static void by_address(void) {
    jitcall_function *add = bind_address((const void *)&add_i32, "(i32, i32) -> i32", NULL);
    uint64_t args[2] = {2, 40}, ret = 0;
    int before = calls;

    check_fast_tier(add, JITCALL_TIER_SHARED);
    CHECK_STATUS(jitcall_call_packed(add, args, &ret), JITCALL_OK);
    CHECK(ret == 42);
    CHECK(calls == before + 1);
    /* A negative i32 comes back sign-extended to 64 bits. */
    args[0] = (uint64_t)(int64_t)-50;
    CHECK_STATUS(jitcall_call_packed(add, args, &ret), JITCALL_OK);
    CHECK((int64_t)ret == -10);

    /* NULL where the call needs a pointer: refused, nothing called. */
    before = calls;
    CHECK_STATUS(jitcall_call_packed(add, NULL, &ret), JITCALL_E_NULL_POINTER);
    CHECK_STATUS(jitcall_call_packed(add, args, NULL), JITCALL_E_NULL_POINTER);
    CHECK_STATUS(jitcall_call_packed(NULL, args, &ret), JITCALL_E_NULL_POINTER);
    CHECK(calls == before);
    CHECK_STATUS(jitcall_function_free(add), JITCALL_OK);

    /* No arguments and no return: both may be NULL. */
    {
        jitcall_function *f = bind_address((const void *)&count_call, "() -> void", NULL);
        before = calls;
        CHECK_STATUS(jitcall_call_packed(f, NULL, NULL), JITCALL_OK);
        CHECK(calls == before + 1);
        CHECK_STATUS(jitcall_function_free(f), JITCALL_OK);
    }

    /* f32 in the low 32 bits; narrow integers extended. */
    {
        jitcall_function *f = bind_address((const void *)&add_f32, "(f32, f32) -> f32", NULL);
        uint64_t fargs[2] = {f32_bits(1.5f), f32_bits(2.25f)};
        CHECK_STATUS(jitcall_call_packed(f, fargs, &ret), JITCALL_OK);
        CHECK(bits_f32(ret) == 3.75f);
        CHECK((ret >> 32) == 0);
        CHECK_STATUS(jitcall_function_free(f), JITCALL_OK);

        f = bind_address((const void *)&narrow, "(i8, u16) -> i16", NULL);
        fargs[0] = (uint64_t)(int64_t)-3;
        fargs[1] = 1000;
        CHECK_STATUS(jitcall_call_packed(f, fargs, &ret), JITCALL_OK);
        CHECK((int64_t)ret == -3000);
        CHECK_STATUS(jitcall_function_free(f), JITCALL_OK);
    }

    /* Structs by value, both ways, and a buffer. */
    {
        jitcall_function *f = bind_address((const void *)&make_triple, "(i64) -> {i64, i64, i64}",
                                           NULL);
        uint64_t targs[1] = {7};
        uint64_t out[3] = {0, 0, 0};
        jitcall_signature *sig = parse("(i64) -> {i64, i64, i64}");
        size_t size = 0;
        CHECK_STATUS(jitcall_signature_return_size(sig, &size), JITCALL_OK);
        CHECK(size == sizeof out);
        CHECK_STATUS(jitcall_signature_free(sig), JITCALL_OK);
        CHECK_STATUS(jitcall_call_packed(f, targs, out), JITCALL_OK);
        CHECK(out[0] == 7 && out[1] == 14 && out[2] == 21);
        CHECK_STATUS(jitcall_function_free(f), JITCALL_OK);

        pair p = {3, 0.5};
        uint64_t pargs[1] = {(uint64_t)(uintptr_t)&p};
        f = bind_address((const void *)&pair_sum, "({i32, f64}) -> f64", NULL);
        CHECK_STATUS(jitcall_call_packed(f, pargs, &ret), JITCALL_OK);
        CHECK(bits_f64(ret) == 3.5);
        CHECK_STATUS(jitcall_function_free(f), JITCALL_OK);

        uint8_t bytes[4] = {200, 1, 2, 3};
        buffer_view view = {bytes, sizeof bytes};
        uint64_t bargs[1] = {(uint64_t)(uintptr_t)&view};
        f = bind_address((const void *)&first_byte, "(buffer) -> u64", NULL);
        CHECK_STATUS(jitcall_call_packed(f, bargs, &ret), JITCALL_OK);
        CHECK(ret == 200);
        CHECK_STATUS(jitcall_function_free(f), JITCALL_OK);
    }

    /* A variadic function, one call shape bound. */
    {
        jitcall_library *process = NULL;
        jitcall_signature *sig = parse("(pointer, u64, pointer, ..., i32, f64) -> i32");
        jitcall_function *f = NULL;
        jitcall_error *error = NULL;
        char buf[32];
        CHECK_ERROR(jitcall_library_open(NULL, &process, &error), JITCALL_OK, error);
        CHECK_ERROR(jitcall_function_bind(process, "snprintf", sig, NULL, &f, &error),
                    JITCALL_OK, error);
        uint64_t vargs[5] = {(uint64_t)(uintptr_t)buf, sizeof buf,
                             (uint64_t)(uintptr_t) "%d %.2f", 7, f64_bits(2.5)};
        CHECK_STATUS(jitcall_call_packed(f, vargs, &ret), JITCALL_OK);
        CHECK(ret == 6);
        CHECK(strcmp(buf, "7 2.50") == 0);
        CHECK_STATUS(jitcall_function_free(f), JITCALL_OK);
        CHECK_STATUS(jitcall_signature_free(sig), JITCALL_OK);
        CHECK_STATUS(jitcall_library_free(process), JITCALL_OK);
    }
}

static void bind_errors(void) {
    jitcall_library *libm = NULL;
    jitcall_signature *sig = parse("(f64) -> f64");
    jitcall_function *f = NULL;
    jitcall_error *error = NULL;

    CHECK_ERROR(jitcall_library_open("libm.so.6", &libm, &error), JITCALL_OK, error);
    CHECK_ERROR(jitcall_function_bind(libm, "no_such_function_here", sig, NULL, &f, &error),
                JITCALL_E_SYMBOL, error);
    CHECK_CONTAINS(jitcall_error_message(error), "no symbol `no_such_function_here`");
    DROP_ERROR(error);
    CHECK_ERROR(jitcall_function_bind(NULL, "cos", sig, NULL, &f, &error),
                JITCALL_E_NULL_POINTER, error);
    CHECK_CONTAINS(jitcall_error_message(error), "`library` is NULL");
    DROP_ERROR(error);
    CHECK_ERROR(jitcall_function_bind(libm, NULL, sig, NULL, &f, &error),
                JITCALL_E_NULL_POINTER, error);
    DROP_ERROR(error);
    CHECK_ERROR(jitcall_function_bind(libm, "cos", NULL, NULL, &f, &error),
                JITCALL_E_NULL_POINTER, error);
    DROP_ERROR(error);
    CHECK_ERROR(jitcall_function_bind(libm, "cos", sig, NULL, NULL, &error),
                JITCALL_E_NULL_POINTER, error);
    DROP_ERROR(error);
    CHECK_ERROR(jitcall_function_bind(libm, "c\xffos", sig, NULL, &f, &error),
                JITCALL_E_INVALID_UTF8, error);
    DROP_ERROR(error);
    /* Handles of the wrong kind. */
    CHECK_ERROR(jitcall_function_bind((const jitcall_library *)sig, "cos", sig, NULL, &f,
                                      &error),
                JITCALL_E_INVALID_HANDLE, error);
    CHECK_CONTAINS(jitcall_error_message(error),
                   "`library` is a jitcall_signature, not a jitcall_library");
    DROP_ERROR(error);
    CHECK_ERROR(jitcall_function_bind(libm, "cos", sig, (const jitcall_options *)libm, &f,
                                      &error),
                JITCALL_E_INVALID_HANDLE, error);
    DROP_ERROR(error);
    /* By address: a NULL target, and a library of the wrong kind. */
    CHECK_ERROR(jitcall_function_bind_address(NULL, NULL, sig, NULL, &f, &error),
                JITCALL_E_NULL_POINTER, error);
    CHECK_CONTAINS(jitcall_error_message(error), "`address` is NULL");
    DROP_ERROR(error);
    CHECK_ERROR(jitcall_function_bind_address((const jitcall_library *)sig,
                                              (const void *)&halve, sig, NULL, &f, &error),
                JITCALL_E_INVALID_HANDLE, error);
    DROP_ERROR(error);
    CHECK_ERROR(jitcall_function_bind_address(NULL, (const void *)&halve, sig, NULL, NULL,
                                              &error),
                JITCALL_E_NULL_POINTER, error);
    DROP_ERROR(error);
    CHECK(f == NULL);

    /* Every accessor and the call refuse another kind of handle. */
    {
        jitcall_tier tier;
        const void *p;
        jitcall_packed_fn entry;
        uint64_t ret;
        const jitcall_function *wrong = (const jitcall_function *)libm;
        CHECK_STATUS(jitcall_call_packed(wrong, NULL, &ret), JITCALL_E_INVALID_HANDLE);
        CHECK_STATUS(jitcall_function_tier(wrong, &tier, NULL, NULL), JITCALL_E_INVALID_HANDLE);
        CHECK_STATUS(jitcall_function_jit_entry(wrong, &entry), JITCALL_E_INVALID_HANDLE);
        CHECK_STATUS(jitcall_function_receiver_entry(wrong, &p, NULL),
                     JITCALL_E_INVALID_HANDLE);
        CHECK_STATUS(jitcall_function_target(wrong, &p), JITCALL_E_INVALID_HANDLE);
        CHECK_STATUS(jitcall_function_free((jitcall_function *)libm), JITCALL_E_INVALID_HANDLE);
        CHECK_STATUS(jitcall_function_tier(NULL, &tier, NULL, NULL), JITCALL_E_NULL_POINTER);
        CHECK_STATUS(jitcall_function_jit_entry(NULL, &entry), JITCALL_E_NULL_POINTER);
        CHECK_STATUS(jitcall_function_receiver_entry(NULL, &p, NULL), JITCALL_E_NULL_POINTER);
        CHECK_STATUS(jitcall_function_free(NULL), JITCALL_OK);
    }
    {
        jitcall_function *g = bind_address((const void *)&halve, "(f64) -> f64", NULL);
        CHECK_STATUS(jitcall_function_tier(g, NULL, NULL, NULL), JITCALL_E_NULL_POINTER);
        CHECK_STATUS(jitcall_function_jit_entry(g, NULL), JITCALL_E_NULL_POINTER);
        CHECK_STATUS(jitcall_function_receiver_entry(g, NULL, NULL), JITCALL_E_NULL_POINTER);
        CHECK_STATUS(jitcall_function_free(g), JITCALL_OK);
    }
    CHECK_STATUS(jitcall_signature_free(sig), JITCALL_OK);
    CHECK_STATUS(jitcall_library_free(libm), JITCALL_OK);
}

static void batches(void) {
    jitcall_library *libm = NULL;
    jitcall_error *error = NULL;
    jitcall_signature *one = parse("(f64) -> f64");
    jitcall_signature *two = parse("(f64, f64) -> f64");
    const char *names[3] = {"cos", "sin", "pow"};
    const jitcall_signature *sigs[3] = {one, one, two};
    jitcall_function *fns[3] = {NULL, NULL, NULL};
    uint64_t args[2], ret = 0;
    size_t i;

    CHECK_ERROR(jitcall_library_open("libm.so.6", &libm, &error), JITCALL_OK, error);
    CHECK_ERROR(jitcall_function_bind_batch(libm, names, sigs, 3, NULL, fns, &error),
                JITCALL_OK, error);
    for (i = 0; i < 3; i++) {
        check_fast_tier(fns[i], JITCALL_TIER_JIT);
    }
    args[0] = f64_bits(0.0);
    CHECK_STATUS(jitcall_call_packed(fns[0], args, &ret), JITCALL_OK);
    CHECK(bits_f64(ret) == 1.0);
    CHECK_STATUS(jitcall_call_packed(fns[1], args, &ret), JITCALL_OK);
    CHECK(bits_f64(ret) == 0.0);
    args[0] = f64_bits(2.0);
    args[1] = f64_bits(10.0);
    CHECK_STATUS(jitcall_call_packed(fns[2], args, &ret), JITCALL_OK);
    CHECK(bits_f64(ret) == 1024.0);
    /* On the JIT tier, the packed entry calls the same. */
    if (jit_available()) {
        jitcall_packed_fn entry = NULL;
        CHECK_STATUS(jitcall_function_jit_entry(fns[2], &entry), JITCALL_OK);
        CHECK(entry != NULL);
        if (entry != NULL) {
            ret = 0;
            entry(args, &ret);
            CHECK(bits_f64(ret) == 1024.0);
        }
    }
    for (i = 0; i < 3; i++) {
        CHECK_STATUS(jitcall_function_free(fns[i]), JITCALL_OK);
        fns[i] = NULL;
    }

    /* The first error fails the batch and writes no handle. */
    names[1] = "no_such_function_here";
    CHECK_ERROR(jitcall_function_bind_batch(libm, names, sigs, 3, NULL, fns, &error),
                JITCALL_E_SYMBOL, error);
    DROP_ERROR(error);
    CHECK(fns[0] == NULL && fns[1] == NULL && fns[2] == NULL);
    names[1] = NULL;
    CHECK_ERROR(jitcall_function_bind_batch(libm, names, sigs, 3, NULL, fns, &error),
                JITCALL_E_NULL_POINTER, error);
    CHECK_CONTAINS(jitcall_error_message(error), "`names[1]` is NULL");
    DROP_ERROR(error);
    names[1] = "sin";
    sigs[2] = (const jitcall_signature *)libm;
    CHECK_ERROR(jitcall_function_bind_batch(libm, names, sigs, 3, NULL, fns, &error),
                JITCALL_E_INVALID_HANDLE, error);
    CHECK_CONTAINS(jitcall_error_message(error), "`signatures[2]` is a jitcall_library");
    DROP_ERROR(error);
    sigs[2] = two;
    CHECK_ERROR(jitcall_function_bind_batch(libm, NULL, sigs, 3, NULL, fns, &error),
                JITCALL_E_NULL_POINTER, error);
    DROP_ERROR(error);
    CHECK_ERROR(jitcall_function_bind_batch(libm, names, NULL, 3, NULL, fns, &error),
                JITCALL_E_NULL_POINTER, error);
    DROP_ERROR(error);
    CHECK_ERROR(jitcall_function_bind_batch(libm, names, sigs, 3, NULL, NULL, &error),
                JITCALL_E_NULL_POINTER, error);
    DROP_ERROR(error);
    CHECK_ERROR(jitcall_function_bind_batch(NULL, names, sigs, 3, NULL, fns, &error),
                JITCALL_E_NULL_POINTER, error);
    DROP_ERROR(error);
    CHECK(fns[0] == NULL && fns[1] == NULL && fns[2] == NULL);
    /* An empty batch binds nothing, and reads no array. */
    CHECK_ERROR(jitcall_function_bind_batch(libm, NULL, NULL, 0, NULL, fns, &error),
                JITCALL_OK, error);

    /* By address. */
    {
        const void *addresses[2] = {(const void *)&add_i32, (const void *)&scale};
        jitcall_signature *add_sig = parse("(i32, i32) -> i32");
        jitcall_signature *scale_sig = parse("(f64, i32) -> f64");
        const jitcall_signature *pair_sigs[2] = {add_sig, scale_sig};
        uint64_t sargs[2] = {f64_bits(1.5), 4};
        CHECK_ERROR(jitcall_function_bind_batch_address(addresses, pair_sigs, 2, NULL, fns,
                                                        &error),
                    JITCALL_OK, error);
        check_fast_tier(fns[0], JITCALL_TIER_JIT);
        check_fast_tier(fns[1], JITCALL_TIER_JIT);
        args[0] = 20;
        args[1] = 22;
        CHECK_STATUS(jitcall_call_packed(fns[0], args, &ret), JITCALL_OK);
        CHECK(ret == 42);
        CHECK_STATUS(jitcall_call_packed(fns[1], sargs, &ret), JITCALL_OK);
        CHECK(bits_f64(ret) == 6.0);
        CHECK_STATUS(jitcall_function_free(fns[0]), JITCALL_OK);
        CHECK_STATUS(jitcall_function_free(fns[1]), JITCALL_OK);
        fns[0] = fns[1] = NULL;

        addresses[1] = NULL;
        CHECK_ERROR(jitcall_function_bind_batch_address(addresses, pair_sigs, 2, NULL, fns,
                                                        &error),
                    JITCALL_E_NULL_POINTER, error);
        CHECK_CONTAINS(jitcall_error_message(error), "`addresses[1]` is NULL");
        DROP_ERROR(error);
        CHECK_ERROR(jitcall_function_bind_batch_address(NULL, pair_sigs, 2, NULL, fns, &error),
                    JITCALL_E_NULL_POINTER, error);
        DROP_ERROR(error);
        addresses[1] = (const void *)&scale;
        pair_sigs[0] = NULL;
        CHECK_ERROR(jitcall_function_bind_batch_address(addresses, pair_sigs, 2, NULL, fns,
                                                        &error),
                    JITCALL_E_NULL_POINTER, error);
        CHECK_CONTAINS(jitcall_error_message(error), "`signatures[0]` is NULL");
        DROP_ERROR(error);
        CHECK_ERROR(jitcall_function_bind_batch_address(addresses, pair_sigs, 2, NULL, NULL,
                                                        &error),
                    JITCALL_E_NULL_POINTER, error);
        DROP_ERROR(error);
        CHECK(fns[0] == NULL && fns[1] == NULL);
        CHECK_ERROR(jitcall_function_bind_batch_address(NULL, NULL, 0, NULL, fns, &error),
                    JITCALL_OK, error);
        CHECK_STATUS(jitcall_signature_free(add_sig), JITCALL_OK);
        CHECK_STATUS(jitcall_signature_free(scale_sig), JITCALL_OK);
    }
    CHECK_STATUS(jitcall_signature_free(one), JITCALL_OK);
    CHECK_STATUS(jitcall_signature_free(two), JITCALL_OK);
    CHECK_STATUS(jitcall_library_free(libm), JITCALL_OK);
}

static void options(void) {
    uint64_t args[8], ret = 0;
    jitcall_options *o;
    jitcall_function *f;

    /* Setters refuse NULL, other handles and codes out of range. */
    CHECK_STATUS(jitcall_options_new(NULL), JITCALL_E_NULL_POINTER);
    CHECK_STATUS(jitcall_options_set_limits(NULL, JITCALL_LIMITS_NODE), JITCALL_E_NULL_POINTER);
    CHECK_STATUS(jitcall_options_set_receiver_entry(NULL, true), JITCALL_E_NULL_POINTER);
    CHECK_STATUS(jitcall_options_set_force(NULL, JITCALL_FORCE_LIBFFI), JITCALL_E_NULL_POINTER);
    CHECK_STATUS(jitcall_options_set_specialise(NULL, true), JITCALL_E_NULL_POINTER);
    CHECK_STATUS(jitcall_options_set_double_map(NULL, true), JITCALL_E_NULL_POINTER);
    CHECK_STATUS(jitcall_options_set_capture_errno(NULL, true), JITCALL_E_NULL_POINTER);
    CHECK_STATUS(jitcall_options_set_abi(NULL, JITCALL_ABI_HOST), JITCALL_E_NULL_POINTER);
    CHECK_STATUS(jitcall_options_free(NULL), JITCALL_OK);
    o = options_with();
    CHECK_STATUS(jitcall_options_set_limits(o, 2), JITCALL_E_INVALID_ARGUMENT);
    CHECK_STATUS(jitcall_options_set_force(o, 3), JITCALL_E_INVALID_ARGUMENT);
    CHECK_STATUS(jitcall_options_set_abi(o, 99), JITCALL_E_INVALID_ARGUMENT);
    CHECK_STATUS(jitcall_options_set_abi(o, (jitcall_abi)-1), JITCALL_E_INVALID_ARGUMENT);
    {
        jitcall_signature *sig = parse("() -> void");
        jitcall_options *wrong = (jitcall_options *)sig;
        CHECK_STATUS(jitcall_options_set_limits(wrong, JITCALL_LIMITS_NODE),
                     JITCALL_E_INVALID_HANDLE);
        CHECK_STATUS(jitcall_options_set_receiver_entry(wrong, true), JITCALL_E_INVALID_HANDLE);
        CHECK_STATUS(jitcall_options_set_force(wrong, JITCALL_FORCE_NONE),
                     JITCALL_E_INVALID_HANDLE);
        CHECK_STATUS(jitcall_options_set_double_map(wrong, true), JITCALL_E_INVALID_HANDLE);
        CHECK_STATUS(jitcall_options_set_capture_errno(wrong, true), JITCALL_E_INVALID_HANDLE);
        CHECK_STATUS(jitcall_options_set_abi(wrong, JITCALL_ABI_HOST), JITCALL_E_INVALID_HANDLE);
        CHECK_STATUS(jitcall_options_free(wrong), JITCALL_E_INVALID_HANDLE);
        CHECK_STATUS(jitcall_signature_free(sig), JITCALL_OK);
    }
    /* Out of range changed nothing: still the defaults. */
    f = bind_address((const void *)&add_i32, "(i32, i32) -> i32", o);
    check_fast_tier(f, JITCALL_TIER_SHARED);
    CHECK_STATUS(jitcall_function_free(f), JITCALL_OK);

    /* Node's limits: eight arguments at most. */
    CHECK_STATUS(jitcall_options_set_limits(o, JITCALL_LIMITS_NODE), JITCALL_OK);
    f = bind_address((const void *)&sum_8, "(i64, i64, i64, i64, i64, i64, i64, i64) -> i64", o);
    check_tier(f, JITCALL_TIER_LIBFFI, JITCALL_REASON_INELIGIBLE, "libffi (ineligible: GpPressure");
    for (size_t i = 0; i < 8; i++) {
        args[i] = i + 1;
    }
    CHECK_STATUS(jitcall_call_packed(f, args, &ret), JITCALL_OK);
    CHECK(ret == 204);
    CHECK_STATUS(jitcall_function_free(f), JITCALL_OK);
    CHECK_STATUS(jitcall_options_set_limits(o, JITCALL_LIMITS_DEFAULT), JITCALL_OK);
    f = bind_address((const void *)&sum_8, "(i64, i64, i64, i64, i64, i64, i64, i64) -> i64", o);
    check_fast_tier(f, JITCALL_TIER_SHARED);
    CHECK_STATUS(jitcall_call_packed(f, args, &ret), JITCALL_OK);
    CHECK(ret == 204);
    CHECK_STATUS(jitcall_function_free(f), JITCALL_OK);

    /* Forced tiers. */
    CHECK_STATUS(jitcall_options_set_force(o, JITCALL_FORCE_LIBFFI), JITCALL_OK);
    f = bind_address((const void *)&add_i32, "(i32, i32) -> i32", o);
    check_tier(f, JITCALL_TIER_LIBFFI, JITCALL_REASON_FORCED, "libffi (forced by options)");
    args[0] = 40;
    args[1] = 2;
    CHECK_STATUS(jitcall_call_packed(f, args, &ret), JITCALL_OK);
    CHECK(ret == 42);
    CHECK_STATUS(jitcall_function_free(f), JITCALL_OK);
    CHECK_STATUS(jitcall_options_set_force(o, JITCALL_FORCE_AVOID_JIT), JITCALL_OK);
    f = bind_address((const void *)&add_i32, "(i32, i32) -> i32", o);
    check_tier(f, JITCALL_TIER_BAKED, JITCALL_REASON_FORCED, "baked (forced by options)");
    CHECK_STATUS(jitcall_call_packed(f, args, &ret), JITCALL_OK);
    CHECK(ret == 42);
    CHECK_STATUS(jitcall_function_free(f), JITCALL_OK);
    CHECK_STATUS(jitcall_options_set_force(o, JITCALL_FORCE_NONE), JITCALL_OK);

    /* Specialised: a trampoline of its own, with a packed entry. */
    CHECK_STATUS(jitcall_options_set_specialise(o, true), JITCALL_OK);
    f = bind_address((const void *)&add_i32, "(i32, i32) -> i32", o);
    check_fast_tier(f, JITCALL_TIER_JIT);
    {
        jitcall_packed_fn entry = NULL;
        CHECK_STATUS(jitcall_function_jit_entry(f, &entry), JITCALL_OK);
        CHECK((entry != NULL) == jit_available());
        if (entry != NULL) {
            args[0] = 100;
            args[1] = 23;
            entry(args, &ret);
            CHECK(ret == 123);
        }
    }
    CHECK_STATUS(jitcall_function_free(f), JITCALL_OK);
    CHECK_STATUS(jitcall_options_set_specialise(o, false), JITCALL_OK);

    /* Double-mapped: a trampoline of its own, through the second view. */
    CHECK_STATUS(jitcall_options_set_double_map(o, true), JITCALL_OK);
    f = bind_address((const void *)&add_i32, "(i32, i32) -> i32", o);
    check_fast_tier(f, JITCALL_TIER_JIT);
    args[0] = 1;
    args[1] = 2;
    CHECK_STATUS(jitcall_call_packed(f, args, &ret), JITCALL_OK);
    CHECK(ret == 3);
    CHECK_STATUS(jitcall_function_free(f), JITCALL_OK);
    CHECK_STATUS(jitcall_options_set_double_map(o, false), JITCALL_OK);
    CHECK_STATUS(jitcall_options_free(o), JITCALL_OK);
}

static void receiver_entries(void) {
    jitcall_options *o = options_with();
    jitcall_function *f;
    const void *entry = NULL;
    jitcall_receiver_kind kind = 99;

    /* None asked for. */
    f = bind_address((const void *)&add_i32, "(i32, i32) -> i32", NULL);
    entry = (const void *)&count_call;
    CHECK_STATUS(jitcall_function_receiver_entry(f, &entry, &kind), JITCALL_OK);
    CHECK(entry == NULL);
    CHECK(kind == JITCALL_RECEIVER_NONE);
    CHECK_STATUS(jitcall_function_free(f), JITCALL_OK);

    CHECK_STATUS(jitcall_options_set_receiver_entry(o, true), JITCALL_OK);
    f = bind_address((const void *)&add_i32, "(i32, i32) -> i32", o);
    CHECK_STATUS(jitcall_function_receiver_entry(f, &entry, &kind), JITCALL_OK);
    CHECK(entry != NULL);
    CHECK(kind == (jit_available() ? JITCALL_RECEIVER_TRAMPOLINE : JITCALL_RECEIVER_THUNK_STUB));
    if (entry != NULL) {
        int32_t (*add)(const void *, int32_t, int32_t) =
            (int32_t(*)(const void *, int32_t, int32_t))entry;
        CHECK(add(NULL, 19, 23) == 42);
    }
    /* The kind may be left out. */
    CHECK_STATUS(jitcall_function_receiver_entry(f, &entry, NULL), JITCALL_OK);
    CHECK_STATUS(jitcall_function_free(f), JITCALL_OK);

    /* Nothing to move: the target itself. */
    f = bind_address((const void *)&halve, "(f64) -> f64", o);
    CHECK_STATUS(jitcall_function_receiver_entry(f, &entry, &kind), JITCALL_OK);
    if (jit_available()) {
        CHECK(kind == JITCALL_RECEIVER_TARGET);
        CHECK(entry == (const void *)&halve);
    }
    if (entry != NULL) {
        double (*h)(const void *, double) = (double (*)(const void *, double))entry;
        CHECK(h(NULL, 5.0) == 2.5);
    }
    CHECK_STATUS(jitcall_function_free(f), JITCALL_OK);

    /* Without the JIT: static thunks, to the shape's stub or the generic one. */
    CHECK_STATUS(jitcall_options_set_force(o, JITCALL_FORCE_AVOID_JIT), JITCALL_OK);
    f = bind_address((const void *)&add_i32, "(i32, i32) -> i32", o);
    CHECK_STATUS(jitcall_function_receiver_entry(f, &entry, &kind), JITCALL_OK);
    CHECK(kind == JITCALL_RECEIVER_THUNK_STUB);
    if (entry != NULL) {
        int32_t (*add)(const void *, int32_t, int32_t) =
            (int32_t(*)(const void *, int32_t, int32_t))entry;
        CHECK(add(NULL, -1, 43) == 42);
    }
    CHECK_STATUS(jitcall_function_free(f), JITCALL_OK);
    f = bind_address((const void *)&sum_8, "(i64, i64, i64, i64, i64, i64, i64, i64) -> i64", o);
    CHECK_STATUS(jitcall_function_receiver_entry(f, &entry, &kind), JITCALL_OK);
    CHECK(kind == JITCALL_RECEIVER_THUNK_GENERIC);
    if (entry != NULL) {
        int64_t (*sum)(const void *, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                       int64_t, int64_t) =
            (int64_t(*)(const void *, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                        int64_t, int64_t))entry;
        CHECK(sum(NULL, 1, 2, 3, 4, 5, 6, 7, 8) == 204);
    }
    CHECK_STATUS(jitcall_function_free(f), JITCALL_OK);
    CHECK_STATUS(jitcall_options_free(o), JITCALL_OK);
}

static void errno_capture(void) {
    jitcall_library *process = NULL;
    jitcall_error *error = NULL;
    jitcall_signature *sig = parse("(pointer, i32) -> i32");
    jitcall_options *o = options_with();
    jitcall_function *open_fn = NULL;
    uint64_t args[2] = {(uint64_t)(uintptr_t) "/nonexistent/jitcall/capi", O_RDONLY};
    uint64_t ret = 0;

    CHECK_STATUS(jitcall_options_set_capture_errno(o, true), JITCALL_OK);
    CHECK_ERROR(jitcall_library_open(NULL, &process, &error), JITCALL_OK, error);
    CHECK_ERROR(jitcall_function_bind(process, "open", sig, o, &open_fn, &error), JITCALL_OK,
                error);
    CHECK(jitcall_last_errno() == 0);
    CHECK_STATUS(jitcall_call_packed(open_fn, args, &ret), JITCALL_OK);
    CHECK((int32_t)ret == -1);
    /* The caller's own code may change errno since: the capture stays. */
    errno = 0;
    CHECK(jitcall_last_errno() == ENOENT);
    CHECK_STATUS(jitcall_function_free(open_fn), JITCALL_OK);
    CHECK_STATUS(jitcall_options_free(o), JITCALL_OK);
    CHECK_STATUS(jitcall_signature_free(sig), JITCALL_OK);
    CHECK_STATUS(jitcall_library_free(process), JITCALL_OK);
}

static void abis(void) {
    jitcall_options *o = options_with();
    jitcall_signature *sig = parse("(i32, i32) -> i32");
    jitcall_function *f = NULL;
    jitcall_error *error = NULL;
    uint64_t args[5], ret = 0;

#if defined(__x86_64__)
    CHECK_STATUS(jitcall_options_set_abi(o, JITCALL_ABI_SYSV64), JITCALL_OK);
    f = bind_address((const void *)&add_i32, "(i32, i32) -> i32", o);
    args[0] = 40;
    args[1] = 2;
    CHECK_STATUS(jitcall_call_packed(f, args, &ret), JITCALL_OK);
    CHECK(ret == 42);
    CHECK_STATUS(jitcall_function_free(f), JITCALL_OK);

    /* Another instruction set's convention. */
    CHECK_STATUS(jitcall_options_set_abi(o, JITCALL_ABI_APPLE_AARCH64), JITCALL_OK);
    CHECK_ERROR(jitcall_function_bind_address(NULL, (const void *)&add_i32, sig, o, &f, &error),
                JITCALL_E_ABI, error);
    DROP_ERROR(error);
    CHECK_STATUS(jitcall_options_set_abi(o, JITCALL_ABI_AAPCS64), JITCALL_OK);
    CHECK_ERROR(jitcall_function_bind_address(NULL, (const void *)&add_i32, sig, o, &f, &error),
                JITCALL_E_ABI, error);
    DROP_ERROR(error);

    /* Win64: a GCC ms_abi callee, through call_packed and its packed entry. */
    CHECK_STATUS(jitcall_options_set_abi(o, JITCALL_ABI_WIN64), JITCALL_OK);
    f = bind_address((const void *)&weigh, "(i32, f64, i8, f32, i64) -> f64", o);
    args[0] = 1;
    args[1] = f64_bits(2.5);
    args[2] = (uint64_t)(int64_t)-1;
    args[3] = f32_bits(0.5f);
    args[4] = 10;
    CHECK_STATUS(jitcall_call_packed(f, args, &ret), JITCALL_OK);
    CHECK(bits_f64(ret) == 1.0 + 5.0 - 3.0 + 2.0 + 50.0);
    if (jit_available()) {
        jitcall_packed_fn entry = NULL;
        check_tier(f, JITCALL_TIER_JIT, JITCALL_REASON_NONE, "JIT");
        CHECK_STATUS(jitcall_function_jit_entry(f, &entry), JITCALL_OK);
        CHECK(entry != NULL);
        if (entry != NULL) {
            ret = 0;
            ((win64_packed_fn)entry)(args, &ret);
            CHECK(bits_f64(ret) == 55.0);
        }
    } else {
        /* Without JIT code, libffi's FFI_WIN64. */
        jitcall_tier tier = 0;
        CHECK_STATUS(jitcall_function_tier(f, &tier, NULL, NULL), JITCALL_OK);
        CHECK(tier == JITCALL_TIER_LIBFFI);
    }
    CHECK_STATUS(jitcall_function_free(f), JITCALL_OK);
#elif defined(__aarch64__)
    CHECK_STATUS(jitcall_options_set_abi(o, JITCALL_ABI_AAPCS64), JITCALL_OK);
    f = bind_address((const void *)&add_i32, "(i32, i32) -> i32", o);
    args[0] = 40;
    args[1] = 2;
    CHECK_STATUS(jitcall_call_packed(f, args, &ret), JITCALL_OK);
    CHECK(ret == 42);
    CHECK_STATUS(jitcall_function_free(f), JITCALL_OK);

    CHECK_STATUS(jitcall_options_set_abi(o, JITCALL_ABI_WIN64), JITCALL_OK);
    CHECK_ERROR(jitcall_function_bind_address(NULL, (const void *)&add_i32, sig, o, &f, &error),
                JITCALL_E_ABI, error);
    DROP_ERROR(error);
    CHECK_STATUS(jitcall_options_set_abi(o, JITCALL_ABI_SYSV64), JITCALL_OK);
    CHECK_ERROR(jitcall_function_bind_address(NULL, (const void *)&add_i32, sig, o, &f, &error),
                JITCALL_E_ABI, error);
    DROP_ERROR(error);

    /* Apple's arm64 convention: for two ints in registers, the same as
     * Linux's, so a Linux callee stands for an Apple one. Without the JIT
     * there is no call path (libffi has Apple's rules on Apple only). */
    CHECK_STATUS(jitcall_options_set_abi(o, JITCALL_ABI_APPLE_AARCH64), JITCALL_OK);
    if (jit_available()) {
        f = bind_address((const void *)&add_i32, "(i32, i32) -> i32", o);
        check_tier(f, JITCALL_TIER_JIT, JITCALL_REASON_NONE, "JIT");
        CHECK_STATUS(jitcall_call_packed(f, args, &ret), JITCALL_OK);
        CHECK(ret == 42);
        CHECK_STATUS(jitcall_function_free(f), JITCALL_OK);
    } else {
        CHECK_ERROR(jitcall_function_bind_address(NULL, (const void *)&add_i32, sig, o, &f,
                                                  &error),
                    JITCALL_E_ABI, error);
        DROP_ERROR(error);
    }
#else
#error "the C API tests know x86_64 and AArch64"
#endif
    (void)ret;
    CHECK_STATUS(jitcall_options_free(o), JITCALL_OK);
    CHECK_STATUS(jitcall_signature_free(sig), JITCALL_OK);
}

int main(void) {
    jit = getenv("JITCALL_CAPI_TEST_JIT");
    if (jit == NULL) {
        fprintf(stderr, "JITCALL_CAPI_TEST_JIT is not set: run me from capi/tests/c_api.rs\n");
        return 2;
    }
    by_symbol();
    by_address();
    bind_errors();
    batches();
    options();
    receiver_entries();
    errno_capture();
    abis();
    return finish("function");
}
