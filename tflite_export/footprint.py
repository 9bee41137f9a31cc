"""Flash and RAM a policy costs on a microcontroller, measured rather than estimated.

Two deployments are compared:

* TFLite Micro: the flatbuffer (flash) and the smallest tensor arena (RAM) the
  model runs in, found by bisection with the ``tflite-micro`` Python runtime.
  That runtime is the host (x86-64) build, so its arena holds 64-bit pointers
  and the RecordingMicroAllocator's bookkeeping; a 32-bit Cortex-M needs
  somewhat less. The interpreter's own code (tens of kB of flash) is not
  measured here and not counted, which only flatters TFLite Micro.
* the plain-C policy (tflite_export.c_policy): each entry point is linked on
  its own for a Cortex-M4F with ``arm-none-eabi-gcc -Os`` and newlib-nano,
  keeping only what it reaches (``--gc-sections``), so flash is its code and constants plus any
  library code it pulls in; RAM is static data plus the deepest stack of the
  call, from GCC's ``-fcallgraph-info=su`` and, for the library functions it
  calls (no ``.su`` there), from their prologues in the linked image
  (``library_stack``). Without the ARM compiler the same
  is done with the host compiler, and the report says so.

A too-small arena makes the TFLM runtime crash the process (not raise), so
every arena size is tried in a forked child of a helper process.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from tflite_export.c_policy import C_FLAGS, CPolicy, host_compiler
from tflite_export.writing import check_tool_run, write_file

ARM_GCC = "arm-none-eabi-gcc"
#: Cortex-M4 with its single-precision FPU (M4F), the usual part; the int8 variant's input
#: quantisation is a few float operations per feature.
CORTEX_M4F_FLAGS = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16", "-Os"]
#: The same core without the FPU: float operations become libgcc calls, counted in flash.
CORTEX_M4_SOFT_FLAGS = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=soft", "-Os"]
HOST_FLAGS = ["-Os"]

_SECTION_FLAGS = ["-ffunction-sections", "-fdata-sections"]


def _tool(compiler: str, name: str) -> str:
    """The binutils tool that belongs to ``compiler`` (arm-none-eabi-size for arm-none-eabi-gcc)."""
    base = os.path.basename(compiler)
    prefix = base[: -len("gcc")] if base.endswith("gcc") else ""
    candidate = os.path.join(os.path.dirname(compiler), prefix + name) if os.path.dirname(compiler) else prefix + name
    return shutil.which(candidate) or shutil.which(name) or name


def _run(cmd: Sequence[str], cwd: str) -> str:
    """The tool's output; a failure raises RuntimeError, or an OSError naming the file it was
    writing (``-o``) when it ran out of room, which must end the export rather than be noted."""
    r = subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True)
    output = cmd[list(cmd).index("-o") + 1] if "-o" in cmd else ""
    check_tool_run(r, os.path.join(cwd, output) if output else cwd)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stderr[-4000:]}")
    return r.stdout


def _sections(size_tool: str, elf: str, cwd: str) -> Dict[str, int]:
    sizes: Dict[str, int] = {}
    for line in _run([size_tool, "-A", elf], cwd).splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith(".") and parts[1].isdigit():
            sizes[parts[0]] = sizes.get(parts[0], 0) + int(parts[1])
    return sizes


def _defined_symbols(nm_tool: str, path: str, cwd: str) -> Dict[str, Tuple[int, int]]:
    """name -> (address, size) of the functions and data objects defined in ``path``."""
    out = {}
    for line in _run([nm_tool, "-S", "--defined-only", path], cwd).splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2].lower() in "tdbr":
            out[parts[3]] = (int(parts[0], 16), int(parts[1], 16))
    return out


def _covered_bytes(ranges) -> int:
    """Bytes covered by (address, size) symbols: libgcc's aliases (__aeabi_fadd, __addsf3) and
    entry points inside another function's code (__aeabi_fsub) would otherwise count twice."""
    total, end = 0, -1
    for start, size in sorted(ranges):
        stop = start + size
        if stop > end:
            total += stop - max(start, end)
            end = stop
    return total


