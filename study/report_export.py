"""The results document's plain-C section, generated from tflite_export's reports.

Hand-copied figures drift from the files they came from (a re-export changed
the run behind ``cartpole_dsp_s0.json`` while the text kept the old one), so
the per-target table is read from ``<export_dir>/*.json`` (copies of
``export_report.json``) every time the report runs. A report without a
per-target table (exported without arm-none-eabi-gcc, or before it existed) is
named, not dropped.
"""
from __future__ import annotations

import glob
import json
import os
from typing import List, Tuple

from dsp_tf.errors import UsageError
from study.report_markdown import left_out_list

#: The 1 kB flash budget of issue 27 for the integer-only call.
FLASH_BUDGET_BYTES = 1024
#: Columns of the per-target table, in order: (variant key in the report, column title).
VARIANTS = (("int8_q", "`int8_q` (int8 in, integer only)"), ("int16_q", "`int16_q` (int16 counts in, integer only)"),
            ("int8", "`int8` (float in/out)"), ("float32", "`float`"))

Report = Tuple[str, dict]  # (file name, the export report)


def load_exports(export_dir: str) -> Tuple[List[Report], List[Tuple[str, str]]]:
    """(reports with a per-target table, [(file, why)] of the ones without or unreadable)."""
    if not os.path.isdir(export_dir):
        raise UsageError(f"--export_dir '{export_dir}' does not exist")
    found, left_out = [], []
    for path in sorted(glob.glob(os.path.join(export_dir, "*.json"))):
        name = os.path.basename(path)
        try:
            with open(path, encoding="utf-8") as f:
                report = json.load(f)
        except (OSError, ValueError) as e:
            left_out.append((name, f"unreadable: {e}"))
            continue
        targets = report.get("c_policy", {}).get("targets", {}) if isinstance(report, dict) else {}
        if "targets" not in targets:
            left_out.append((name, "no per-target table (exported before it existed, or without "
                                   "arm-none-eabi-gcc and QEMU)"))
            continue
        found.append((name, report))
    return found, left_out


def _cell(v: dict) -> str:
    instructions = v.get("instructions_per_call")
    count = "—" if instructions is None else f"{instructions:,.0f}"
    return f"{v['flash_bytes']:,} B, {v['ram_bytes']:,} B, {count}"


#: The TANH/LOGISTIC kernels of the C policy (tflite_export.c_tables), in the order the table shows them.
KERNELS = (("table", "int8 table"), ("computed", "computed (TFLite Micro's routine)"))


def kernel_table(table: dict) -> str:
    """``int8_q`` with each TANH kernel per target: flash linked alone and with a real call site (what a
    firmware's map file shows), RAM, instructions per call, and the export's pick between them."""
    lines = ["`int8_q` with each TANH kernel (`--c_tanh`). Each cell: flash linked alone / with a call site "
             "over an empty `main`, RAM, instructions per call.\n",
             "| target | " + " | ".join(title for _, title in KERNELS) + " | the export's pick |",
             "|---" * (len(KERNELS) + 2) + "|"]
    for target, row in table["targets"].items():
        cells = []
        for kernel, _ in KERNELS:
            q = row["kernels"][kernel]["int8_q"]
            instructions = q.get("instructions_per_call")
            cells.append(f"{q['flash_bytes']:,} / {q['call_site_flash_bytes']:,} B, {q['ram_bytes']:,} B, "
                         + ("—" if instructions is None else f"{instructions:,.0f}"))
        pick = row["kernel_recommendation"].split(":", 1)[-1].strip()
        lines.append(f"| {target} | " + " | ".join(cells) + f" | {pick} |")
    return "\n".join(lines)


