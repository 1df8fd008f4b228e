/* Calls libm's cos and libc's qsort through jitcall from C, with the
 * comparator a jitcall callback, and prints the tier each runs on.
 *
 * Build and run, after `cargo build --release -p jitcall-capi`:
 *
 *   cc examples/c/libm_qsort.c -I capi/include -L target/release -ljitcall \
 *       -Wl,-rpath,"$PWD/target/release" -o libm_qsort && ./libm_qsort
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jitcall.h"

/* Prints what went wrong and ends the program. */
static void fail(const char *what, jitcall_status status, jitcall_error *error) {
    fprintf(stderr, "%s: %s: %s\n", what, jitcall_status_string(status),
            error ? jitcall_error_message(error) : "");
    jitcall_error_free(error);
    exit(1);
}

#define TRY(what, call)                                                    \
    do {                                                                   \
        jitcall_status status_ = (call);                                   \
        if (status_ != JITCALL_OK) fail(what, status_, error);             \
    } while (0)

/* The comparator's handler: two pointers to ints in, -1, 0 or 1 out. */
static void compare_ints(void *data, const uint64_t *args, uint64_t *ret) {
    int a = *(const int *)(uintptr_t)args[0], b = *(const int *)(uintptr_t)args[1];
    ++*(int *)data;
    *ret = (uint64_t)(int64_t)((a > b) - (a < b));
}

static const char *tier_of(const jitcall_function *f) {
    jitcall_tier tier;
    const char *description = "?";
    jitcall_function_tier(f, &tier, NULL, &description);
    return description;
}

int main(void) {
    jitcall_error *error = NULL;
    jitcall_options *options = NULL;
    jitcall_library *libm = NULL, *libc = NULL;
    jitcall_signature *cos_sig = NULL, *qsort_sig = NULL, *compare_sig = NULL;
    jitcall_function *cos_fn = NULL, *qsort_fn = NULL;
    jitcall_callback *compare = NULL;
    const char *callback_tier = "?";
    jitcall_tier tier;
    const void *compare_code = NULL;
    int numbers[] = {42, -7, 19, 0, 1000, -300, 5};
    int compares = 0;
    size_t n = sizeof numbers / sizeof numbers[0], i;

    /* A trampoline of its own for each function: the JIT tier. */
    TRY("options", jitcall_options_new(&options));
    TRY("options", jitcall_options_set_specialise(options, true));

    TRY("libm", jitcall_library_open("libm.so.6", &libm, &error));
    TRY("libc", jitcall_library_open(NULL, &libc, &error));
    TRY("cos signature", jitcall_signature_parse("(f64) -> f64", &cos_sig, &error));
    TRY("qsort signature",
        jitcall_signature_parse("(pointer, u64, u64, function) -> void", &qsort_sig, &error));
    TRY("comparator signature",
        jitcall_signature_parse("(pointer, pointer) -> i32", &compare_sig, &error));
    TRY("cos", jitcall_function_bind(libm, "cos", cos_sig, options, &cos_fn, &error));
    TRY("qsort", jitcall_function_bind(libc, "qsort", qsort_sig, options, &qsort_fn, &error));
    TRY("comparator",
        jitcall_callback_new(compare_sig, compare_ints, &compares, NULL, &compare, &error));

    /* cos(0) and cos(pi): one 64-bit slot per argument, a double's bits. */
    for (i = 0; i < 2; i++) {
        double x = i == 0 ? 0.0 : 3.141592653589793, y;
        uint64_t args[1], ret;
        memcpy(&args[0], &x, sizeof x);
        TRY("cos call", jitcall_call_packed(cos_fn, args, &ret));
        memcpy(&y, &ret, sizeof y);
        printf("cos(%g) = %g\n", x, y);
    }
    printf("cos: %s\n", tier_of(cos_fn));

    /* qsort with the callback's code as the comparator. */
    TRY("comparator code", jitcall_callback_code(compare, &compare_code));
    {
        uint64_t args[4] = {(uint64_t)(uintptr_t)numbers, n, sizeof numbers[0],
                            (uint64_t)(uintptr_t)compare_code};
        TRY("qsort call", jitcall_call_packed(qsort_fn, args, NULL));
    }
    printf("sorted:");
    for (i = 0; i < n; i++) {
        printf(" %d", numbers[i]);
    }
    printf(" (%d comparisons)\n", compares);
    printf("qsort: %s\n", tier_of(qsort_fn));
    TRY("comparator tier", jitcall_callback_tier(compare, &tier, NULL, &callback_tier));
    printf("comparator: %s\n", callback_tier);

    jitcall_callback_free(compare);
    jitcall_function_free(qsort_fn);
    jitcall_function_free(cos_fn);
    jitcall_signature_free(compare_sig);
    jitcall_signature_free(qsort_sig);
    jitcall_signature_free(cos_sig);
    jitcall_library_free(libc);
    jitcall_library_free(libm);
    jitcall_options_free(options);
    return 0;
}
