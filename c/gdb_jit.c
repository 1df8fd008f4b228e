/* GDB's JIT interface (GDB manual, "JIT Compilation Interface"): the
 * descriptor gdb reads and the function it sets a breakpoint in. Weak, so
 * that a process with another JIT that defines them (a second copy of
 * jitcall, an engine) links, and all share the one list gdb reads. */
#include <stdint.h>

struct jit_code_entry {
    struct jit_code_entry *next_entry;
    struct jit_code_entry *prev_entry;
    const char *symfile_addr;
    uint64_t symfile_size;
};

struct jit_descriptor {
    uint32_t version;
    /* 0: no action, 1: register relevant_entry, 2: unregister it. */
    uint32_t action_flag;
    struct jit_code_entry *relevant_entry;
    struct jit_code_entry *first_entry;
};

__attribute__((weak, noinline, used)) void __jit_debug_register_code(void) {
    /* gdb's breakpoint lands here; the asm keeps the call. */
    __asm__ volatile("" ::: "memory");
}

__attribute__((weak, used)) struct jit_descriptor __jit_debug_descriptor = {1, 0, 0, 0};
