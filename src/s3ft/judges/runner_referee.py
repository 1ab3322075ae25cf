"""Runs in the referee's sandbox: evaluates the tests, with each of the program's functions replaced
by a stub that asks the candidate's sandbox to call it and gets back a plain value.

Reads its job (`setup`, `context`, `tests`, `entry_point`, `limits`, `uid`, descriptors) on standard
input; writes the verdict's facts as one JSON object on the result descriptor, which only the host
holds. The program never runs here, and nothing it sends is more than data: an object whose `__eq__`
always answers True, a patched builtin or assert, a forged result line or a nonce read from a
frame cannot reach this process.
"""

import ast
import builtins
import importlib
import json
import os
import sys
import traceback

from s3ft.judges.wire import (  # sandbox: inline
    Channel,
    Opaque,
    Remote,
    WireError,
    confine,
    decode,
    encode,
    read_job,
    write_all,
)


class Stop(BaseException):
    """Ends a test at once, whatever the test catches (`except ValueError` catches no WireError): the
    program is gone, sent what does not decode, or was to be passed a value that cannot cross.
    `Program.fault` says which, and the result reports it, not the test's own outcome."""


class ProgramError(Exception):
    """An exception the program reported that is not a built-in exception type."""


_subclasses: dict = {}


def _exception(info) -> BaseException:
    """The exception the program raised, rebuilt from data: its built-in class (a subclass of it under
    the program's class name when that differs) with its args; ProgramError where there is none."""
    if type(info) is not dict or type(info.get("type")) is not str or type(info.get("msg", "")) is not str:
        raise WireError("malformed exception")
    name, msg = info["type"][:100], info.get("msg", "")[:300]
    base = getattr(builtins, info.get("base") or "", None) if type(info.get("base")) is str else None
    if not (isinstance(base, type) and issubclass(base, Exception) and base.__module__ == "builtins"):
        return ProgramError(f"{name}: {msg}")
    args = decode(info["args"]) if info.get("args") is not None else [msg]
    cls = base
    if name != base.__name__:
        if (name, base) not in _subclasses and len(_subclasses) < 1000:
            try:
                _subclasses[name, base] = type(name, (base,), {"__module__": "program"})
            except (TypeError, ValueError):  # a name type() refuses (a NUL in it)
                _subclasses[name, base] = base
        cls = _subclasses.get((name, base), base)
    if type(args) is not list:
        raise WireError("malformed exception")
    try:
        return cls(*args)
    except Exception:  # args its constructor refuses (UnicodeDecodeError's five): the args alone
        e = cls.__new__(cls)
        e.args = tuple(args)
        return e


class Program:
    def __init__(self, chan: Channel) -> None:
        self.chan = chan
        self.opaque = None  # the type of the last value the program returned that could not cross
        self.fault = None  # {"gone": True}, {"malformed": why} or {"cannot_split": why}: the first one

    def stop(self, **fault):
        self.fault = self.fault or fault
        raise Stop()

    def recv(self) -> dict:
        try:
            msg = self.chan.recv()
        except (WireError, MemoryError) as e:
            self.stop(malformed=f"{type(e).__name__}: {e}"[:200])
        if msg is None:
            self.stop(gone=True)
        return msg

    def request(self, msg: dict) -> dict:
        try:
            self.chan.send(msg)
        except OSError:
            self.stop(gone=True)
        return self.recv()


class RemoteFunction(Remote):
    """Stands for one of the program's functions: arguments go out, a plain value comes back."""

    def __init__(self, program: Program, name: str) -> None:
        super().__init__(name)
        self.program = program
        self.__name__ = name

    def __call__(self, *args, **kwargs):
        try:
            out = {"op": "call", "name": self.name, "args": encode(list(args), strict=True),
                   "kwargs": encode(kwargs, strict=True)}  # fmt: skip
        except WireError as e:
            self.program.stop(cannot_split=str(e)[:300])
        reply = self.program.request(out)
        try:
            _write_back(args, reply.pop("mutated", {}))
            if set(reply) == {"ok"}:
                value = decode(reply["ok"])
                if isinstance(value, Opaque):
                    self.program.opaque = value.type_name
                return value
            if set(reply) != {"raise"}:
                raise WireError("malformed reply")
            exc = _exception(reply["raise"])
        except (WireError, RecursionError, MemoryError) as e:
            self.program.stop(malformed=f"{type(e).__name__}: {e}"[:200])
        raise exc


