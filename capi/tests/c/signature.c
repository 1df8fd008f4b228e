/* Signatures, errors, status names and strings: parsing both forms,
 * malformed input with its position, text that is not UTF-8, NULL
 * pointers and handles of the wrong kind. */
#include "check.h"

/* Parses `text`, which must fail with `want`; returns the error. */
static jitcall_error *parse_error(const char *text, jitcall_status want) {
    jitcall_signature *sig = NULL;
    jitcall_error *error = NULL;
    CHECK_ERROR(jitcall_signature_parse(text, &sig, &error), want, error);
    CHECK(sig == NULL);
    return error;
}

static void shows_as(const jitcall_signature *sig, const char *want) {
    char *text = NULL;
    CHECK_STATUS(jitcall_signature_to_string(sig, &text), JITCALL_OK);
    CHECK(text != NULL && strcmp(text, want) == 0);
    if (text != NULL && strcmp(text, want) != 0) {
        fprintf(stderr, "  shown as \"%s\", expected \"%s\"\n", text, want);
    }
    jitcall_string_free(text);
}

static void sizes(const char *text, size_t args, size_t ret) {
    jitcall_signature *sig = parse(text);
    size_t got_args = 99, got_ret = 99;
    CHECK_STATUS(jitcall_signature_arg_count(sig, &got_args), JITCALL_OK);
    CHECK_STATUS(jitcall_signature_return_size(sig, &got_ret), JITCALL_OK);
    CHECK(got_args == args);
    CHECK(got_ret == ret);
    CHECK_STATUS(jitcall_signature_free(sig), JITCALL_OK);
}

static void both_forms(void) {
    jitcall_signature *sig = NULL;
    jitcall_error *error = NULL;
    CHECK_ERROR(jitcall_signature_parse("(i32, f64, pointer) -> u8", &sig, &error),
                JITCALL_OK, error);
    shows_as(sig, "(i32, f64, pointer) -> u8");
    CHECK_STATUS(jitcall_signature_free(sig), JITCALL_OK);

    sig = NULL;
    CHECK_ERROR(jitcall_signature_parse(
                    "{\"arguments\": [\"int32\", \"double\"], \"return\": \"uint8\"}",
                    &sig, &error),
                JITCALL_OK, error);
    shows_as(sig, "(i32, f64) -> u8");
    CHECK_STATUS(jitcall_signature_free(sig), JITCALL_OK);

    /* The error parameter may be NULL. */
    sig = NULL;
    CHECK_STATUS(jitcall_signature_parse("() -> void", &sig, NULL), JITCALL_OK);
    CHECK(sig != NULL);
    CHECK_STATUS(jitcall_signature_free(sig), JITCALL_OK);

    sizes("() -> void", 0, 0);
    sizes("(i32, f64, pointer) -> u8", 3, 8);
    sizes("(i8) -> {u8}", 1, 8);
    sizes("(i32) -> {i64, i64, i64}", 1, 24);
    sizes("(pointer, ..., i32, f64) -> i32", 3, 8);
}