def library_stack(disassembly: str) -> Dict[str, int]:
    """Deepest stack of each function in ``objdump -d`` text of a linked Cortex-M image, from its
    prologue (push/stmdb/vpush, ``sub sp``) and the functions it branches to: libgcc and libm come
    without ``.su`` files, and leaving their frames out put M0+ stack figures 28-32 B below a painted
    stack (issue 39). An upper bound: a tail branch is counted as a call."""
    frames: Dict[str, int] = {}
    calls: Dict[str, set] = {}
    current = None
    for line in disassembly.splitlines():
        head = re.match(r"^[0-9a-f]+ <([^>]+)>:$", line)
        if head:
            current = head.group(1)
            frames[current], calls[current] = 0, set()
            continue
        if current is None or "\t" not in line:
            continue
        text = line.split("\t", 2)[-1]
        regs = re.match(r"(v?push|stmdb(?:\.w)?\s+sp!,)(?:\.w)?\s*\{([^}]*)\}", text.strip())
        if regs:
            count = 0
            for part in regs.group(2).split(","):
                ends = re.findall(r"\d+", part)
                count += int(ends[1]) - int(ends[0]) + 1 if "-" in part and len(ends) == 2 else 1
            frames[current] += count * (8 if regs.group(1) == "vpush" and "d" in regs.group(2) else 4)
            continue
        sub = re.match(r"sub(?:\.w|w)?\s+sp,\s*(?:sp,\s*)?#(\d+)", text.strip())
        if sub:
            frames[current] += int(sub.group(1))
            continue
        target = re.match(r"(?:bl|blx|b|b\.w|b\.n)\s+[0-9a-f]+ <([^>+]+)>", text.strip())
        if target and target.group(1) != current:
            calls[current].add(target.group(1))

    def depth(name: str, path: Tuple[str, ...]) -> int:
        if name not in frames or name in path:
            return 0
        return frames[name] + max((depth(c, path + (name,)) for c in calls[name]), default=0)

    return {name: depth(name, ()) for name in frames}


def max_stack(callgraph: str, entry: str, library: Optional[Dict[str, int]] = None) -> Tuple[int, List[str]]:
    """Deepest stack from ``entry`` in a GCC ``-fcallgraph-info=su`` graph (``.ci`` text), with the
    ``library`` functions' stack (library_stack) where the graph has none.

    Returns (bytes, functions without stack information either way).
    """
    library = library or {}
    frames: Dict[str, int] = {}
    calls: Dict[str, List[str]] = {}
    for m in re.finditer(r'node: \{ title: "([^"]+)" label: "([^"]*)"', callgraph):
        title, label = m.group(1), m.group(2)
        size = re.search(r"\\n(\d+) bytes \((static|dynamic[^)]*)\)", label)
        if size:
            frames[title] = int(size.group(1))
    for m in re.finditer(r'edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"', callgraph):
        calls.setdefault(m.group(1), []).append(m.group(2))
    unknown: List[str] = []

    def depth(node: str, path: Tuple[str, ...]) -> int:
        if node in path:
            raise RuntimeError(f"recursion through {node}: no bounded stack")
        if node not in frames:
            name = node.split(":")[-1]
            if name in library:
                return library[name]
            unknown.append(name)
            return 0
        return frames[node] + max((depth(c, path + (node,)) for c in set(calls.get(node, []))), default=0)

    titles = [t for t in frames if t == entry or t.endswith(f":{entry}")]
    if not titles:
        raise RuntimeError(f"{entry} is not in the call graph")
    return depth(titles[0], ()), sorted(set(unknown))


#: Functions of libgcc's soft-float and double-precision support: none may be in an integer-only build.
FLOAT_SYMBOL = re.compile(r"^__aeabi_[fd]|^__(add|sub|mul|div|neg|cmp|eq|ne|lt|le|gt|ge|unord|fix|float|extend|"
                          r"trunc)[a-z]*[sd]f")