def _write_back(args: tuple, mutated) -> None:
    """Change the caller's arguments in place as the program changed its copies of them."""
    if type(mutated) is not dict:
        raise WireError("malformed reply")
    for i, value in mutated.items():
        new = decode(value)
        arg = args[int(i)] if type(i) is str and i.isdigit() and int(i) < len(args) else None
        if type(new) not in (list, dict, set, bytearray) or not isinstance(arg, type(new)):
            raise WireError("malformed reply")
        if isinstance(arg, (list, bytearray)):
            arg[:] = new
        else:
            arg.clear()
            arg.update(new)


def free_names(sources: list[str], ns: dict) -> set[str]:
    """Global names the tests read but neither define nor get from the setup. Built-in names are among
    them: a program's own `max` shadows the built-in in the tests, as in one shared namespace."""
    loaded, stored = set(), set()
    for src in sources:
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, ast.Name):
                (loaded if isinstance(node.ctx, ast.Load) else stored).add(node.id)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                stored.add(node.name)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                stored.update((a.asname or a.name).split(".")[0] for a in node.names)
    return loaded - stored - set(ns)


def bind(program: Program, ns: dict, names: set[str], entry: str | None) -> None:
    """Put a stub for each of the program's functions (a plain value for other names) into `ns`."""
    reply = program.request({"op": "names", "names": sorted(names | ({entry} if entry else set()))})
    got = reply.get("names")
    if set(reply) != {"names"} or type(got) is not dict or not set(got) <= names | {entry}:
        raise WireError("malformed reply")
    for name, kind in got.items():
        if kind == "fn":
            ns[name] = RemoteFunction(program, name)
        elif type(kind) is dict and set(kind) == {"value"}:
            ns[name] = decode(kind["value"])
        elif type(kind) is dict and set(kind) == {"module"} and type(kind["module"]) is str:
            # as in one shared namespace, the tests may use a module the program imported: the
            # referee imports its own copy, of the standard library only
            if kind["module"].split(".")[0] in sys.stdlib_module_names:
                try:  # a module this platform lacks (msvcrt, winreg): the tests find no such name
                    ns[name] = importlib.import_module(kind["module"])
                except Exception:
                    ns.pop(name, None)
        elif kind != "missing":
            raise WireError("malformed reply")
        elif name == entry:
            ns.pop(name, None)


def failure(e: BaseException, src: str, i: int) -> dict:
    line = None
    for frame in traceback.extract_tb(e.__traceback__):
        if frame.filename == f"<test {i + 1}>" and frame.lineno:
            line = src.splitlines()[frame.lineno - 1].strip()[:200]
    try:
        msg = str(e)[:300]
    except BaseException:
        msg = "<unprintable>"
    return {"failed": i, "exc": type(e).__name__[:100], "msg": msg, "line": line}


def referee(job: dict, program: Program, result_fd: int) -> dict:
    tests = job["tests"]
    res = {"stage": "tests", "passed": 0, "total": len(tests), "failed": None, "exc": None, "msg": None}
    ns = {"__name__": "__tests__", "__builtins__": builtins}
    try:
        exec(compile(job["setup"] + "\n" + job.get("context", ""), "<setup>", "exec"), ns)
    except BaseException as e:
        return res | {"stage": "setup", "exc": type(e).__name__, "msg": str(e)[:300]}
    write_all(result_fd, b'{"phase": "program"}\n')  # from here on, a failure may be the program's doing
    try:
        hello = program.recv()
        if set(hello) == {"error"} and type(hello["error"]) is dict:
            err = hello["error"]
            stage = "setup" if err.get("stage") == "setup" else "code"
            return res | {"stage": stage, "exc": str(err.get("type"))[:100], "msg": str(err.get("msg"))[:300]}
        if hello != {"ready": True}:
            raise WireError("malformed greeting")
        bind(program, ns, free_names(tests, ns), job.get("entry_point"))
    except Stop:
        return res | {"stage": "code"} | program.fault
    except Exception as e:  # whatever the program's names were, they could not be bound
        return res | {"stage": "code", "malformed": f"{type(e).__name__}: {e}"[:200]}
    for i, src in enumerate(tests):
        error = None
        try:
            exec(compile(src, f"<test {i + 1}>", "exec"), dict(ns))
        except BaseException as e:
            error = e
        if program.fault:  # even where the test caught what stopped it
            return res | {"failed": i} | program.fault
        if error is None:
            res["passed"] += 1
        elif res["failed"] is None:
            res |= failure(error, src, i)
            if program.opaque:
                res["opaque"] = program.opaque[:200]
        program.opaque = None
    return res


def main() -> None:
    job = read_job()
    program = Program(Channel(job["fds"]["in"], job["fds"]["out"]))
    result_fd = job["fds"]["result"]
    confine(job)
    write_all(result_fd, json.dumps(referee(job, program, result_fd)).encode() + b"\n")
    os._exit(0)


main()
