#!/usr/bin/env bash
# Builds the bare-metal policy example for a QEMU board.
#
#   examples/bare_metal/build.sh POLICY_DIR BOARD OUT.elf [PREFIX] [integer-only|int8-input]
#
# POLICY_DIR holds <PREFIX>.c/.h (python -m tflite_export writes actor_policy.c/.h);
# BOARD is mps2-an386 (Cortex-M4F) or microbit (Cortex-M0); PREFIX defaults to actor_policy;
# "integer-only" builds <PREFIX>.c with -D<PREFIX>_INTEGER_ONLY and feeds int16 sensor counts to
# <PREFIX>_int16_q (which counts saturated features); "int8-input" feeds int8 observations quantised
# on the host to <PREFIX>_int8_q. Run it where observations.bin is (make_observations.py writes it:
# --format=float32 by default, int16 for integer-only, int8 for int8-input):
#
#   qemu-system-arm -M BOARD -nographic -monitor none -serial none \
#       -semihosting-config enable=on,target=native -kernel OUT.elf
set -euo pipefail
if [ $# -lt 3 ]; then
    echo "usage: $0 POLICY_DIR BOARD OUT.elf [PREFIX] [integer-only|int8-input]" >&2
    exit 2
fi
here="$(cd "$(dirname "$0")" && pwd)"
policy_dir="$1" board="$2" out="$3" prefix="${4:-actor_policy}" mode="${5:-}"
upper="$(echo "$prefix" | tr '[:lower:]' '[:upper:]')"
case "$board" in
    mps2-an386) cpu=(-mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16) ;;
    microbit) cpu=(-mcpu=cortex-m0 -mthumb) ;;
    *) echo "$0: error: unknown board '$board' (mps2-an386 or microbit)" >&2; exit 2 ;;
esac
if [ ! -f "$policy_dir/$prefix.c" ]; then
    echo "$0: error: $policy_dir/$prefix.c not found" >&2
    exit 2
fi
defines=(-DPOLICY_PREFIX="${prefix}_" -DPOLICY_UPPER="$upper" -DPOLICY_HEADER="\"$prefix.h\"")
case "$mode" in
    "") ;;
    integer-only)
        if ! grep -q "int ${prefix}_int16_q(" "$policy_dir/$prefix.h"; then
            echo "$0: error: $policy_dir/$prefix.h has no ${prefix}_int16_q (its header says why); use int8-input" >&2
            exit 2
        fi
        defines+=(-DINTEGER_ONLY -DINT16_INPUT "-D${upper}_INTEGER_ONLY") ;;
    int8-input) defines+=(-DINTEGER_ONLY "-D${upper}_INTEGER_ONLY") ;;
    *) echo "$0: error: unknown mode '$mode' (integer-only or int8-input)" >&2; exit 2 ;;
esac
tmp="$out.tmp$$"
trap 'rm -f "$tmp"' EXIT
arm-none-eabi-gcc "${cpu[@]}" -Os -std=c99 -Wall -Wextra -Werror -pedantic -ffunction-sections -fdata-sections \
    "${defines[@]}" -I"$here" -I"$policy_dir" -nostartfiles --specs=nosys.specs -Wl,--gc-sections \
    -L"$here" -T"$here/$board.ld" -o "$tmp" "$here/startup.c" "$here/main.c" "$policy_dir/$prefix.c" -lm
mv "$tmp" "$out"
trap - EXIT
