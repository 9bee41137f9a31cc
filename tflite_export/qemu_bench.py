"""Instructions per call of the plain-C policy, counted on an emulated Cortex-M (QEMU ``-icount``).

QEMU does not model a core's pipeline, wait states or caches, so it cannot give
cycles; with ``-icount shift=0`` its virtual clock advances exactly one
nanosecond per executed instruction, and the SysTick timer (clocked from that
virtual clock) then counts instructions. The harness times a loop over the
check observations, subtracts the same loop calling an empty function, and
divides; the SysTick's instructions-per-tick is measured on a loop of known
length instead of trusted. The figures are *instructions*, which on a
Cortex-M0+/M4 are a lower bound on cycles (loads, multiplies of 64-bit
products, taken branches and flash wait states cost more).

Every build runs on QEMU's ``mps2-an386`` (Cortex-M4): a Cortex-M0+ build
(ARMv6-M, a subset of ARMv7-M) executes the same instruction stream there.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from typing import Dict, Optional, Sequence

import numpy as np

from tflite_export.writing import check_tool_run, write_file

ARM_GCC = "arm-none-eabi-gcc"
QEMU = "qemu-system-arm"

LINKER_SCRIPT = """
MEMORY {
  FLASH (rx) : ORIGIN = 0x00000000, LENGTH = 4M
  RAM (rwx)  : ORIGIN = 0x20000000, LENGTH = 4M
}
ENTRY(reset_handler)
SECTIONS {
  .text : { KEEP(*(.vectors)) *(.text*) *(.rodata*) . = ALIGN(4); } > FLASH
  .ARM.exidx : { *(.ARM.exidx*) } > FLASH
  _data_load = LOADADDR(.data);
  .data : { _data_start = .; *(.data*) . = ALIGN(4); _data_end = .; } > RAM AT > FLASH
  .bss : { _bss_start = .; *(.bss*) *(COMMON) . = ALIGN(4); _bss_end = .; } > RAM
  _stack_top = ORIGIN(RAM) + LENGTH(RAM);
}
"""

HARNESS = r"""
#include <stdint.h>
#include "{ident}.h"

extern uint32_t _data_load, _data_start, _data_end, _bss_start, _bss_end, _stack_top;
int main(void);
void reset_handler(void);
static void fault_handler(void) {{ for (;;) {{ }} }}

__attribute__((section(".vectors"), used)) static const void *const vectors[16] = {{
    &_stack_top, (const void *)reset_handler, (const void *)fault_handler, (const void *)fault_handler}};

static int semihost(int op, const void *arg)
{{
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}}

void reset_handler(void)
{{
    uint32_t *src = &_data_load, *dst = &_data_start;
    while (dst < &_data_end) {{ *dst++ = *src++; }}
    for (dst = &_bss_start; dst < &_bss_end; ++dst) {{ *dst = 0; }}
#if defined(__ARM_FP)
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20; /* CP10/CP11: the FPU */
    __asm__ volatile("dsb\n\tisb");
#endif
    main();
    semihost(0x18, (const void *)0x20026); /* SYS_EXIT, ADP_Stopped_ApplicationExit */
    for (;;) {{ }}
}}

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define REPS {reps}

static const {in_type} inputs[{n}][{upper}_OBSERVATION_SIZE] = {{{rows}}};
volatile int sink;

__attribute__((noinline)) static void nothing(const {in_type} *in, {out_type} *out)
{{
    __asm__ volatile("" : : "r"(in), "r"(out) : "memory");
}}

__attribute__((noinline)) static void policy(const {in_type} *in, {out_type} *out)
{{
    {call};
}}

static uint32_t timed(void (*fn)(const {in_type} *, {out_type} *))
{{
    {out_type} out[{upper}_OUTPUT_SIZE];
    uint32_t start, stop;
    int k;
    SYST_CVR = 0;
    start = SYST_CVR;
    for (k = 0; k < REPS; ++k) {{
        fn(inputs[k % {n}], out);
        sink += (int)out[0];
    }}
    stop = SYST_CVR;
    return (start - stop) & 0xFFFFFFu;
}}

/* A loop of exactly 2 instructions per turn (subs, bne): instructions per SysTick tick. */
static uint32_t known_loop(uint32_t turns)
{{
    uint32_t start, stop;
    SYST_CVR = 0;
    start = SYST_CVR;
    __asm__ volatile(".syntax unified\n1: subs %0, %0, #1\n\tbne 1b\n\t.syntax divided" : "+l"(turns) : : "cc");
    stop = SYST_CVR;
    return (start - stop) & 0xFFFFFFu;
}}