def measure_entry_points(policy: CPolicy, compiler: str, flags: Sequence[str], arm: bool,
                         entries: Optional[Dict[str, Tuple[str, Sequence[str]]]] = None) -> Dict[str, dict]:
    """Flash, static RAM and stack of each variant's entry point, linked on its own.

    ``entries`` maps a variant name to (function suffix, extra compiler flags); by default the
    float-in variants. ``int8_q`` is built with ``-D<PREFIX>_INTEGER_ONLY``, as a board without
    FPU would build it, and its report lists any float library function it links
    (``float_library_symbols``, empty for the integer-only path).
    """
    if entries is None:
        integer_only = (f"-D{policy.integer_only_macro}",)
        entries = {"int8": ("int8", ()), "int8_raw": ("int8_raw", ()), "float32": ("float", ()),
                   "int8_q": ("int8_q", integer_only)}
        if policy.int16 is not None:
            entries["int16_q"] = ("int16_q", integer_only)
    size_tool, nm_tool = _tool(compiler, "size"), _tool(compiler, "nm")
    results: Dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="c_policy_size_") as tmp:
        for name, text in policy.files.items():
            write_file(os.path.join(tmp, name), text)
        src = f"{policy.ident}.c"
        objects: Dict[Tuple[str, ...], Tuple[str, str, dict]] = {}
        for variant, (suffix, defines) in entries.items():
            entry = f"{policy.ident}_{suffix}"
            key = tuple(defines)
            if key not in objects:
                obj = f"{policy.ident}_{len(objects)}.o"
                _run([compiler, *C_FLAGS, *flags, *defines, *_SECTION_FLAGS, "-fcallgraph-info=su", "-c", src,
                      "-o", obj], tmp)
                with open(os.path.join(tmp, obj[:-2] + ".ci"), encoding="utf-8") as f:
                    objects[key] = (obj, f.read(), _defined_symbols(nm_tool, obj, tmp))
            obj, callgraph, own = objects[key]
            elf = f"{variant}.elf"
            if arm:
                # newlib-nano, as the integer-only builds and a real firmware link it: full newlib's
                # reentrancy struct (errno of expf/tanhf) put ~1 kB of .data into the float figures
                link = ["-nostartfiles", "--specs=nano.specs", "--specs=nosys.specs", f"-Wl,-e,{entry}",
                        "-Wl,--gc-sections", obj, "-lm"]
            else:  # the host's libm is a shared library: only our own code and constants are counted
                link = ["-nostdlib", "-static", f"-Wl,-e,{entry}", "-Wl,--gc-sections",
                        "-Wl,--unresolved-symbols=ignore-all", obj]
            _run([compiler, *flags, *link, "-o", elf], tmp)
            sections = _sections(size_tool, elf, tmp)
            linked = _defined_symbols(nm_tool, elf, tmp)
            library = library_stack(_run([_tool(compiler, "objdump"), "-d", elf], tmp)) if arm else None
            if library:  # objdump labels an address once: __aeabi_fadd is __addsf3's alias
                labelled = {linked[name][0]: name for name in library if name in linked}
                library.update({sym: library[labelled[addr]] for sym, (addr, _) in linked.items()
                                if sym not in library and addr in labelled})
            stack, unknown = max_stack(callgraph, entry, library)
            text, rodata = sections.get(".text", 0), sections.get(".rodata", 0)
            data, bss = sections.get(".data", 0), sections.get(".bss", 0)
            results[variant] = {
                "entry": entry, "flash_bytes": text + rodata + data, "text_bytes": text, "rodata_bytes": rodata,
                "library_bytes": _covered_bytes(v for sym, v in linked.items() if sym not in own),
                "float_library_symbols": sorted(sym for sym in linked if FLOAT_SYMBOL.match(sym)),
                "static_ram_bytes": data + bss, "stack_bytes": stack,
                "ram_bytes": data + bss + stack,
                "stack_excludes": unknown,
            }
    return results


#: The targets "which variant to ship" compares, with their GCC flags.
TARGETS = {
    "cortex-m0plus": ["-mcpu=cortex-m0plus", "-mthumb", "-Os"],
    "cortex-m4-soft-float": CORTEX_M4_SOFT_FLAGS,
    "cortex-m4f": CORTEX_M4F_FLAGS,
}


#: The caller of a call-site measurement: inputs read from a volatile array (the compiler cannot fold
#: them), the entry point called, every output stored to a volatile array (it cannot drop the call).
#: Built once with CALL_POLICY and once without (the empty main): the difference is what shipping the
#: policy adds to a firmware, call site included (issue 39: 24 B more than the entry point alone on M4).
CALL_SITE = r"""
#include <stdint.h>
#include "{ident}.h"

#ifdef CALL_POLICY
volatile {in_type} g_in[{upper}_OBSERVATION_SIZE];
volatile {out_type} g_out[{upper}_OUTPUT_SIZE];
#endif

int main(void)
{{
#ifdef CALL_POLICY
    {in_type} in[{upper}_OBSERVATION_SIZE];
    {out_type} out[{upper}_OUTPUT_SIZE];
    int i;
    for (i = 0; i < {upper}_OBSERVATION_SIZE; ++i) {{
        in[i] = g_in[i];
    }}
    (void){ident}_{entry}(in, out);
    for (i = 0; i < {upper}_OUTPUT_SIZE; ++i) {{
        g_out[i] = out[i];
    }}
#endif
    return 0;
}}
"""
#: What "call_site_flash_bytes" means, for the report.
CALL_SITE_NOTE = ("flash (.text + .rodata + .data) a main that reads the input from a volatile array, calls the entry "
                  "point and stores every output to a volatile array adds over an empty main, both linked with "
                  "newlib-nano's start-up (--specs=nano.specs --specs=nosys.specs), -Os, -ffunction-sections "
                  "-fdata-sections and --gc-sections")


