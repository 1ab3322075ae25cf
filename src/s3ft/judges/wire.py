"""What crosses the sandbox boundary: plain values as tagged JSON, one message per line, and the
confinement both sandboxed runners apply to themselves before running anything else.

This file is not imported in the sandbox: its source is prepended to each runner's source
(`runner_candidate.py`, `runner_referee.py`), which run under `python -S` with the standard library
only. It is importable on the host for tests.

Only plain values travel: None, bool, int, float, str, bytes, complex, list, tuple, set, frozenset,
dict, range, Fraction and Decimal (subclasses travel as their base type); the common containers of
`collections` (namedtuple, deque, Counter, OrderedDict, defaultdict with a built-in factory) and dict
views; numpy scalars and arrays as the Python values they hold; iterators as `Iterator` (consumed,
at most `MAX_ITEMS` items); a reference to one of the program's functions (`Remote`). Anything else
arrives as `Opaque(type name)`, which equals nothing but itself. The decoder builds nothing but
these types (a namedtuple class from checked identifiers), so no object with an `__eq__` of its
own, no code and no live reference can come out of a message.
"""

import collections
import json
import keyword
import os
import re
import resource
import signal

MAX_LINE = 64 * 2**20
MAX_ITEMS = 1_000_000
MAX_DEPTH = 60
_SCALAR = (str, bool, type(None))
_VIEWS = {type({}.keys()): "keys", type({}.values()): "values", type({}.items()): "items"}
_FACTORIES = {f.__name__: f for f in (list, dict, set, int, float, str, tuple, frozenset)}
_MAPPINGS = {"Counter": lambda pairs: collections.Counter(dict(pairs)), "OrderedDict": collections.OrderedDict}
_namedtuples: dict = {}


class WireError(ValueError):
    """A message that is not plain, well-formed data."""


class Opaque:
    """A value of a type that cannot cross the boundary: equal only to itself, as a plain object is."""

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name

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


def _type_name(t: type) -> str:
    return f"{t.__module__}.{t.__qualname__}" if t.__module__ != "builtins" else t.__qualname__


def encode(x, strict: bool = False, depth: int = 0, budget: list | None = None):
    """The JSON-ready form of a plain value; for anything else Opaque, or WireError if `strict`."""
    budget = budget if budget is not None else [MAX_ITEMS]
    budget[0] -= 1
    if budget[0] < 0 or depth > MAX_DEPTH:
        raise WireError("value too large or too deeply nested to send")
    t = type(x)
    if t in _SCALAR:
        return x

    def each(items) -> list:
        return [encode(i, strict, depth + 1, budget) for i in items]

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
    if isinstance(x, dict):
        pairs = [each(p) for p in dict.items(x)]
        if isinstance(x, collections.defaultdict):
            factory = x.default_factory
            return {"defaultdict": [factory.__name__ if factory in _FACTORIES.values() else None, pairs]}
        tag = "Counter" if isinstance(x, collections.Counter) else "OrderedDict" if isinstance(x, collections.OrderedDict) else "dict"
        return {tag: pairs}
    if isinstance(x, tuple) and type(getattr(t, "_fields", None)) is tuple:  # a namedtuple
        return {"namedtuple": [str(t.__name__), [str(f) for f in t._fields], each(tuple.__iter__(x))]}
    for base, tag in ((list, "list"), (tuple, "tuple"), (frozenset, "frozenset"), (set, "set")):
        if isinstance(x, base):
            return {tag: each(base.__iter__(x))}
    if isinstance(x, collections.deque):
        return {"deque": [x.maxlen, each(x)]}
    if t in _VIEWS:
        return {_VIEWS[t]: [each(i) for i in x] if _VIEWS[t] == "items" else each(x)}
    name = _type_name(t)
    if name in ("fractions.Fraction", "decimal.Decimal"):
        return {name.split(".")[1]: str(x)}
    if t.__module__ == "numpy" and hasattr(x, "tolist"):  # a numpy scalar or array: the values it holds
        return encode(x.tolist(), strict, depth + 1, budget)
    if hasattr(t, "__next__") and hasattr(t, "__iter__"):
        return {"iter": each(x)}
    if strict:
        raise WireError(f"a value of type {name} cannot be sent as plain data")
    return {"opaque": name[:200]}


