/* Callbacks: C function pointers made from a C handler, called by C
 * directly, from another thread, and by libc's qsort bound through
 * jitcall; on each callback tier; and bad input. */
#include <pthread.h>
#include <stdint.h>

#include "check.h"

static const char *jit;

static int jit_available(void) { return strcmp(jit, "available") == 0; }

static void add_handler(void *data, const uint64_t *args, uint64_t *ret) {
    int *calls = data;
    (*calls)++;
    *ret = (uint64_t)(int64_t)((int32_t)args[0] + (int32_t)args[1]);
}

static void scale_handler(void *data, const uint64_t *args, uint64_t *ret) {
    double x, factor = *(const double *)data;
    memcpy(&x, &args[0], sizeof x);
    x *= factor;
    memcpy(ret, &x, sizeof x);
}

typedef struct {
    int64_t a, b, c;
} triple;

static void triple_handler(void *data, const uint64_t *args, uint64_t *ret) {
    triple t = {(int64_t)args[0], 2 * (int64_t)args[0], 3 * (int64_t)args[0]};
    (void)data;
    memcpy(ret, &t, sizeof t);
}

/* A comparator of ints for qsort, counting its calls. */
static void compare_handler(void *data, const uint64_t *args, uint64_t *ret) {
    const int *a = (const int *)(uintptr_t)args[0];
    const int *b = (const int *)(uintptr_t)args[1];
    (*(int *)data)++;
    *ret = (uint64_t)(int64_t)((*a > *b) - (*a < *b));
}

static jitcall_callback *make(const char *text, jitcall_handler handler, void *data,
                              const jitcall_options *options) {
    jitcall_signature *sig = parse(text);
    jitcall_callback *cb = NULL;
    jitcall_error *error = NULL;
    CHECK_ERROR(jitcall_callback_new(sig, handler, data, options, &cb, &error), JITCALL_OK,
                error);
    if (cb == NULL) {
        fprintf(stderr, "cannot make a callback for %s: %s\n", text,
                jitcall_error_message(error));
        exit(2);
    }
    CHECK_STATUS(jitcall_signature_free(sig), JITCALL_OK);
    return cb;
}

static const void *code_of(const jitcall_callback *cb) {
    const void *code = NULL;
    CHECK_STATUS(jitcall_callback_code(cb, &code), JITCALL_OK);
    CHECK(code != NULL);
    return code;
}

static void check_tier(const jitcall_callback *cb, jitcall_tier want, jitcall_reason reason) {
    jitcall_tier tier = 0;
    jitcall_reason why = 99;
    const char *description = NULL;
    CHECK_STATUS(jitcall_callback_tier(cb, &tier, &why, &description), JITCALL_OK);
    CHECK(tier == want);
    CHECK(why == reason);
    CHECK(description != NULL && description[0] != '\0');
    /* Reason and description may be left out. */
    CHECK_STATUS(jitcall_callback_tier(cb, &tier, NULL, NULL), JITCALL_OK);
}

typedef int32_t (*add_fn)(int32_t, int32_t);

static void *call_from_thread(void *code) {
    static int32_t result;
    result = ((add_fn)code)(1000, 337);
    return &result;
}

