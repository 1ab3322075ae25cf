"""What crosses the sandbox boundary: plain values as tagged JSON, one message per line, and the
confinement both sandboxed runners apply to themselves before running anything else.

This file is not imported in the sandbox: its source is prepended to each runner's source
(`runner_candidate.py`, `runner_referee.py`), which run under `python -S` with the standard library
only. It is importable on the host for tests.

Only plain values travel: None, bool, int, float, str, bytes, complex, list, tuple, set, frozenset,
dict, range, Fraction and Decimal (subclasses travel as their base type), iterators as `Iterator`
(consumed, at most `MAX_ITEMS` items), and a reference to one of the program's functions
(`Remote`). Anything else arrives as `Opaque(type name)`, which equals nothing but itself. The
decoder accepts nothing else, so no object with an `__eq__` of its own, no code and no live
reference can come out of a message.
"""

import json
import os
import re
import resource
import signal

MAX_LINE = 64 * 2**20
MAX_ITEMS = 1_000_000
MAX_DEPTH = 60
_SCALAR = (str, bool, type(None))


class WireError(ValueError):
    """A message that is not plain, well-formed data."""


class Opaque:
    """A value of a type that cannot cross the boundary; equal only to an Opaque of the same type."""

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Opaque) and other.type_name == self.type_name

    def __hash__(self) -> int:
        return hash(("Opaque", self.type_name))

    def __repr__(self) -> str:
        return f"<{self.type_name} object>"


class Iterator:
    """An iterator the program returned, already consumed: iterable once, equal to no list."""

    def __init__(self, items: list) -> None:
        self._it = iter(items)

    def __iter__(self):
        return self

    def __next__(self):
        return next(self._it)

    def __repr__(self) -> str:
        return "<iterator>"


class Remote:
    """A reference to a function defined by the program (only a name)."""

    def __init__(self, name: str) -> None:
        self.name = name


def encode(x, strict: bool = False, depth: int = 0, budget: list | None = None):
    """The JSON-ready form of a plain value; for anything else Opaque, or WireError if `strict`."""
    budget = budget if budget is not None else [MAX_ITEMS]
    budget[0] -= 1
    if budget[0] < 0 or depth > MAX_DEPTH:
        raise WireError("value too large or too deeply nested to send")
    t = type(x)
    if t in _SCALAR:
        return x
    if isinstance(x, Remote):
        return {"fn": x.name}
    if isinstance(x, bool):
        return bool(x)
    if isinstance(x, int):
        return {"int": hex(int.__index__(x))} if abs(x) >= 2**53 else int.__index__(x)
    if isinstance(x, float):
        return {"float": float.__repr__(x)}
    if isinstance(x, str):
        return str.__str__(x)
    if isinstance(x, (bytes, bytearray)):
        return {"bytes" if isinstance(x, bytes) else "bytearray": bytes(x).hex()}
    if isinstance(x, complex):
        return {"complex": [float.__repr__(x.real), float.__repr__(x.imag)]}
    if isinstance(x, range):
        return {"range": [x.start, x.stop, x.step]}
    items = None
    if isinstance(x, dict):
        return {"dict": [[encode(k, strict, depth + 1, budget), encode(v, strict, depth + 1, budget)] for k, v in dict.items(x)]}
    for base, tag in ((list, "list"), (tuple, "tuple"), (frozenset, "frozenset"), (set, "set")):
        if isinstance(x, base):
            items = list(base.__iter__(x))
            return {tag: [encode(i, strict, depth + 1, budget) for i in items]}
    name = f"{t.__module__}.{t.__qualname__}" if t.__module__ != "builtins" else t.__qualname__
    if name in ("fractions.Fraction", "decimal.Decimal"):
        return {name.split(".")[1]: str(x)}
    if hasattr(t, "__next__") and hasattr(t, "__iter__"):
        items = []
        for i in x:
            items.append(encode(i, strict, depth + 1, budget))
        return {"iter": items}
    if strict:
        raise WireError(f"a value of type {name} cannot be sent as plain data")
    return {"opaque": name[:200]}