def _types(suffix: str) -> Tuple[str, str]:
    """(input, output) C element types of entry point ``<ident>_<suffix>``."""
    in_type = {"int8_q": "int8_t", "int16_q": "int16_t"}.get(suffix, "float")
    return in_type, "int8_t" if suffix in ("int8_q", "int16_q", "int8_raw") else "float"


def call_site_flash(policy: CPolicy, compiler: str, flags: Sequence[str], suffix: str,
                    defines: Sequence[str] = ()) -> Dict[str, int]:
    """Flash and static RAM that calling ``<ident>_<suffix>`` from a real main adds over an empty main
    (CALL_SITE, CALL_SITE_NOTE): the figure a firmware's map file shows, where ``measure_entry_points``
    links the entry point alone."""
    in_type, out_type = _types(suffix)
    main = CALL_SITE.format(ident=policy.ident, upper=policy.ident.upper(), in_type=in_type, out_type=out_type,
                            entry=suffix)
    size_tool = _tool(compiler, "size")
    with tempfile.TemporaryDirectory(prefix="c_policy_call_site_") as tmp:
        for name, text in {**policy.files, "main.c": main}.items():
            write_file(os.path.join(tmp, name), text)
        totals = {}
        for label, extra in (("empty", ()), ("call", ("-DCALL_POLICY",))):
            _run([compiler, *C_FLAGS, *flags, *defines, *extra, *_SECTION_FLAGS, "--specs=nano.specs",
                  "--specs=nosys.specs", "-Wl,--gc-sections", "main.c", f"{policy.ident}.c", "-lm",
                  "-o", f"{label}.elf"], tmp)
            sections = _sections(size_tool, f"{label}.elf", tmp)
            flash = sum(sections.get(k, 0) for k in (".text", ".rodata", ".data", ".init", ".fini", ".ARM.exidx",
                                                      ".init_array", ".fini_array"))
            totals[label] = (flash, sections.get(".data", 0) + sections.get(".bss", 0))
    return {"call_site_flash_bytes": totals["call"][0] - totals["empty"][0],
            "call_site_static_ram_bytes": totals["call"][1] - totals["empty"][1],
            "empty_main_flash_bytes": totals["empty"][0]}


def _measure_target(policy: CPolicy, arm: str, flags: Sequence[str], entries: Dict[str, Tuple[str, Sequence[str]]],
                    inputs: Dict[str, np.ndarray]) -> Dict[str, dict]:
    """Flash, RAM and stack of each entry point linked alone, its flash with a real call site, and its
    instructions per call in QEMU, for one target."""
    from tflite_export.qemu_bench import instructions_per_call  # noqa: WPS433

    sizes = measure_entry_points(policy, arm, flags, arm=True, entries=entries)
    for variant, (suffix, defines) in entries.items():
        x = inputs[suffix]
        sizes[variant]["instructions_per_call"] = instructions_per_call(
            policy.files, policy.ident, suffix, x, flags, defines, reps=10 * len(x))
        sizes[variant].update(call_site_flash(policy, arm, flags, suffix, defines))
    return sizes


def _entry_inputs(policy: CPolicy, observations) -> Dict[str, np.ndarray]:
    """Per entry point, the check observations as it takes them: raw floats, the int8 input the float
    wrapper computes, or int16 sensor counts."""
    obs = np.asarray(observations, np.float32)
    z = policy.scaling.apply(obs) if policy.scaling is not None else obs
    q = np.clip(np.trunc(z / np.float32(policy.input_scale) + np.where(z < 0, -0.5, 0.5)) + policy.input_zero_point,
                -128, 127).astype(np.int8)
    inputs = {"int8_q": q, "int8": obs, "int8_raw": obs, "float": obs}
    if policy.int16 is not None:
        inputs["int16_q"] = policy.int16.counts(obs)
    return inputs