def export_table(name: str, report: dict) -> str:
    """One export's per-target table, its recommendations and the checks behind the int16 input."""
    c, compact = report["c_policy"], report["models"]["compact"]
    table = c["targets"]
    hidden = "-".join(str(u) for u in compact["hidden_units"])
    lines = [f"**{report['env']}, {report['method']} seed {report['seed']}** (`{name}`; actor {hidden}, "
             f"{compact['weights']} weights; run `{report['root_dir']}`; {table['compiler']}). "
             "Each cell: flash, RAM (static + deepest stack), instructions per call.\n",
             "| target | " + " | ".join(title for _, title in VARIANTS) + " |",
             "|---" * (len(VARIANTS) + 1) + "|"]
    budget = []
    for target, row in table["targets"].items():
        v = row["variants"]
        lines.append(f"| {target} | " + " | ".join(_cell(v[k]) if k in v else "—" for k, _ in VARIANTS) + " |")
        q = v["int8_q"]
        flash = q.get("call_site_flash_bytes", q["flash_bytes"])  # with a real call site where measured
        budget.append(f"{target} {flash:,} B ({'met' if flash <= FLASH_BUDGET_BYTES else 'missed'})")
    lines.append("")
    lines.append("Recommendation: " + "; ".join(row["recommendation"] for row in table["targets"].values()) + ".")
    call_site = all("call_site_flash_bytes" in row["variants"]["int8_q"] for row in table["targets"].values())
    lines.append(f"`int8_q`{' with its call site' if call_site else ''} against the {FLASH_BUDGET_BYTES:,}-byte "
                 "flash budget: " + ", ".join(budget) + ".")
    if all("kernels" in row for row in table["targets"].values()):
        lines.append("")
        lines.append(kernel_table(table))
        lines.append("")
    int16 = c.get("int16_input")
    if int16 and int16.get("written") is False:
        lines.append(int16["reason"][:1].upper() + int16["reason"][1:] + ".")
    elif int16:
        lines.append(f"int16 input on {int16['observations']:,} observations read as counts: the same int8 input as "
                     f"the float wrapper on {100 * int16['same_int8_input_as_float_wrapper_rate']:.2f}% (at most "
                     f"{int16['max_step_difference']} step apart), the same saturation count on "
                     f"{100 * int16['same_saturation_count_as_float_wrapper_rate']:.2f}%, equal to the NumPy "
                     f"reference: {'yes' if int16['as_numpy_reference'] else 'NO'}; its output `_int8_q`'s on its input: "
                     f"{'yes' if int16['output_is_int8_q_of_its_input'] else 'NO'}.")
    return "\n".join(lines) + "\n"


def export_section(reports: List[Report], left_out: List[Tuple[str, str]], export_dir: str) -> str:
    parts = ["## Plain-C policy per target (generated from the export reports)\n",
             f"From `{export_dir}/*.json`, copies of `python -m tflite_export`'s `export_report.json` "
             "(`c_policy.targets`). Each entry point linked on its own with arm-none-eabi-gcc `-Os -ffunction-sections "
             "-fdata-sections`, `--gc-sections`, newlib-nano's `nosys.specs`; flash = .text + .rodata + .data "
             "(library code included), RAM = static data + the deepest stack (`-fcallgraph-info=su`); "
             "*instructions* executed per call on QEMU `mps2-an386` with `-icount shift=0` over the check "
             "observations: **not cycles** (QEMU models no pipeline or wait states; the Cortex-M0+ build's "
             "ARMv6-M code runs on that Cortex-M4 board). `int8_q` and `int16_q` are built with "
             "`-D<PREFIX>_INTEGER_ONLY` and link no float routine.\n"]
    parts += [export_table(name, report) for name, report in reports]
    parts += left_out_list("Export reports without a per-target table:\n", left_out)
    return "\n".join(parts)


def read_exports(export_dir: str) -> Tuple[List[Report], List[Tuple[str, str]]]:
    """As load_exports; none with a table at all is a usage error (the flag asked for a section)."""
    reports, left_out = load_exports(export_dir)
    if not reports:
        raise UsageError(f"no export report with a per-target table (c_policy.targets) in --export_dir '{export_dir}'")
    return reports, left_out

