/* jitcall_explain: what `jitcall explain` prints, as a string the caller
 * frees; malformed signatures with their position, and bad flags. */
#include "check.h"

int main(void) {
    char *text = NULL;
    jitcall_error *error = NULL;
    size_t offset = 0;

    CHECK_ERROR(jitcall_explain("(i32, f64) -> u8", 0, &text, &error), JITCALL_OK, error);
    CHECK_CONTAINS(text, "signature: (i32, f64) -> u8\n");
    CHECK_CONTAINS(text, "tiers in this process");
    CHECK_CONTAINS(text, "x86_64 System V, packed entry: eligible");
    CHECK_CONTAINS(text, "AArch64 AAPCS64, receiver entry: eligible");
    CHECK(strstr(text, "bound from a Library") == NULL);
    jitcall_string_free(text);
    text = NULL;

    /* The JSON form, and a function bound from a library. */
    CHECK_ERROR(jitcall_explain("{\"arguments\": [\"double\"], \"return\": \"double\"}",
                                JITCALL_EXPLAIN_LIBRARY, &text, &error),
                JITCALL_OK, error);
    CHECK_CONTAINS(text, "signature: (f64) -> f64\n");
    CHECK_CONTAINS(text, "bound from a Library: each trampoline first tests the library's "
                         "closed byte");
    jitcall_string_free(text);
    text = NULL;

    /* Malformed: the position, as jitcall_signature_parse gives it. */
    CHECK_ERROR(jitcall_explain("(i32, f64) -> u9", 0, &text, &error), JITCALL_E_PARSE, error);
    CHECK(jitcall_error_byte_offset(error, &offset));
    CHECK(offset == 14);
    CHECK_CONTAINS(jitcall_error_message(error), "unknown type `u9` at byte 14");
    DROP_ERROR(error);
    CHECK_ERROR(jitcall_explain("{\"return\": 7}", 0, &text, &error), JITCALL_E_PARSE, error);
    CHECK(jitcall_error_json_path(error) != NULL &&
          strcmp(jitcall_error_json_path(error), "$.return") == 0);
    DROP_ERROR(error);
    CHECK_ERROR(jitcall_explain("(i32) -> \xe2\x82", 0, &text, &error), JITCALL_E_INVALID_UTF8,
                error);
    CHECK(jitcall_error_byte_offset(error, &offset));
    CHECK(offset == 9);
    DROP_ERROR(error);

    /* Bad flags and NULL pointers. */
    CHECK_ERROR(jitcall_explain("(i32) -> i32", 2, &text, &error), JITCALL_E_INVALID_ARGUMENT,
                error);
    CHECK_CONTAINS(jitcall_error_message(error), "`flags`");
    DROP_ERROR(error);
    CHECK_ERROR(jitcall_explain("(i32) -> i32", JITCALL_EXPLAIN_LIBRARY | 0x80000000u, &text,
                                &error),
                JITCALL_E_INVALID_ARGUMENT, error);
    DROP_ERROR(error);
    CHECK_ERROR(jitcall_explain(NULL, 0, &text, &error), JITCALL_E_NULL_POINTER, error);
    DROP_ERROR(error);
    CHECK_ERROR(jitcall_explain("(i32) -> i32", 0, NULL, &error), JITCALL_E_NULL_POINTER,
                error);
    DROP_ERROR(error);
    CHECK_STATUS(jitcall_explain("(i32) -> i32", 0, NULL, NULL), JITCALL_E_NULL_POINTER);
    CHECK(text == NULL);
    return finish("explain");
}
