"""Runs the generated C policy on an emulated Cortex-M4 (QEMU's MPS2 AN386 board).

A bare-metal image: a vector table, a reset handler that turns the FPU on and
calls main, the policy, and a driver that prints every output's bits through
ARM semihosting (SYS_WRITE0) and ends with SYS_EXIT. No C library I/O.
"""
import re

import numpy as np

from tflite_export.qemu_bench import ARM_GCC, QEMU, available, c_rows, run_image  # noqa: F401 - ARM_GCC, QEMU, available: the tests' skip conditions

M4F = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16", "-Os"]

STARTUP = r"""
#include <stdint.h>

extern uint32_t _data_load, _data_start, _data_end, _bss_start, _bss_end, _stack_top;
int main(void);
void reset_handler(void);
static void fault_handler(void) { for (;;) { } }

__attribute__((section(".vectors"), used)) static const void *const vectors[16] = {
    &_stack_top, (const void *)reset_handler, (const void *)fault_handler, (const void *)fault_handler,
    (const void *)fault_handler, (const void *)fault_handler, (const void *)fault_handler};

static int semihost(int op, const void *arg)
{
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void write_text(const char *s) { semihost(0x04, s); }

void reset_handler(void)
{
    uint32_t *src = &_data_load, *dst = &_data_start;
    volatile uint32_t *cpacr = (volatile uint32_t *)0xE000ED88u;
    while (dst < &_data_end) { *dst++ = *src++; }
    for (dst = &_bss_start; dst < &_bss_end; ++dst) { *dst = 0; }
    *cpacr |= 0xFu << 20; /* CP10/CP11: the FPU */
    __asm__ volatile("dsb\n\tisb");
    main();
    semihost(0x18, (const void *)0x20026); /* SYS_EXIT, ADP_Stopped_ApplicationExit */
    for (;;) { }
}
"""

DRIVER = r"""
#include <stdint.h>
#include <string.h>
#include "{ident}.h"

void write_text(const char *s);

static const float observations[{n}][{upper}_OBSERVATION_SIZE] = {{{rows}}};

static char *hex(char *p, uint32_t v, int digits)
{{
    int i;
    for (i = digits - 1; i >= 0; --i) {{ *p++ = "0123456789abcdef"[(v >> (4 * i)) & 0xFu]; }}
    *p++ = ' ';
    return p;
}}

int main(void)
{{
    char line[16 * {upper}_OUTPUT_SIZE + 8];
    int k, i;
    for (k = 0; k < {n}; ++k) {{
        int8_t raw[{upper}_OUTPUT_SIZE];
        float out[{upper}_OUTPUT_SIZE];
        char *p = line;
        uint32_t bits;
        {ident}_int8_raw(observations[k], raw);
        for (i = 0; i < {upper}_OUTPUT_SIZE; ++i) {{ p = hex(p, (uint8_t)raw[i], 2); }}
        {ident}_float(observations[k], out);
        for (i = 0; i < {upper}_OUTPUT_SIZE; ++i) {{ memcpy(&bits, &out[i], 4); p = hex(p, bits, 8); }}
        *p++ = '\n';
        *p = 0;
        write_text(line);
    }}
    return 0;
}}
"""


def run(files, ident, observations, directory, timeout=60):
    """(int8 raw outputs, float32 outputs) the emulated Cortex-M4 computes for ``observations``."""
    observations = np.asarray(observations, np.float32)
    driver = DRIVER.format(ident=ident, upper=ident.upper(), n=len(observations), rows=c_rows(observations, False))
    printed = run_image(directory, {"startup.c": STARTUP, "driver.c": driver, **files}, M4F, timeout=timeout)
    lines = [l.split() for l in printed.splitlines() if re.fullmatch(r"[0-9a-f ]+", l.strip() or "x")]
    out_dim = (len(lines[0]) // 2) if lines else 0
    raw = np.array([[int(t, 16) for t in l[:out_dim]] for l in lines], np.uint8).view(np.int8)
    floats = np.array([[int(t, 16) for t in l[out_dim:]] for l in lines], np.uint32).view(np.float32)
    return raw, floats
