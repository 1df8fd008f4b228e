/* Libraries: opening by name and the process, a library that does not
 * exist, symbols, and closing: bindings and lookups refused, and calls
 * of functions bound before, through jitcall_call_packed and the raw
 * entries on every tier, returning zero through the closed-call handler
 * without reaching the library. */
#include <math.h>
#include <stdint.h>

#include "check.h"

static const char *jit;

static int jit_available(void) { return strcmp(jit, "available") == 0; }

/* What the closed-call handler saw. */
static int closed_calls;
static const void *closed_function;
static int closed_data;

static void on_closed(void *data, const void *function) {
    CHECK(data == &closed_data);
    closed_calls++;
    closed_function = function;
}

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

static void opening(void) {
    jitcall_library *lib = (jitcall_library *)&closed_data;
    jitcall_error *error = NULL;
    size_t offset = 0;

    CHECK_ERROR(jitcall_library_open("libjitcall-capi-no-such-library.so", &lib, &error),
                JITCALL_E_OPEN, error);
    /* Nothing written on failure. */
    CHECK(lib == (jitcall_library *)&closed_data);
    CHECK_CONTAINS(jitcall_error_message(error),
                   "cannot open `libjitcall-capi-no-such-library.so`");
    DROP_ERROR(error);
    CHECK_ERROR(jitcall_library_open("/nonexistent/dir/libm.so.6", &lib, &error),
                JITCALL_E_OPEN, error);
    DROP_ERROR(error);
    CHECK_ERROR(jitcall_library_open("lib\xc3(.so", &lib, &error), JITCALL_E_INVALID_UTF8,
                error);
    CHECK(jitcall_error_byte_offset(error, &offset));
    CHECK(offset == 3);
    DROP_ERROR(error);
    CHECK_ERROR(jitcall_library_open("libm.so.6", NULL, &error), JITCALL_E_NULL_POINTER,
                error);
    DROP_ERROR(error);
    /* Failing with no error parameter: the status alone. */
    CHECK_STATUS(jitcall_library_open("libjitcall-capi-no-such-library.so", &lib, NULL),
                 JITCALL_E_OPEN);

    /* The process, and libm by name: the same cos. */
    {
        jitcall_library *process = NULL, *libm = NULL;
        const void *from_process = NULL, *from_libm = NULL;
        CHECK_ERROR(jitcall_library_open(NULL, &process, &error), JITCALL_OK, error);
        CHECK_ERROR(jitcall_library_open("libm.so.6", &libm, &error), JITCALL_OK, error);
        CHECK_ERROR(jitcall_library_symbol(process, "cos", &from_process, &error), JITCALL_OK,
                    error);
        CHECK_ERROR(jitcall_library_symbol(libm, "cos", &from_libm, &error), JITCALL_OK, error);
        CHECK(from_libm == (const void *)&cos);
        CHECK(from_process == from_libm);
        CHECK_STATUS(jitcall_library_free(process), JITCALL_OK);
        CHECK_STATUS(jitcall_library_free(libm), JITCALL_OK);
    }
}

static void symbols(void) {
    jitcall_library *libm = NULL;
    jitcall_error *error = NULL;
    const void *address = &closed_data;
    bool closed = true;

    CHECK_ERROR(jitcall_library_open("libm.so.6", &libm, &error), JITCALL_OK, error);
    CHECK_ERROR(jitcall_library_symbol(libm, "no_such_symbol_here", &address, &error),
                JITCALL_E_SYMBOL, error);
    CHECK(address == &closed_data);
    CHECK_CONTAINS(jitcall_error_message(error), "no symbol `no_such_symbol_here`");
    DROP_ERROR(error);
    CHECK_ERROR(jitcall_library_symbol(NULL, "cos", &address, &error), JITCALL_E_NULL_POINTER,
                error);
    DROP_ERROR(error);
    CHECK_ERROR(jitcall_library_symbol(libm, NULL, &address, &error), JITCALL_E_NULL_POINTER,
                error);
    DROP_ERROR(error);
    CHECK_ERROR(jitcall_library_symbol(libm, "cos", NULL, &error), JITCALL_E_NULL_POINTER,
                error);
    DROP_ERROR(error);

    CHECK_STATUS(jitcall_library_is_closed(libm, &closed), JITCALL_OK);
    CHECK(!closed);
    CHECK_STATUS(jitcall_library_is_closed(libm, NULL), JITCALL_E_NULL_POINTER);
    CHECK_STATUS(jitcall_library_is_closed(NULL, &closed), JITCALL_E_NULL_POINTER);
    CHECK_STATUS(jitcall_library_close(NULL), JITCALL_E_NULL_POINTER);
    CHECK_STATUS(jitcall_library_on_closed_call(NULL, on_closed, NULL), JITCALL_E_NULL_POINTER);
    CHECK_STATUS(jitcall_library_free(NULL), JITCALL_OK);

    /* Memory that is no handle at all. */
    {
        uint64_t junk[4] = {0, 0, 0, 0};
        const jitcall_library *wrong = (const jitcall_library *)junk;
        CHECK_STATUS(jitcall_library_is_closed(wrong, &closed), JITCALL_E_INVALID_HANDLE);
        CHECK_ERROR(jitcall_library_symbol(wrong, "cos", &address, &error),
                    JITCALL_E_INVALID_HANDLE, error);
        CHECK_CONTAINS(jitcall_error_message(error),
                       "`library` is not a jitcall_library (nor any handle of this API)");
        DROP_ERROR(error);
    }
    /* Another kind of handle. */
    {
        jitcall_signature *sig = parse("() -> void");
        const jitcall_library *wrong = (const jitcall_library *)sig;
        CHECK_ERROR(jitcall_library_symbol(wrong, "cos", &address, &error),
                    JITCALL_E_INVALID_HANDLE, error);
        DROP_ERROR(error);
        CHECK_STATUS(jitcall_library_is_closed(wrong, &closed), JITCALL_E_INVALID_HANDLE);
        CHECK_STATUS(jitcall_library_close(wrong), JITCALL_E_INVALID_HANDLE);
        CHECK_STATUS(jitcall_library_on_closed_call(wrong, on_closed, NULL),
                     JITCALL_E_INVALID_HANDLE);
        CHECK_STATUS(jitcall_library_free((jitcall_library *)sig), JITCALL_E_INVALID_HANDLE);
        CHECK_STATUS(jitcall_signature_free(sig), JITCALL_OK);
    }
    CHECK_STATUS(jitcall_library_free(libm), JITCALL_OK);
}