/* Each way to make `(i32, i32) -> i32`, called directly and from a thread. */
static void every_tier(void) {
    jitcall_options *o = NULL;
    int calls = 0;
    int force;

    CHECK_STATUS(jitcall_options_new(&o), JITCALL_OK);
    for (force = JITCALL_FORCE_NONE; force <= JITCALL_FORCE_AVOID_JIT; force++) {
        jitcall_callback *cb;
        add_fn add;
        pthread_t thread;
        void *result = NULL;

        CHECK_STATUS(jitcall_options_set_force(o, (jitcall_force)force), JITCALL_OK);
        cb = make("(i32, i32) -> i32", add_handler, &calls, o);
        switch (force) {
        case JITCALL_FORCE_NONE:
            if (jit_available()) {
                check_tier(cb, JITCALL_TIER_JIT, JITCALL_REASON_NONE);
            } else if (strcmp(jit, "disabled") == 0) {
                check_tier(cb, JITCALL_TIER_BAKED, JITCALL_REASON_JIT_DISABLED);
            } else {
                check_tier(cb, JITCALL_TIER_BAKED, JITCALL_REASON_JIT_REFUSED);
            }
            break;
        case JITCALL_FORCE_LIBFFI:
            check_tier(cb, JITCALL_TIER_LIBFFI, JITCALL_REASON_FORCED);
            break;
        default:
            check_tier(cb, JITCALL_TIER_BAKED, JITCALL_REASON_FORCED);
        }
        add = (add_fn)code_of(cb);
        calls = 0;
        CHECK(add(40, 2) == 42);
        CHECK(add(-50, 8) == -42);
        CHECK(calls == 2);
        CHECK(pthread_create(&thread, NULL, call_from_thread, (void *)add) == 0);
        CHECK(pthread_join(thread, &result) == 0);
        CHECK(result != NULL && *(int32_t *)result == 1337);
        CHECK(calls == 3);
        CHECK_STATUS(jitcall_callback_free(cb), JITCALL_OK);
    }
    CHECK_STATUS(jitcall_options_free(o), JITCALL_OK);
}

static void other_types(void) {
    double factor = 2.5;
    jitcall_callback *cb = make("(f64) -> f64", scale_handler, &factor, NULL);
    double (*scale)(double) = (double (*)(double))code_of(cb);
    CHECK(scale(4.0) == 10.0);
    CHECK_STATUS(jitcall_callback_free(cb), JITCALL_OK);

    cb = make("(i64) -> {i64, i64, i64}", triple_handler, NULL, NULL);
    {
        triple (*make_triple)(int64_t) = (triple(*)(int64_t))code_of(cb);
        triple t = make_triple(7);
        CHECK(t.a == 7 && t.b == 14 && t.c == 21);
    }
    CHECK_STATUS(jitcall_callback_free(cb), JITCALL_OK);
}

/* libc's qsort, bound through jitcall, sorting with a callback. */
static void sorting(void) {
    int numbers[] = {42, -7, 19, 0, 1000, -300, 5, 5, 64};
    const size_t n = sizeof numbers / sizeof numbers[0];
    int compares = 0;
    jitcall_callback *compare =
        make("(pointer, pointer) -> i32", compare_handler, &compares, NULL);
    jitcall_library *libc = NULL;
    jitcall_signature *sig = parse("(pointer, u64, u64, function) -> void");
    jitcall_function *qsort_fn = NULL;
    jitcall_error *error = NULL;
    size_t i;

    CHECK_ERROR(jitcall_library_open(NULL, &libc, &error), JITCALL_OK, error);
    CHECK_ERROR(jitcall_function_bind(libc, "qsort", sig, NULL, &qsort_fn, &error), JITCALL_OK,
                error);
    {
        uint64_t args[4] = {(uint64_t)(uintptr_t)numbers, n, sizeof numbers[0],
                            (uint64_t)(uintptr_t)code_of(compare)};
        CHECK_STATUS(jitcall_call_packed(qsort_fn, args, NULL), JITCALL_OK);
    }
    for (i = 1; i < n; i++) {
        CHECK(numbers[i - 1] <= numbers[i]);
    }
    CHECK(numbers[0] == -300 && numbers[n - 1] == 1000);
    CHECK(compares >= (int)n - 1);
    CHECK_STATUS(jitcall_function_free(qsort_fn), JITCALL_OK);
    CHECK_STATUS(jitcall_signature_free(sig), JITCALL_OK);
    CHECK_STATUS(jitcall_library_free(libc), JITCALL_OK);
    CHECK_STATUS(jitcall_callback_free(compare), JITCALL_OK);
}