static void malformed(void) {
    size_t offset = 0;

    /* The text form: a byte offset, no JSON path. */
    jitcall_error *error = parse_error("(i32, i33) -> u8", JITCALL_E_PARSE);
    CHECK(jitcall_error_byte_offset(error, &offset));
    CHECK(offset == 6);
    CHECK(jitcall_error_json_path(error) == NULL);
    CHECK_CONTAINS(jitcall_error_message(error), "unknown type `i33` at byte 6");
    /* No room for the offset: false, and nothing written. */
    CHECK(!jitcall_error_byte_offset(error, NULL));
    DROP_ERROR(error);

    error = parse_error("(i32) u8", JITCALL_E_PARSE);
    CHECK(jitcall_error_byte_offset(error, &offset));
    CHECK(offset == 6);
    CHECK_CONTAINS(jitcall_error_message(error), "expected `->`");
    DROP_ERROR(error);

    /* JSON of the wrong shape: a JSON path, no byte offset. */
    error = parse_error("{\"arguments\": [\"int32\", 5]}", JITCALL_E_PARSE);
    offset = 12345;
    CHECK(!jitcall_error_byte_offset(error, &offset));
    CHECK(offset == 12345);
    CHECK(jitcall_error_json_path(error) != NULL &&
          strcmp(jitcall_error_json_path(error), "$.arguments[1]") == 0);
    CHECK_CONTAINS(jitcall_error_message(error), "at $.arguments[1]");
    DROP_ERROR(error);

    error = parse_error("{\"argumnets\": []}", JITCALL_E_PARSE);
    CHECK_CONTAINS(jitcall_error_message(error), "unknown key `argumnets`");
    CHECK(jitcall_error_json_path(error) != NULL);
    DROP_ERROR(error);

    /* Malformed JSON: the byte offset, here the end of the input. */
    error = parse_error("{\"arguments\": [\"int32\"", JITCALL_E_PARSE);
    CHECK(jitcall_error_byte_offset(error, &offset));
    CHECK(offset == strlen("{\"arguments\": [\"int32\""));
    CHECK_CONTAINS(jitcall_error_message(error), "malformed JSON");
    DROP_ERROR(error);

    /* Not UTF-8: the offset of the first bad byte. */
    error = parse_error("(i32)\xff -> u8", JITCALL_E_INVALID_UTF8);
    CHECK(jitcall_error_byte_offset(error, &offset));
    CHECK(offset == 5);
    CHECK_CONTAINS(jitcall_error_message(error), "`text` is not UTF-8 at byte 5");
    DROP_ERROR(error);

    /* An empty string and a megabyte of type name: errors of one line. */
    error = parse_error("", JITCALL_E_PARSE);
    DROP_ERROR(error);
    {
        size_t n = 1 << 20;
        char *long_name = malloc(n + 16);
        CHECK(long_name != NULL);
        if (long_name != NULL) {
            strcpy(long_name, "(");
            memset(long_name + 1, 'x', n);
            strcpy(long_name + 1 + n, ") -> i32");
            error = parse_error(long_name, JITCALL_E_PARSE);
            CHECK(strlen(jitcall_error_message(error)) < 200);
            CHECK(strchr(jitcall_error_message(error), '\n') == NULL);
            CHECK_CONTAINS(jitcall_error_message(error), "more bytes");
            DROP_ERROR(error);
            free(long_name);
        }
    }
}

static void null_and_wrong_handles(void) {
    jitcall_signature *sig = NULL;
    jitcall_error *error = NULL;
    size_t n = 0;
    char *text = NULL;

    CHECK_ERROR(jitcall_signature_parse(NULL, &sig, &error), JITCALL_E_NULL_POINTER, error);
    CHECK_CONTAINS(jitcall_error_message(error), "`text` is NULL");
    CHECK(!jitcall_error_byte_offset(error, &n));
    DROP_ERROR(error);
    CHECK_ERROR(jitcall_signature_parse("() -> void", NULL, &error), JITCALL_E_NULL_POINTER,
                error);
    CHECK_CONTAINS(jitcall_error_message(error), "`signature` is NULL");
    DROP_ERROR(error);

    CHECK_STATUS(jitcall_signature_to_string(NULL, &text), JITCALL_E_NULL_POINTER);
    CHECK(text == NULL);
    CHECK_STATUS(jitcall_signature_arg_count(NULL, &n), JITCALL_E_NULL_POINTER);
    CHECK_STATUS(jitcall_signature_return_size(NULL, &n), JITCALL_E_NULL_POINTER);
    sig = parse("(i32) -> i32");
    CHECK_STATUS(jitcall_signature_to_string(sig, NULL), JITCALL_E_NULL_POINTER);
    CHECK_STATUS(jitcall_signature_arg_count(sig, NULL), JITCALL_E_NULL_POINTER);
    CHECK_STATUS(jitcall_signature_return_size(sig, NULL), JITCALL_E_NULL_POINTER);

    /* Another kind of handle where a signature goes, and the other way. */
    {
        jitcall_options *options = NULL;
        CHECK_STATUS(jitcall_options_new(&options), JITCALL_OK);
        CHECK_STATUS(jitcall_signature_arg_count((const jitcall_signature *)options, &n),
                     JITCALL_E_INVALID_HANDLE);
        CHECK_STATUS(jitcall_signature_free((jitcall_signature *)options),
                     JITCALL_E_INVALID_HANDLE);
        CHECK_STATUS(jitcall_options_set_specialise((jitcall_options *)sig, true),
                     JITCALL_E_INVALID_HANDLE);
        /* Both still live and usable. */
        CHECK_STATUS(jitcall_options_set_specialise(options, true), JITCALL_OK);
        CHECK_STATUS(jitcall_options_free(options), JITCALL_OK);
    }
    CHECK_STATUS(jitcall_signature_arg_count(sig, &n), JITCALL_OK);
    CHECK(n == 1);
    CHECK_STATUS(jitcall_signature_free(sig), JITCALL_OK);
    CHECK_STATUS(jitcall_signature_free(NULL), JITCALL_OK);
}