def target_table(policy: CPolicy, observations, arm_gcc: str = ARM_GCC,
                 kernels: Optional[Dict[str, CPolicy]] = None) -> Optional[Dict[str, object]]:
    """Per target (TARGETS): flash, RAM, stack, flash with a real call site (call_site_flash) and
    QEMU-counted instructions per call of the integer-only ``int8_q`` and ``int16_q``, the float-in
    ``int8`` and ``float``; and which to ship. ``kernels`` (tanh kernel -> the same policy generated with
    it, ``policy`` among them) adds, per target, ``kernels``: the int8 entry points with each TANH/LOGISTIC
    kernel, and ``kernel_recommendation``. None without the ARM compiler."""
    arm = shutil.which(arm_gcc)
    if not arm:
        return None
    integer_only = (f"-D{policy.integer_only_macro}",)
    entries = {"int8_q": ("int8_q", integer_only), "int16_q": ("int16_q", integer_only), "int8": ("int8", ()),
               "float32": ("float", ())}
    if policy.int16 is None:
        del entries["int16_q"]
    kernels = dict(kernels or {policy.c_tanh: policy})
    table: Dict[str, object] = {}
    for target, flags in TARGETS.items():
        sizes = _measure_target(policy, arm, flags, entries, _entry_inputs(policy, observations))
        row = {"flags": " ".join(C_FLAGS + list(flags)), "variants": sizes,
               "recommendation": _recommend(target, sizes)}
        if len(kernels) > 1:
            by_kernel = {}
            for kernel, other in kernels.items():
                int8_entries = {v: e for v, e in entries.items() if v != "float32"}
                by_kernel[kernel] = ({v: sizes[v] for v in int8_entries} if other is policy else
                                     _measure_target(other, arm, flags, int8_entries, _entry_inputs(other, observations)))
            row["kernels"] = by_kernel
            row["kernel_recommendation"] = _recommend_kernel(target, by_kernel)
        table[target] = row
    return {"compiler": compiler_version(arm), "observations": int(len(observations)),
            "c_tanh": policy.c_tanh,
            "instructions": "instructions executed per call on QEMU mps2-an386 with -icount shift=0, the mean over "
                            "the check observations: not cycles (no pipeline, wait states or multi-cycle "
                            "instructions are modelled)",
            "call_site": CALL_SITE_NOTE,
            "targets": table}


def _recommend_kernel(target: str, by_kernel: Dict[str, Dict[str, dict]]) -> str:
    """One line per target: which TANH/LOGISTIC kernel for the integer-only ``int8_q``, by flash with a
    call site and instructions (the table unless its flash is what the part cannot spare)."""
    table, computed = by_kernel.get("table", {}).get("int8_q"), by_kernel.get("computed", {}).get("int8_q")
    if table is None or computed is None:
        return f"{target}: one kernel measured"
    saved = table["call_site_flash_bytes"] - computed["call_site_flash_bytes"]
    slower = computed["instructions_per_call"] / table["instructions_per_call"]
    if saved <= 0:
        return (f"{target}: table (int8_q {table['call_site_flash_bytes']} B with its call site, "
                f"{table['instructions_per_call']:.0f} instructions/call; computed is no smaller)")
    return (f"{target}: table (int8_q {table['call_site_flash_bytes']} B with its call site, "
            f"{table['instructions_per_call']:.0f} instructions/call); computed only where {saved} B of flash "
            f"matter more than {slower:.1f}x the instructions ({computed['call_site_flash_bytes']} B, "
            f"{computed['instructions_per_call']:.0f}/call)")


def _recommend(target: str, sizes: Dict[str, dict]) -> str:
    """One line: the smallest variant (flash + RAM) and the fastest (instructions), or the one that is both."""
    cost = {v: s["flash_bytes"] + s["ram_bytes"] for v, s in sizes.items()}
    speed = {v: s["instructions_per_call"] for v, s in sizes.items() if s["instructions_per_call"] is not None}
    smallest = min(cost, key=cost.get)
    if not speed:
        return f"{target}: {smallest} (smallest: {sizes[smallest]['flash_bytes']} B flash + {sizes[smallest]['ram_bytes']} B RAM)"
    fastest = min(speed, key=speed.get)
    if smallest == fastest:
        return (f"{target}: ship {smallest}: smallest ({sizes[smallest]['flash_bytes']} B flash + "
                f"{sizes[smallest]['ram_bytes']} B RAM) and fewest instructions ({speed[smallest]:.0f}/call)")
    return (f"{target}: ship {smallest} where memory is tight ({sizes[smallest]['flash_bytes']} B flash + "
            f"{sizes[smallest]['ram_bytes']} B RAM, {speed[smallest]:.0f} instructions/call), {fastest} where time is "
            f"({sizes[fastest]['flash_bytes']} B + {sizes[fastest]['ram_bytes']} B, {speed[fastest]:.0f}/call)")