/* The ways a function of libm is bound before its library closes. */
enum { PLAIN, SPECIALISED, RECEIVER, BAKED_RECEIVER, LIBFFI, BY_ADDRESS, WAYS };

static void closing(void) {
    jitcall_library *libm = NULL;
    jitcall_error *error = NULL;
    jitcall_signature *sig = parse("(f64) -> f64");
    jitcall_function *fns[WAYS];
    jitcall_options *options[WAYS];
    const void *cos_address = NULL;
    uint64_t args[1] = {f64_bits(0.0)}, ret = 0;
    bool closed = false;
    int i;

    CHECK_ERROR(jitcall_library_open("libm.so.6", &libm, &error), JITCALL_OK, error);
    CHECK_ERROR(jitcall_library_symbol(libm, "cos", &cos_address, &error), JITCALL_OK, error);
    for (i = 0; i < WAYS; i++) {
        CHECK_STATUS(jitcall_options_new(&options[i]), JITCALL_OK);
    }
    CHECK_STATUS(jitcall_options_set_specialise(options[SPECIALISED], true), JITCALL_OK);
    CHECK_STATUS(jitcall_options_set_receiver_entry(options[RECEIVER], true), JITCALL_OK);
    CHECK_STATUS(jitcall_options_set_receiver_entry(options[BAKED_RECEIVER], true), JITCALL_OK);
    CHECK_STATUS(jitcall_options_set_force(options[BAKED_RECEIVER], JITCALL_FORCE_AVOID_JIT),
                 JITCALL_OK);
    CHECK_STATUS(jitcall_options_set_force(options[LIBFFI], JITCALL_FORCE_LIBFFI), JITCALL_OK);
    for (i = 0; i < WAYS; i++) {
        fns[i] = NULL;
        if (i == BY_ADDRESS) {
            CHECK_ERROR(jitcall_function_bind_address(libm, cos_address, sig, options[i],
                                                      &fns[i], &error),
                        JITCALL_OK, error);
        } else {
            CHECK_ERROR(jitcall_function_bind(libm, "cos", sig, options[i], &fns[i], &error),
                        JITCALL_OK, error);
        }
        if (fns[i] == NULL) {
            fprintf(stderr, "cannot bind cos the way %d: %s\n", i, jitcall_error_message(error));
            exit(2);
        }
        CHECK_STATUS(jitcall_call_packed(fns[i], args, &ret), JITCALL_OK);
        CHECK(bits_f64(ret) == 1.0);
    }
    {
        jitcall_tier tier = 0;
        CHECK_STATUS(jitcall_function_tier(fns[LIBFFI], &tier, NULL, NULL), JITCALL_OK);
        CHECK(tier == JITCALL_TIER_LIBFFI);
        CHECK_STATUS(jitcall_function_tier(fns[BAKED_RECEIVER], &tier, NULL, NULL), JITCALL_OK);
        CHECK(tier == JITCALL_TIER_BAKED);
    }
    CHECK_STATUS(jitcall_library_on_closed_call(libm, on_closed, &closed_data), JITCALL_OK);

    CHECK_STATUS(jitcall_library_close(libm), JITCALL_OK);
    CHECK_STATUS(jitcall_library_is_closed(libm, &closed), JITCALL_OK);
    CHECK(closed);
    /* A second close does nothing. */
    CHECK_STATUS(jitcall_library_close(libm), JITCALL_OK);

    /* Binding and lookups refused. */
    {
        jitcall_function *f = NULL;
        const void *address = NULL;
        const char *names[1] = {"sin"};
        const jitcall_signature *sigs[1] = {sig};
        CHECK_ERROR(jitcall_function_bind(libm, "sin", sig, NULL, &f, &error),
                    JITCALL_E_LIBRARY_CLOSED, error);
        CHECK_CONTAINS(jitcall_error_message(error), "closed");
        DROP_ERROR(error);
        CHECK_ERROR(jitcall_function_bind_address(libm, cos_address, sig, NULL, &f, &error),
                    JITCALL_E_LIBRARY_CLOSED, error);
        DROP_ERROR(error);
        CHECK_ERROR(jitcall_function_bind_batch(libm, names, sigs, 1, NULL, &f, &error),
                    JITCALL_E_LIBRARY_CLOSED, error);
        DROP_ERROR(error);
        CHECK_ERROR(jitcall_library_symbol(libm, "sin", &address, &error),
                    JITCALL_E_LIBRARY_CLOSED, error);
        DROP_ERROR(error);
        CHECK(f == NULL && address == NULL);
    }

    /* Calls return zero through the handler, whatever the tier. */
    args[0] = f64_bits(0.0);
    for (i = 0; i < WAYS; i++) {
        int before = closed_calls;
        ret = f64_bits(123.0);
        closed_function = NULL;
        CHECK_STATUS(jitcall_call_packed(fns[i], args, &ret), JITCALL_E_LIBRARY_CLOSED);
        CHECK(ret == 0);
        CHECK(closed_calls == before + 1);
        CHECK(closed_function == cos_address);
    }
    /* The raw entries too. */
    if (jit_available()) {
        jitcall_packed_fn entry = NULL;
        int before = closed_calls;
        CHECK_STATUS(jitcall_function_jit_entry(fns[SPECIALISED], &entry), JITCALL_OK);
        CHECK(entry != NULL);
        if (entry != NULL) {
            ret = f64_bits(123.0);
            entry(args, &ret);
            CHECK(ret == 0);
            CHECK(closed_calls == before + 1);
        }
    }
    {
        static const int ways[2] = {RECEIVER, BAKED_RECEIVER};
        int w;
        for (w = 0; w < 2; w++) {
            const void *entry = NULL;
            jitcall_receiver_kind kind = 0;
            int before = closed_calls;
            CHECK_STATUS(jitcall_function_receiver_entry(fns[ways[w]], &entry, &kind),
                         JITCALL_OK);
            CHECK(entry != NULL);
            CHECK(kind != JITCALL_RECEIVER_NONE && kind != JITCALL_RECEIVER_TARGET);
            if (entry != NULL) {
                double (*receiver)(const void *, double) =
                    (double (*)(const void *, double))entry;
                CHECK(receiver(NULL, 0.0) == 0.0);
                CHECK(closed_calls == before + 1);
            }
        }
    }
    /* Without a handler, still zero, and nothing called. */
    CHECK_STATUS(jitcall_library_on_closed_call(libm, NULL, NULL), JITCALL_OK);
    {
        int before = closed_calls;
        ret = 1;
        CHECK_STATUS(jitcall_call_packed(fns[PLAIN], args, &ret), JITCALL_E_LIBRARY_CLOSED);
        CHECK(ret == 0);
        CHECK(closed_calls == before);
    }
    /* The functions outlive the handle; the library is unloaded after
     * the last of them. */
    CHECK_STATUS(jitcall_library_free(libm), JITCALL_OK);
    CHECK_STATUS(jitcall_call_packed(fns[PLAIN], args, &ret), JITCALL_E_LIBRARY_CLOSED);
    for (i = 0; i < WAYS; i++) {
        CHECK_STATUS(jitcall_function_free(fns[i]), JITCALL_OK);
        CHECK_STATUS(jitcall_options_free(options[i]), JITCALL_OK);
    }
    CHECK_STATUS(jitcall_signature_free(sig), JITCALL_OK);
}

