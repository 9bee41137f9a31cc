"""Building the generated C with the host compiler and calling it through ctypes.

The exporter's checks (bit-exact against TFLite Micro, close to Keras, greedy
returns) run the very C text that is shipped, compiled with the same strict
flags a board build would use.
"""
from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import tempfile
from typing import Callable, Dict, Optional, Sequence, Tuple

import numpy as np

from tflite_export.writing import check_tool_run, write_file

#: Flags every build of the generated C uses: strict C99 and clean under -Wall -Wextra.
#: ISO C mode also turns off floating-point contraction (no fused multiply-add), so the
#: float operations round the same way on the host and on a Cortex-M4F.
C_FLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]


def host_compiler() -> Optional[str]:
    """The host C compiler ($CC, cc, gcc or clang), or None."""
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def compile_shared(files: Dict[str, str], directory: str, compiler: Optional[str] = None,
                   extra_flags: Sequence[str] = ()) -> str:
    """Builds the policy as a shared library with the strict flags; returns its path. A write that
    finds no room, by this or by the compiler, raises an OSError naming the file (tflite_export.writing)."""
    compiler = compiler or host_compiler()
    if compiler is None:
        raise RuntimeError("no C compiler found (set CC or install gcc or clang)")
    for name, text in files.items():
        write_file(os.path.join(directory, name), text)
    sources = [os.path.join(directory, n) for n in files if n.endswith(".c")]
    lib = os.path.join(directory, "libpolicy.so")
    r = subprocess.run([compiler, *C_FLAGS, "-O2", "-shared", "-fPIC", *extra_flags, "-o", lib, *sources, "-lm"],
                       capture_output=True, text=True)
    check_tool_run(r, lib)  # a full disk is not a compile error: the one-line message names the file
    if r.returncode != 0:
        raise RuntimeError(f"the generated C did not compile:\n{r.stderr[-4000:]}")
    return lib


#: The integer entry points' input types (the others take float observations).
_INPUT_TYPES = {"int8_q": np.int8, "int16_q": np.int16, "quantize_int16": np.int16}


class CPolicyLibrary:
    """The generated C, compiled on the host and called through ctypes (for checks and returns)."""

    def __init__(self, policy, compiler: Optional[str] = None, extra_flags: Sequence[str] = ()):
        self.policy = policy
        with tempfile.TemporaryDirectory(prefix="c_policy_") as tmp:
            # mapped into the process: the file may go
            self._lib = ctypes.CDLL(compile_shared(policy.files, tmp, compiler, extra_flags))
        f32, i8, i16 = (ctypes.POINTER(t) for t in (ctypes.c_float, ctypes.c_int8, ctypes.c_int16))
        self.integer_only = any(f == f"-D{policy.integer_only_macro}" for f in extra_flags)
        signatures = {"int8_q": ([i8, i8], None)}
        if policy.int16 is not None:
            signatures.update({"int16_q": ([i16, i8], ctypes.c_int), "quantize_int16": ([i16, i8], ctypes.c_int)})
        if policy.discrete:
            signatures["argmax_q"] = ([i8], ctypes.c_int)
        if not self.integer_only:
            signatures.update({"float": ([f32, f32], None), "int8": ([f32, f32], ctypes.c_int),
                               "int8_raw": ([f32, i8], ctypes.c_int),
                               "quantize_observation": ([f32, i8], ctypes.c_int)})
        for suffix, (args, res) in signatures.items():
            fn = getattr(self._lib, f"{policy.ident}_{suffix}")
            fn.argtypes, fn.restype = args, res

    def _call(self, suffix: str, x: np.ndarray, dtype, size: int) -> Tuple[np.ndarray, object]:
        fn = getattr(self._lib, f"{self.policy.ident}_{suffix}")
        x = np.ascontiguousarray(x, _INPUT_TYPES.get(suffix, np.float32))
        if x.shape != (self.policy.observation_size,):
            raise ValueError(f"expected an observation of {self.policy.observation_size} values, got {x.shape}")
        out = np.zeros(size, dtype)
        result = fn(x.ctypes.data_as(fn.argtypes[0]), out.ctypes.data_as(fn.argtypes[1]))
        return out, result

    def float32(self, obs: np.ndarray) -> np.ndarray:
        return self._call("float", obs, np.float32, self.policy.output_size)[0]

    def int8(self, obs: np.ndarray) -> np.ndarray:
        return self._call("int8", obs, np.float32, self.policy.output_size)[0]

    def int8_raw(self, obs: np.ndarray) -> np.ndarray:
        return self._call("int8_raw", obs, np.int8, self.policy.output_size)[0]

    def int8_q(self, q: np.ndarray) -> np.ndarray:
        """The integer-only entry point: int8 observation in, int8 output out."""
        return self._call("int8_q", q, np.int8, self.policy.output_size)[0]

    def int16_q(self, x: np.ndarray) -> np.ndarray:
        """The int16 entry point: sensor counts in, int8 output out."""
        return self._call("int16_q", x, np.int8, self.policy.output_size)[0]

    def quantize_int16(self, x: np.ndarray) -> Tuple[np.ndarray, int]:
        """(int8 input, number of features clamped) of int16 sensor counts."""
        q, saturated = self._call("quantize_int16", x, np.int8, self.policy.observation_size)
        return q, int(saturated)

    def quantize(self, obs: np.ndarray) -> Tuple[np.ndarray, int]:
        """(int8 input, number of features outside the input range) of a raw observation."""
        q, saturated = self._call("quantize_observation", obs, np.int8, self.policy.observation_size)
        return q, int(saturated)

    def saturated(self, obs: np.ndarray) -> int:
        """What ``<prefix>_int8`` returns: features outside the input range."""
        return int(self._call("int8", obs, np.float32, self.policy.output_size)[1])

    def argmax_q(self, raw: np.ndarray) -> int:
        fn = getattr(self._lib, f"{self.policy.ident}_argmax_q")
        raw = np.ascontiguousarray(raw, np.int8)
        return int(fn(raw.ctypes.data_as(fn.argtypes[0])))

    def batch(self, fn: Callable[[np.ndarray], np.ndarray], observations: np.ndarray) -> np.ndarray:
        return np.stack([fn(o) for o in np.asarray(observations)])