static char *hex(char *p, uint32_t v)
{{
    int i;
    for (i = 7; i >= 0; --i) {{ *p++ = "0123456789abcdef"[(v >> (4 * i)) & 0xFu]; }}
    *p++ = ' ';
    return p;
}}

int main(void)
{{
    char line[40];
    char *p = line;
    SYST_RVR = 0xFFFFFFu;
    SYST_CVR = 0;
    SYST_CSR = 5u; /* enabled, processor clock, no interrupt */
    p = hex(p, known_loop(200000u));
    p = hex(p, timed(nothing));
    p = hex(p, timed(policy));
    *p++ = '\n';
    *p = 0;
    semihost(0x04, line);
    return 0;
}}
"""


def available() -> bool:
    return shutil.which(ARM_GCC) is not None and shutil.which(QEMU) is not None


def c_rows(values: np.ndarray, integer: bool) -> str:
    """Rows of a C array initialiser: integers as they are, floats in hex (exact); a non-finite float as 0."""
    if integer:
        return ",\n".join("{" + ", ".join(str(int(v)) for v in row) + "}" for row in values)
    return ",\n".join("{" + ", ".join(f"{float(v).hex()}f" if np.isfinite(v) else "0.0f" for v in row) + "}"
                      for row in values)


def run_image(directory: str, sources: Dict[str, str], flags: Sequence[str], defines: Sequence[str] = (),
              icount: bool = False, timeout: float = 120) -> str:
    """Writes ``sources`` and the linker script into ``directory``, links the ``.c`` files (in the
    order given) into one bare-metal image and runs it on QEMU's mps2-an386; returns what it printed.
    One harness for every Cortex-M run, so that a board-side change is made in one place."""
    for name, body in {**sources, "link.ld": LINKER_SCRIPT}.items():
        write_file(os.path.join(directory, name), body)
    elf = os.path.join(directory, "image.elf")
    c_files = [name for name in sources if name.endswith(".c")]
    r = subprocess.run([ARM_GCC, *flags, "-std=c99", "-Wall", "-Wextra", "-Werror", *defines,
                        "-nostartfiles", "--specs=nosys.specs", "-T", "link.ld", "-o", elf, *c_files, "-lm"],
                       cwd=directory, capture_output=True, text=True)
    check_tool_run(r, elf)
    if r.returncode != 0:
        raise RuntimeError(f"the Cortex-M image did not build:\n{r.stderr[-3000:]}")
    r = subprocess.run([QEMU, "-M", "mps2-an386", *(["-icount", "shift=0"] if icount else []), "-nographic",
                        "-monitor", "none", "-serial", "none", "-semihosting-config", "enable=on,target=native",
                        "-kernel", elf], capture_output=True, text=True, timeout=timeout)
    # QEMU 7.2 sends semihosting console output to its stderr; accept either stream
    return r.stdout + r.stderr


def instructions_per_call(files: Dict[str, str], ident: str, entry: str, inputs: np.ndarray,
                          flags: Sequence[str], defines: Sequence[str] = (), reps: int = 200,
                          timeout: float = 120) -> Optional[float]:
    """Mean instructions one call of ``<ident>_<entry>`` executes over ``inputs`` (cycled ``reps``
    times), built with ``flags``; None without the ARM compiler or QEMU. ``entry`` is ``int8_q``
    (int8 inputs), ``int16_q`` (int16 inputs), ``int8``, ``int8_raw`` or ``float`` (float inputs)."""
    if not available():
        return None
    in_type, dtype = {"int8_q": ("int8_t", np.int8), "int16_q": ("int16_t", np.int16)}.get(entry, ("float", np.float32))
    integer = in_type != "float"
    out_type = "int8_t" if entry in ("int8_q", "int16_q", "int8_raw") else "float"
    call = f"(void){ident}_{entry}(in, out)"
    inputs = np.asarray(inputs, dtype)
    text = HARNESS.format(ident=ident, upper=ident.upper(), reps=reps, n=len(inputs), rows=c_rows(inputs, integer),
                          in_type=in_type, out_type=out_type, call=call)
    with tempfile.TemporaryDirectory(prefix="c_policy_icount_") as tmp:
        printed = run_image(tmp, {"harness.c": text, **files}, flags, defines, icount=True, timeout=timeout)
    found = re.search(r"([0-9a-f]{8}) ([0-9a-f]{8}) ([0-9a-f]{8})", printed)
    if not found:
        raise RuntimeError(f"QEMU printed no instruction count:\n{printed[-2000:]}")
    known, empty, policy = (int(v, 16) for v in found.groups())
    per_tick = 2 * 200000 / known
    return (policy - empty) * per_tick / reps