def _namedtuple(name, fields):
    key = (name, tuple(fields))
    if key not in _namedtuples:
        names = [name, *fields]
        if (len(_namedtuples) > 1000 or len(fields) > 255 or len(set(fields)) != len(fields)
                or not all(type(n) is str and n.isidentifier() and not keyword.iskeyword(n) for n in names)
                or any(f.startswith("_") for f in fields)):  # fmt: skip
            raise WireError("bad namedtuple")
        _namedtuples[key] = collections.namedtuple(name, fields)
    return _namedtuples[key]


_SEQUENCES = {"list": list, "tuple": tuple, "set": set, "frozenset": frozenset, "iter": Iterator,
              "keys": lambda items: dict.fromkeys(items).keys(),
              "values": lambda items: dict(enumerate(items)).values()}  # fmt: skip
_PAIRS = {"dict": dict, "items": lambda pairs: dict(pairs).items(), **_MAPPINGS}


def decode(v, depth: int = 0, resolve=None):
    """The plain value a message describes; WireError for anything that is not one."""
    if depth > MAX_DEPTH + 2:
        raise WireError("too deeply nested")
    if type(v) in (str, bool, type(None), int):
        return v
    if type(v) is not dict or len(v) != 1:
        raise WireError(f"not a plain value: {type(v).__name__}")
    ((tag, x),) = v.items()

    def items(x) -> list:
        if type(x) is not list:
            raise WireError(f"bad {tag}"[:100])
        return [decode(i, depth + 1, resolve) for i in x]

    def pairs(x) -> list:
        if type(x) is not list or any(type(p) is not list or len(p) != 2 for p in x):
            raise WireError(f"bad {tag}"[:100])
        return [(decode(k, depth + 1, resolve), decode(i, depth + 1, resolve)) for k, i in x]

    try:
        if tag in _SEQUENCES:
            return _SEQUENCES[tag](items(x))
        if tag in _PAIRS:
            return _PAIRS[tag](pairs(x))
        if tag == "deque" and type(x) is list and len(x) == 2 and (x[0] is None or type(x[0]) is int):
            return collections.deque(items(x[1]), x[0])
        if tag == "defaultdict" and type(x) is list and len(x) == 2 and (x[0] is None or x[0] in _FACTORIES):
            return collections.defaultdict(_FACTORIES.get(x[0]), pairs(x[1]))
        if tag == "namedtuple" and type(x) is list and len(x) == 3 and type(x[1]) is list:
            values = items(x[2])
            if len(values) == len(x[1]):
                return _namedtuple(x[0], x[1])(*values)
        if tag == "int" and type(x) is str and re.fullmatch(r"-?0x[0-9a-f]+", x):
            return int(x, 16)  # linear in its length, unlike decimal
        if type(x) is str and len(x) <= 10_000:
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
            if tag == "opaque":
                return Opaque(x)
            if tag == "fn" and resolve is not None:
                return resolve(x)
        if tag == "complex" and type(x) is list and len(x) == 2 and all(type(p) is str and len(p) < 40 for p in x):
            return complex(float(x[0]), float(x[1]))
        if tag == "range" and type(x) is list and len(x) == 3 and all(type(p) is int for p in x) and x[2]:
            return range(*x)
    except WireError:
        raise
    except (ValueError, TypeError, ArithmeticError, LookupError) as e:  # a value that does not decode
        raise WireError(f"bad {tag}"[:100]) from e
    raise WireError(f"not a plain value: {tag!r}"[:100])


class Channel:
    """One JSON object per line over a pair of pipe descriptors; linear in the message's size."""

    def __init__(self, rfd: int, wfd: int) -> None:
        self.rfd, self.wfd, self.buf, self.scanned = rfd, wfd, bytearray(), 0

    def send(self, msg: dict) -> None:
        write_all(self.wfd, (json.dumps(msg, allow_nan=False, separators=(",", ":")) + "\n").encode())

    def recv(self) -> dict | None:
        """The next message, None at end of input; WireError for an oversized or malformed line."""
        while (end := self.buf.find(b"\n", self.scanned)) < 0:
            self.scanned = len(self.buf)
            if len(self.buf) > MAX_LINE:
                raise WireError("message too long")
            chunk = os.read(self.rfd, 1 << 20)
            if not chunk:
                return None
            self.buf += chunk
        line = bytes(self.buf[:end])
        del self.buf[: end + 1]
        self.scanned = 0
        try:
            msg = json.loads(line)
        except (ValueError, RecursionError) as e:
            raise WireError("malformed message") from e
        if type(msg) is not dict:
            raise WireError("malformed message")
        return msg


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


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