static void refused(void) {
    jitcall_signature *sig = parse("(i32, i32) -> i32");
    jitcall_signature *variadic = parse("(pointer, ..., i32) -> i32");
    jitcall_options *o = NULL;
    jitcall_callback *cb = NULL;
    jitcall_error *error = NULL;
    int calls = 0;

    CHECK_ERROR(jitcall_callback_new(variadic, add_handler, &calls, NULL, &cb, &error),
                JITCALL_E_UNSUPPORTED_SIGNATURE, error);
    CHECK_CONTAINS(jitcall_error_message(error), "variadic");
    DROP_ERROR(error);
    CHECK_ERROR(jitcall_callback_new(sig, NULL, &calls, NULL, &cb, &error),
                JITCALL_E_NULL_POINTER, error);
    CHECK_CONTAINS(jitcall_error_message(error), "`handler` is NULL");
    DROP_ERROR(error);
    CHECK_ERROR(jitcall_callback_new(NULL, add_handler, &calls, NULL, &cb, &error),
                JITCALL_E_NULL_POINTER, error);
    DROP_ERROR(error);
    CHECK_ERROR(jitcall_callback_new(sig, add_handler, &calls, NULL, NULL, &error),
                JITCALL_E_NULL_POINTER, error);
    DROP_ERROR(error);
    CHECK_ERROR(jitcall_callback_new(sig, add_handler, &calls, (const jitcall_options *)sig, &cb,
                                     &error),
                JITCALL_E_INVALID_HANDLE, error);
    DROP_ERROR(error);

    /* Callbacks follow the host's C ABI. */
    CHECK_STATUS(jitcall_options_new(&o), JITCALL_OK);
#if defined(__x86_64__)
    CHECK_STATUS(jitcall_options_set_abi(o, JITCALL_ABI_WIN64), JITCALL_OK);
#else
    CHECK_STATUS(jitcall_options_set_abi(o, JITCALL_ABI_APPLE_AARCH64), JITCALL_OK);
#endif
    CHECK_ERROR(jitcall_callback_new(sig, add_handler, &calls, o, &cb, &error), JITCALL_E_ABI,
                error);
    DROP_ERROR(error);
    CHECK(cb == NULL);
    CHECK(calls == 0);

    /* Accessors and free refuse NULL and other kinds of handle. */
    {
        const void *code = NULL;
        jitcall_tier tier = 0;
        const jitcall_callback *wrong = (const jitcall_callback *)sig;
        CHECK_STATUS(jitcall_callback_code(NULL, &code), JITCALL_E_NULL_POINTER);
        CHECK_STATUS(jitcall_callback_code(wrong, &code), JITCALL_E_INVALID_HANDLE);
        CHECK_STATUS(jitcall_callback_tier(NULL, &tier, NULL, NULL), JITCALL_E_NULL_POINTER);
        CHECK_STATUS(jitcall_callback_tier(wrong, &tier, NULL, NULL), JITCALL_E_INVALID_HANDLE);
        CHECK_STATUS(jitcall_callback_free((jitcall_callback *)sig), JITCALL_E_INVALID_HANDLE);
        CHECK_STATUS(jitcall_callback_free(NULL), JITCALL_OK);
        cb = make("(i32, i32) -> i32", add_handler, &calls, NULL);
        CHECK_STATUS(jitcall_callback_code(cb, NULL), JITCALL_E_NULL_POINTER);
        CHECK_STATUS(jitcall_callback_tier(cb, NULL, NULL, NULL), JITCALL_E_NULL_POINTER);
        CHECK_STATUS(jitcall_callback_free(cb), JITCALL_OK);
        CHECK(code == NULL && tier == 0);
    }
    CHECK_STATUS(jitcall_options_free(o), JITCALL_OK);
    CHECK_STATUS(jitcall_signature_free(sig), JITCALL_OK);
    CHECK_STATUS(jitcall_signature_free(variadic), JITCALL_OK);
}

int main(void) {
    jit = getenv("JITCALL_CAPI_TEST_JIT");
    if (jit == NULL) {
        fprintf(stderr, "JITCALL_CAPI_TEST_JIT is not set: run me from capi/tests/c_api.rs\n");
        return 2;
    }
    every_tier();
    other_types();
    sorting();
    refused();
    return finish("callback");
}
