"""Fuzzing the SB3 reader (issue 42): a few hundred zips made from the CartPole fixture, their tensors'
offsets, sizes, strides and persistent ids rewritten, their storages cut, lengthened, swapped or
bit-flipped, and whole members cut short or bit-flipped. The reader must refuse each with a one-line
UsageError or return weights that a pure-Python gather from the storage bytes gives too, so none can be
read from outside its storage. It must never crash: the loop runs in a subprocess, so that a crash fails
this test instead of killing pytest."""
import io
import itertools
import os
import pickle
import subprocess
import sys
import tempfile
import zipfile
from collections import OrderedDict
from typing import Dict, NamedTuple

import numpy as np

from clitools import REPO

FIXTURE = os.path.join(REPO, "tests", "data", "sb3", "cartpole", "ppo.zip")
#: The storage types a returned weight may have been read as, and how (the reader's allow-list, restated).
DTYPES = {"FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2"}
EXAMPLES = 300


def _members(blob: bytes) -> Dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(blob)) as z:
        return {n: z.read(n) for n in z.namelist()}


def _zip(members: Dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:  # stored, as torch and SB3 write them
        for name, blob in members.items():
            z.writestr(name, blob)
    return out.getvalue()


class _Describer(pickle.Unpickler):
    """Reads a data.pkl as the reader's unpickler would, running the same opcodes, but keeps what each
    tensor was built from instead of building it: ("tensor", (("pid", pid), offset, size, stride, ...)).
    It accepts at least whatever the reader accepts."""

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return lambda *args: ("tensor", args)
        if (module, name) == ("torch._utils", "_rebuild_parameter"):
            return lambda data, *rest: data
        if module == "torch":
            return ("type", name)
        raise pickle.UnpicklingError(f"{module}.{name}")

    def persistent_load(self, pid):
        return ("pid", pid)


def _describe(pkl: bytes) -> dict:
    return _Describer(io.BytesIO(pkl)).load()


class Global(NamedTuple):
    """A global a data.pkl names, such as torch.FloatStorage: written as pickle's GLOBAL opcode."""
    module: str
    name: str


def _op(value) -> bytes:
    """Pickle opcodes (protocol 2) that push ``value``: tuples and globals by hand, the rest by pickle."""
    if isinstance(value, Global):
        return f"c{value.module}\n{value.name}\n".encode()
    if isinstance(value, tuple):
        return b"(" + b"".join(_op(v) for v in value) + b"t"
    return pickle.dumps(value, protocol=2)[2:-1]  # without PROTO and STOP


def _state_dict_pickle(tensors: Dict[str, dict]) -> bytes:
    """data.pkl as torch.save writes a state_dict: an OrderedDict of _rebuild_tensor_v2(storage, offset,
    size, stride, requires_grad, hooks), each storage a persistent id."""
    out = [b"\x80\x02ccollections\nOrderedDict\n)R("]
    for name, t in tensors.items():
        out += [_op(name), b"ctorch._utils\n_rebuild_tensor_v2\n(", _op(t["pid"]), b"Q", _op(t["offset"]),
                _op(t["size"]), _op(t["stride"]), b"\x89ccollections\nOrderedDict\n)Rt", b"R"]
    return b"".join(out + [b"u."])


def _fixture():
    """(outer members, policy.pth members, tensors as _state_dict_pickle takes them) of the fixture."""
    with open(FIXTURE, "rb") as f:
        outer = _members(f.read())
    inner = _members(outer["policy.pth"])
    tensors = {}
    for name, (_, ((_, pid), offset, size, stride, *_rest)) in _describe(inner["archive/data.pkl"]).items():
        pid = (pid[0], Global("torch", pid[1][1]), *pid[2:])
        tensors[name] = {"pid": pid, "offset": offset, "size": size, "stride": stride}
    return outer, inner, tensors


def _described(policy: zipfile.ZipFile) -> dict:
    """What policy.pth's data.pkl builds, found as the reader finds it."""
    pkl = [n for n in policy.namelist() if n.endswith("/data.pkl")]
    assert len(pkl) == 1
    return _describe(policy.read(pkl[0]))


def _reference(name: str, returned: np.ndarray, policy: zipfile.ZipFile) -> None:
    """Asserts that ``returned`` is tensor ``name`` of ``policy`` gathered in pure Python: every element
    at offset + Σ index·stride of its storage's bytes, each inside them."""
    kind, args = _described(policy)[name]
    assert kind == "tensor" and args[0][0] == "pid"
    (tag, (_, storage_type), key, _location, numel), offset, size, stride = args[0][1], *args[1:4]
    dtype = np.dtype(DTYPES[storage_type])  # a KeyError: weights read from a storage that is not floating point
    prefix = [n for n in policy.namelist() if n.endswith("/data.pkl")][0][:-len("data.pkl")]
    blob = policy.read(f"{prefix}data/{key}")
    assert tag == "storage" and len(blob) == numel * dtype.itemsize
    assert returned.dtype == dtype and returned.shape == tuple(size)
    chunks = []
    for index in itertools.product(*(range(n) for n in size)):
        at = offset + sum(i * s for i, s in zip(index, stride))
        assert 0 <= at and (at + 1) * dtype.itemsize <= len(blob), (name, index, at)
        chunks.append(blob[at * dtype.itemsize:(at + 1) * dtype.itemsize])
    assert np.ascontiguousarray(returned).tobytes() == b"".join(chunks), name


def test_the_pickle_written_here_is_the_fixtures():
    """The fuzzer's data.pkl writer and reference gather agree with the reader on the untouched fixture,
    so what the fuzzer rewrites is what torch would have written."""
    from agents.sb3 import read_state_dict

    outer, inner, tensors = _fixture()
    expected = read_state_dict(outer["policy.pth"])
    policy = _zip({**inner, "archive/data.pkl": _state_dict_pickle(tensors)})
    state = read_state_dict(policy)
    assert list(state) == list(expected) and len(state) == 12
    with zipfile.ZipFile(io.BytesIO(policy)) as z:
        for name, weights in state.items():
            np.testing.assert_array_equal(weights, expected[name])
            _reference(name, weights, z)


def test_the_reader_survives_mutated_files():
    """The fuzz loop below, in a subprocess: exit 0, and both outcomes seen often enough to matter."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO, os.path.dirname(__file__)]), TF_USE_LEGACY_KERAS="1",
               TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="-1")
    result = subprocess.run([sys.executable, __file__], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    outcomes = dict(line.split() for line in result.stdout.splitlines() if line.startswith(("read ", "refused ")))
    assert int(outcomes["read"]) >= EXAMPLES // 20 and int(outcomes["refused"]) >= EXAMPLES // 4, result.stdout


def _fuzz():
    """The hypothesis loop; run by test_the_reader_survives_mutated_files in its own process."""
    from hypothesis import HealthCheck, given, settings, strategies as st

    from agents.errors import UsageError
    from agents.sb3 import _read

    outer, inner, tensors = _fixture()
    names, keys = list(tensors), sorted({t["pid"][2] for t in tensors.values()}, key=int)
    ints = st.one_of(st.integers(-2, 300), st.sampled_from([4095, 4096, 4097, 2**31, 2**63, 2**64, -2**63]))
    odd = st.one_of(st.booleans(), st.none(), st.floats(-2, 300, width=32), st.text("0123456789./ab", max_size=4),
                    st.lists(st.integers(0, 64), max_size=3))
    storage_types = st.sampled_from(["FloatStorage", "DoubleStorage", "HalfStorage", "IntStorage", "LongStorage",
                                     "BoolStorage", "BFloat16Storage", "Tensor"]).map(lambda n: Global("torch", n))
    tensor = st.sampled_from(names)
    mutation = st.one_of(
        st.tuples(st.just("offset"), tensor, st.one_of(ints, odd)),
        st.tuples(st.sampled_from(["size", "stride"]), tensor, st.integers(0, 2), st.one_of(ints, odd)),
        st.tuples(st.sampled_from(["size", "stride"]), tensor, st.one_of(st.lists(ints, max_size=3).map(tuple), odd)),
        st.tuples(st.just("pid"), tensor, st.integers(0, 5),
                  st.one_of(ints, odd, storage_types, st.sampled_from(keys), st.just("storage"))),
        st.tuples(st.just("transpose"), tensor),  # column-major, as torch saves a transposed tensor
        st.tuples(st.just("key"), tensor, st.sampled_from(keys)),  # another storage: read if its size fits
        st.tuples(st.just("storage"), st.sampled_from(keys),
                  st.sampled_from(["cut", "grow", "flip", "drop"]), st.integers(0, 20000)),
        st.tuples(st.just("bytes"), st.sampled_from(["archive/data.pkl", "policy.pth", "data", "file"]),
                  st.sampled_from(["cut", "flip"]), st.integers(0, 60000)),
    )
    seen = {"read": 0, "refused": 0}
    folder = tempfile.TemporaryDirectory()

    def damage(blob: bytes, how: str, at: int) -> bytes:
        if how == "cut":
            return blob[:at % (len(blob) + 1)]
        if how == "grow":
            return blob + bytes(at % 9)
        if not blob:
            return blob
        at %= 8 * len(blob)
        return blob[:at // 8] + bytes([blob[at // 8] ^ (1 << at % 8)]) + blob[at // 8 + 1:]

    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(mutation, min_size=1, max_size=2))
    def fuzz(mutations):
        ts = {n: dict(t) for n, t in tensors.items()}
        members, files, raw = dict(inner), dict(outer), []
        for kind, *m in mutations:
            if kind == "offset":
                ts[m[0]]["offset"] = m[1]
            elif kind in ("size", "stride") and len(m) == 3:  # one element of the tuple replaced, or added
                old = ts[m[0]][kind] if isinstance(ts[m[0]][kind], tuple) else ()
                ts[m[0]][kind] = old[:m[1]] + (m[2],) + old[m[1] + 1:]
            elif kind in ("size", "stride"):
                ts[m[0]][kind] = m[1]
            elif kind == "pid":
                pid = ts[m[0]]["pid"]
                pid = pid if isinstance(pid, tuple) else ()
                ts[m[0]]["pid"] = pid[:m[1]] + (m[2],) + pid[m[1] + 1:] if m[1] < 5 else pid[:4]  # or cut short
            elif kind == "transpose":
                size = ts[m[0]]["size"]
                ts[m[0]]["stride"] = (1, size[0]) if isinstance(size, tuple) and len(size) == 2 else (1,)
            elif kind == "key":
                pid = ts[m[0]]["pid"] if isinstance(ts[m[0]]["pid"], tuple) else ()
                ts[m[0]]["pid"] = pid[:2] + (m[1],) + pid[3:]
            elif kind == "storage":
                member = f"archive/data/{m[0]}"
                if m[1] == "drop":
                    members.pop(member, None)
                elif member in members:
                    members[member] = damage(members[member], m[1], m[2])
            else:
                raw.append(m)
        members["archive/data.pkl"] = _state_dict_pickle(ts)
        for where, how, at in raw:
            if where in members:
                members[where] = damage(members[where], how, at)
        files["policy.pth"] = _zip(members)
        for where, how, at in raw:
            if where in files:
                files[where] = damage(files[where], how, at)
        blob = _zip(files)
        for where, how, at in raw:
            if where == "file":
                blob = damage(blob, how, at)
        path = os.path.join(folder.name, "ppo.zip")
        with open(path, "wb") as f:
            f.write(blob)
        try:
            _, state, *_ = _read(path)
        except UsageError as e:
            assert path in str(e) and "\n" not in str(e), str(e)
            seen["refused"] += 1
            return
        with zipfile.ZipFile(path) as z, zipfile.ZipFile(io.BytesIO(z.read("policy.pth"))) as policy:
            assert set(state) == set(_described(policy))
            for name, weights in state.items():
                _reference(name, weights, policy)
        seen["read"] += 1

    with folder:
        fuzz()
    for outcome, count in seen.items():
        print(outcome, count)


if __name__ == "__main__":
    _fuzz()
