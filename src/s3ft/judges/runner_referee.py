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

from s3ft.judges.wire import Channel, Remote, WireError, confine, decode, encode, read_job  # sandbox: inline


class ProgramGone(Exception):
    """The program's process closed the channel."""


class CannotSplit(Exception):
    """A value the test passes cannot be sent to the program as plain data."""


class ProgramError(Exception):
    """An exception the program reported that is not a built-in exception type."""


def _exception(info) -> BaseException:
    if type(info) is not dict or type(info.get("type")) is not str or type(info.get("msg", "")) is not str:
        raise WireError("malformed exception")
    cls = getattr(builtins, info["type"], None)
    ok = isinstance(cls, type) and issubclass(cls, Exception) and cls.__module__ == "builtins"
    msg = info.get("msg", "")[:300]
    return cls(msg) if ok else ProgramError(f"{info['type'][:100]}: {msg}")


class Program:
    def __init__(self, chan: Channel) -> None:
        self.chan = chan

    def recv(self) -> dict:
        msg = self.chan.recv()
        if msg is None:
            raise ProgramGone()
        return msg

    def request(self, msg: dict) -> dict:
        try:
            self.chan.send(msg)
        except OSError as e:
            raise ProgramGone() from e
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
            raise CannotSplit(str(e)) from None
        reply = self.program.request(out)
        if set(reply) == {"ok"}:
            return decode(reply["ok"])
        if set(reply) == {"raise"}:
            raise _exception(reply["raise"])
        raise WireError("malformed reply")


def free_names(sources: list[str], ns: dict) -> set[str]:
    """Global names the tests read but neither define nor get from the setup or builtins."""
    loaded, stored = set(), set()
    for src in sources:
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, ast.Name):
                (loaded if isinstance(node.ctx, ast.Load) else stored).add(node.id)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                stored.add(node.name)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                stored.update((a.asname or a.name).split(".")[0] for a in node.names)
    return loaded - stored - set(ns) - set(dir(builtins))


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
                ns[name] = importlib.import_module(kind["module"])
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
    return {"failed": i, "exc": type(e).__name__, "msg": msg, "line": line}


def run(job: dict, program: Program) -> dict:
    tests = job["tests"]
    res = {"stage": "tests", "passed": 0, "total": len(tests), "failed": None, "exc": None, "msg": None}
    ns = {"__name__": "__tests__", "__builtins__": builtins}
    try:
        exec(compile(job["setup"] + "\n" + job.get("context", ""), "<setup>", "exec"), ns)
    except BaseException as e:
        return res | {"stage": "setup", "exc": type(e).__name__, "msg": str(e)[:300]}
    try:
        hello = program.recv()
        if set(hello) == {"error"} and type(hello["error"]) is dict:
            err = hello["error"]
            stage = "setup" if err.get("stage") == "setup" else "code"
            return res | {"stage": stage, "exc": str(err.get("type"))[:100], "msg": str(err.get("msg"))[:300]}
        if hello != {"ready": True}:
            raise WireError("malformed greeting")
        bind(program, ns, free_names(tests, ns), job.get("entry_point"))
    except ProgramGone:
        return res | {"stage": "code", "gone": True}
    except (WireError, RecursionError, MemoryError) as e:
        return res | {"stage": "code", "malformed": str(e)[:200]}
    for i, src in enumerate(tests):
        try:
            exec(compile(src, f"<test {i + 1}>", "exec"), dict(ns))
            res["passed"] += 1
        except ProgramGone:
            return res | {"failed": i, "gone": True}
        except CannotSplit as e:
            return res | {"failed": i, "cannot_split": str(e)[:300]}
        except WireError as e:
            return res | {"failed": i, "malformed": str(e)[:200]}
        except BaseException as e:
            if res["failed"] is None:
                res |= failure(e, src, i)
    return res


def main() -> None:
    job = read_job()
    program = Program(Channel(job["fds"]["in"], job["fds"]["out"]))
    result_fd = job["fds"]["result"]
    confine(job)
    data = json.dumps(run(job, program)).encode() + b"\n"
    while data:
        data = data[os.write(result_fd, data) :]
    os._exit(0)


main()