def compiler_version(compiler: str) -> str:
    r = subprocess.run([compiler, "--version"], capture_output=True, text=True)
    return r.stdout.splitlines()[0].strip() if r.returncode == 0 and r.stdout else os.path.basename(compiler)


def c_policy_footprint(policy: CPolicy, arm_gcc: str = ARM_GCC) -> Dict[str, object]:
    """Flash/RAM of the plain-C policy on a Cortex-M4F (and without FPU), or host figures.

    Flash counts .text + .rodata + .data (initial values live in flash); RAM
    counts .data + .bss + the deepest stack of the call.
    """
    arm = shutil.which(arm_gcc)
    if arm:
        return {
            "target": "Cortex-M4F", "compiler": compiler_version(arm),
            "flags": " ".join(C_FLAGS + CORTEX_M4F_FLAGS),
            "variants": measure_entry_points(policy, arm, CORTEX_M4F_FLAGS, arm=True),
            "without_fpu": {"flags": " ".join(C_FLAGS + CORTEX_M4_SOFT_FLAGS),
                            "variants": measure_entry_points(policy, arm, CORTEX_M4_SOFT_FLAGS, arm=True)},
        }
    host = host_compiler()
    note = f"{arm_gcc} not found: host figures ({'no C compiler either' if host is None else 'host -Os build'})"
    if host is None:
        return {"target": None, "note": note}
    return {"target": "host", "note": note, "compiler": compiler_version(host),
            "flags": " ".join(C_FLAGS + HOST_FLAGS),
            "variants": measure_entry_points(policy, host, HOST_FLAGS, arm=False)}


# ---- TFLite Micro arena ---------------------------------------------------------------
_ARENA_SEARCH = r"""
import json, os, re, subprocess, sys
import numpy as np

path = sys.argv[1]
model = open(path, "rb").read()

def runs(size):
    pid = os.fork()
    if pid == 0:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.dup2(null, 2)
        code = 1
        try:
            from tflite_micro import runtime
            it = runtime.Interpreter.from_bytes(model, arena_size=size)
            d = it.get_input_details(0)
            it.set_input(np.zeros(d["shape"], d["dtype"]), 0)
            it.invoke()
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0

hi = max(4096, 4 * len(model))
while not runs(hi):
    hi *= 2
    if hi > 1 << 26:
        print(json.dumps({"error": "the model does not run in TFLite Micro with 64 MB of arena"}))
        sys.exit(0)
lo = 0  # largest size known to fail (0 always does)
while hi - lo > 1:
    mid = (lo + hi) // 2
    if runs(mid):
        hi = mid
    else:
        lo = mid
probe = ("from tflite_micro import runtime; import sys; "
         "it = runtime.Interpreter.from_bytes(open(sys.argv[1], 'rb').read(), arena_size=%d); "
         "it.print_allocations()" % hi)
out = subprocess.run([sys.executable, "-c", probe, path], capture_output=True, text=True)
used = re.search(r"Arena allocation total (\d+) bytes", out.stdout + out.stderr)
print(json.dumps({"min_arena_bytes": hi, "arena_used_bytes": int(used.group(1)) if used else None}))
"""


def tflite_micro_memory(model: bytes) -> Dict[str, Optional[int]]:
    """Model bytes, the smallest arena the TFLM runtime runs the model in, and what it allocated there."""
    with tempfile.TemporaryDirectory(prefix="tflm_arena_") as tmp:
        path = os.path.join(tmp, "model.tflite")
        write_file(path, model)
        r = subprocess.run([sys.executable, "-c", _ARENA_SEARCH, path], capture_output=True, text=True)
    lines = [l for l in r.stdout.splitlines() if l.startswith("{")]
    if r.returncode != 0 or not lines:
        raise RuntimeError(f"TFLite Micro arena search failed:\n{r.stderr[-2000:]}")
    found = json.loads(lines[-1])
    if "error" in found:
        raise RuntimeError(found["error"])
    return {"model_bytes": len(model), **found}
