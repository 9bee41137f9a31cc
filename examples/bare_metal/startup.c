/* Minimal Cortex-M start-up for the bare-metal policy example: a vector table, a reset handler that
 * copies .data, clears .bss, turns the FPU on where the build uses one, and calls main; and the
 * ARM semihosting calls main uses to read observations and write actions through the debugger
 * (or QEMU). On a real board, replace semihosting with your UART driver. */
#include <stdint.h>

#include "semihosting.h"

extern uint32_t _data_load, _data_start, _data_end, _bss_start, _bss_end, _stack_top;
int main(void);
void reset_handler(void);

static void fault_handler(void)
{
    for (;;) {
    }
}

/* The first vector is the initial stack pointer, the others are handlers: a union keeps ISO C happy. */
typedef union {
    uint32_t *stack;
    void (*handler)(void);
} vector_t;

__attribute__((section(".vectors"), used)) static const vector_t vectors[16] = {
    {.stack = &_stack_top}, {.handler = reset_handler}, {.handler = fault_handler}, {.handler = fault_handler},
    {.handler = fault_handler}, {.handler = fault_handler}, {.handler = fault_handler}};

int semihost(int op, const void *arg)
{
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void reset_handler(void)
{
    uint32_t *src = &_data_load, *dst = &_data_start;
    while (dst < &_data_end) {
        *dst++ = *src++;
    }
    for (dst = &_bss_start; dst < &_bss_end; ++dst) {
        *dst = 0;
    }
#if defined(__ARM_FP)
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20; /* CPACR: CP10/CP11, the FPU */
    __asm__ volatile("dsb\n\tisb");
#endif
    semihost(SYS_EXIT, (const void *)(main() == 0 ? 0x20026 : 0x20024)); /* ApplicationExit / RunTimeError */
    for (;;) {
    }
}
