/* The checks of the C tests: each failed check prints where and what, and
 * the program's exit status says whether any failed. capi/tests/c_api.rs
 * compiles and runs each program. */
#ifndef JITCALL_CHECK_H
#define JITCALL_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jitcall.h"

static int checks_passed;
static int checks_failed;

#define CHECK(cond)                                                        \
    do {                                                                   \
        if (cond) {                                                        \
            checks_passed++;                                               \
        } else {                                                           \
            checks_failed++;                                               \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__,         \
                    __LINE__, #cond);                                      \
        }                                                                  \
    } while (0)

/* `expr` returns the status `want`. */
#define CHECK_STATUS(expr, want)                                           \
    do {                                                                   \
        jitcall_status got_ = (expr);                                      \
        if (got_ == (want)) {                                              \
            checks_passed++;                                               \
        } else {                                                           \
            checks_failed++;                                               \
            fprintf(stderr, "%s:%d: %s returned %s, expected %s\n",        \
                    __FILE__, __LINE__, #expr,                             \
                    jitcall_status_string(got_),                           \
                    jitcall_status_string(want));                          \
        }                                                                  \
    } while (0)

/* `expr`, which takes `jitcall_error **` last as `&error`, returns `want`;
 * on failure `error` holds the details, else it is still NULL. */
#define CHECK_ERROR(expr, want, error)                                     \
    do {                                                                   \
        jitcall_status got_ = (expr);                                      \
        if (got_ == (want) &&                                              \
            ((want) == JITCALL_OK) == ((error) == NULL) &&                 \
            ((error) == NULL || jitcall_error_status(error) == got_)) {    \
            checks_passed++;                                               \
        } else {                                                           \
            checks_failed++;                                               \
            fprintf(stderr, "%s:%d: %s returned %s, expected %s (%s)\n",   \
                    __FILE__, __LINE__, #expr,                             \
                    jitcall_status_string(got_),                           \
                    jitcall_status_string(want),                           \
                    (error) ? jitcall_error_message(error) : "no error");  \
        }                                                                  \
    } while (0)

/* `haystack` contains `needle`; a failure shows the first 300 bytes. */
#define CHECK_CONTAINS(haystack, needle)                                   \
    do {                                                                   \
        const char *h_ = (haystack);                                       \
        if (h_ != NULL && strstr(h_, (needle)) != NULL) {                  \
            checks_passed++;                                               \
        } else {                                                           \
            checks_failed++;                                               \
            fprintf(stderr, "%s:%d: \"%.300s\" does not contain \"%s\"\n", \
                    __FILE__, __LINE__, h_ ? h_ : "(null)", (needle));     \
        }                                                                  \
    } while (0)

/* Frees the error a failed check left, and forgets it. */
#define DROP_ERROR(error)                                                  \
    do {                                                                   \
        CHECK_STATUS(jitcall_error_free(error), JITCALL_OK);               \
        (error) = NULL;                                                    \
    } while (0)

/* A signature every test needs to parse. */
static jitcall_signature *parse(const char *text) {
    jitcall_signature *sig = NULL;
    jitcall_error *error = NULL;
    if (jitcall_signature_parse(text, &sig, &error) != JITCALL_OK) {
        fprintf(stderr, "cannot parse %s: %s\n", text,
                jitcall_error_message(error));
        exit(2);
    }
    return sig;
}

/* Prints the counts, as the Rust side reads them, and the exit status. */
static int finish(const char *program) {
    printf("%s: %d passed, %d failed\n", program, checks_passed,
           checks_failed);
    return checks_failed == 0 && checks_passed > 0 ? 0 : 1;
}

#endif