def decode(v, depth: int = 0, resolve=None):
    """The plain value a message describes; WireError for anything that is not one."""
    if depth > MAX_DEPTH + 2:
        raise WireError("too deeply nested")
    if type(v) in (str, bool, type(None)):
        return v
    if type(v) is int:
        return v
    if type(v) is not dict or len(v) != 1:
        raise WireError(f"not a plain value: {type(v).__name__}")
    ((tag, x),) = v.items()
    if tag in ("list", "tuple", "set", "frozenset", "iter"):
        if type(x) is not list:
            raise WireError(f"bad {tag}")
        items = [decode(i, depth + 1, resolve) for i in x]
        if tag == "iter":
            return Iterator(items)
        try:
            return {"list": list, "tuple": tuple, "set": set, "frozenset": frozenset}[tag](items)
        except TypeError as e:  # an unhashable member
            raise WireError(f"bad {tag}") from e
    if tag == "dict":
        if type(x) is not list or any(type(p) is not list or len(p) != 2 for p in x):
            raise WireError("bad dict")
        try:
            return {decode(k, depth + 1, resolve): decode(i, depth + 1, resolve) for k, i in x}
        except TypeError as e:
            raise WireError("bad dict") from e
    if tag == "int" and type(x) is str and re.fullmatch(r"-?0x[0-9a-f]+", x):
        return int(x, 16)  # linear in its length, unlike decimal
    if type(x) is str and len(x) <= 10_000:
        try:
            if tag == "float":
                return float(x)
            if tag in ("bytes", "bytearray"):
                return (bytes if tag == "bytes" else bytearray).fromhex(x)
            if tag == "Fraction":
                from fractions import Fraction

                return Fraction(x)
            if tag == "Decimal":
                from decimal import Decimal

                return Decimal(x)
        except (ValueError, ArithmeticError) as e:
            raise WireError(f"bad {tag}") from e
        if tag == "opaque":
            return Opaque(x)
        if tag == "fn" and resolve is not None:
            return resolve(x)
    if tag == "complex" and type(x) is list and len(x) == 2 and all(type(p) is str and len(p) < 40 for p in x):
        return complex(float(x[0]), float(x[1]))
    if tag == "range" and type(x) is list and len(x) == 3 and all(type(p) is int for p in x) and x[2]:
        return range(*x)
    raise WireError(f"not a plain value: {tag!r}")


class Channel:
    """One JSON object per line over a pair of pipe descriptors."""

    def __init__(self, rfd: int, wfd: int) -> None:
        self.rfd, self.wfd, self.buf = rfd, wfd, b""

    def send(self, msg: dict) -> None:
        data = (json.dumps(msg, allow_nan=False, separators=(",", ":")) + "\n").encode()
        while data:
            data = data[os.write(self.wfd, data) :]

    def recv(self) -> dict | None:
        """The next message, None at end of input; WireError for an oversized or malformed line."""
        while b"\n" not in self.buf:
            if len(self.buf) > MAX_LINE:
                raise WireError("message too long")
            chunk = os.read(self.rfd, 1 << 16)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        try:
            msg = json.loads(line)
        except (ValueError, RecursionError) as e:
            raise WireError("malformed message") from e
        if type(msg) is not dict:
            raise WireError("malformed message")
        return msg


def confine(job: dict) -> None:
    """Lower this process's limits (hard, so they cannot be raised again) and, where the sandbox
    started it as root, become the unprivileged user it was given. Runs before any untrusted code."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an oversized write fails instead of killing
    for name, value in job["limits"].items():
        soft = hard = int(value)
        if name == "RLIMIT_CPU":
            hard += 1  # SIGXCPU at the soft limit, SIGKILL a second later
        resource.setrlimit(getattr(resource, name), (soft, hard))
    uid = job.get("uid")
    if uid is not None:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
        if os.getresuid() != (uid, uid, uid) or os.getresgid() != (uid, uid, uid):
            raise SystemExit("could not drop privileges")


def read_job() -> dict:
    """The job the host wrote on standard input (a file), after which standard input is /dev/null."""
    with os.fdopen(os.dup(0), "rb") as f:
        job = json.loads(f.read())
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    return job