/* A function outlives its library's handle, which it keeps loaded. */
static void outliving(void) {
    jitcall_library *libm = NULL;
    jitcall_error *error = NULL;
    jitcall_signature *sig = parse("(f64, f64) -> f64");
    jitcall_function *pow_fn = NULL;
    uint64_t args[2] = {f64_bits(3.0), f64_bits(4.0)}, ret = 0;

    CHECK_ERROR(jitcall_library_open("libm.so.6", &libm, &error), JITCALL_OK, error);
    CHECK_ERROR(jitcall_function_bind(libm, "pow", sig, NULL, &pow_fn, &error), JITCALL_OK,
                error);
    CHECK_STATUS(jitcall_library_free(libm), JITCALL_OK);
    CHECK_STATUS(jitcall_signature_free(sig), JITCALL_OK);
    CHECK_STATUS(jitcall_call_packed(pow_fn, args, &ret), JITCALL_OK);
    CHECK(bits_f64(ret) == 81.0);
    CHECK_STATUS(jitcall_function_free(pow_fn), JITCALL_OK);
}

int main(void) {
    jit = getenv("JITCALL_CAPI_TEST_JIT");
    if (jit == NULL) {
        fprintf(stderr, "JITCALL_CAPI_TEST_JIT is not set: run me from capi/tests/c_api.rs\n");
        return 2;
    }
    opening();
    symbols();
    closing();
    outliving();
    return finish("library");
}