static void error_accessors(void) {
    jitcall_error *error = parse_error("(i33) -> i32", JITCALL_E_PARSE);
    size_t n = 0;
    jitcall_signature *sig = parse("() -> void");

    CHECK(jitcall_error_status(error) == JITCALL_E_PARSE);
    /* NULL and other kinds of handle: values that say so, never a crash. */
    CHECK(jitcall_error_status(NULL) == JITCALL_E_NULL_POINTER);
    CHECK_CONTAINS(jitcall_error_message(NULL), "NULL");
    CHECK(!jitcall_error_byte_offset(NULL, &n));
    CHECK(jitcall_error_json_path(NULL) == NULL);
    CHECK(jitcall_error_status((const jitcall_error *)sig) == JITCALL_E_INVALID_HANDLE);
    CHECK_CONTAINS(jitcall_error_message((const jitcall_error *)sig), "not a jitcall_error");
    CHECK(!jitcall_error_byte_offset((const jitcall_error *)sig, &n));
    CHECK(jitcall_error_json_path((const jitcall_error *)sig) == NULL);
    CHECK_STATUS(jitcall_error_free((jitcall_error *)sig), JITCALL_E_INVALID_HANDLE);
    CHECK_STATUS(jitcall_error_free(NULL), JITCALL_OK);

    /* An error passed as a signature names what it is. */
    {
        char *text = NULL;
        jitcall_error *wrong = NULL;
        CHECK_STATUS(jitcall_signature_to_string((const jitcall_signature *)error, &text),
                     JITCALL_E_INVALID_HANDLE);
        CHECK(text == NULL);
        CHECK_ERROR(jitcall_function_bind_address(NULL, (const void *)&error_accessors,
                                                  (const jitcall_signature *)error, NULL,
                                                  &(jitcall_function *){NULL}, &wrong),
                    JITCALL_E_INVALID_HANDLE, wrong);
        CHECK_CONTAINS(jitcall_error_message(wrong),
                       "`signature` is a jitcall_error, not a jitcall_signature");
        DROP_ERROR(wrong);
    }
    DROP_ERROR(error);
    CHECK_STATUS(jitcall_signature_free(sig), JITCALL_OK);
}

static void status_names(void) {
    static const struct {
        jitcall_status status;
        const char *name;
    } names[] = {
        {JITCALL_OK, "JITCALL_OK"},
        {JITCALL_E_NULL_POINTER, "JITCALL_E_NULL_POINTER"},
        {JITCALL_E_INVALID_HANDLE, "JITCALL_E_INVALID_HANDLE"},
        {JITCALL_E_INVALID_ARGUMENT, "JITCALL_E_INVALID_ARGUMENT"},
        {JITCALL_E_INVALID_UTF8, "JITCALL_E_INVALID_UTF8"},
        {JITCALL_E_PARSE, "JITCALL_E_PARSE"},
        {JITCALL_E_OPEN, "JITCALL_E_OPEN"},
        {JITCALL_E_SYMBOL, "JITCALL_E_SYMBOL"},
        {JITCALL_E_LIBRARY_CLOSED, "JITCALL_E_LIBRARY_CLOSED"},
        {JITCALL_E_UNSUPPORTED_SIGNATURE, "JITCALL_E_UNSUPPORTED_SIGNATURE"},
        {JITCALL_E_ABI, "JITCALL_E_ABI"},
        {JITCALL_E_LIBFFI, "JITCALL_E_LIBFFI"},
        {JITCALL_E_OTHER, "JITCALL_E_OTHER"},
        {JITCALL_E_INTERNAL, "JITCALL_E_INTERNAL"},
    };
    size_t i;
    for (i = 0; i < sizeof names / sizeof names[0]; i++) {
        CHECK(strcmp(jitcall_status_string(names[i].status), names[i].name) == 0);
        /* Explicit, consecutive values: never renumbered. */
        CHECK(names[i].status == (jitcall_status)i);
    }
    CHECK(strcmp(jitcall_status_string(-1), "unknown jitcall_status") == 0);
    CHECK(strcmp(jitcall_status_string(1000), "unknown jitcall_status") == 0);
    jitcall_string_free(NULL);
}

int main(void) {
    both_forms();
    malformed();
    null_and_wrong_handles();
    error_accessors();
    status_names();
    return finish("signature");
}
