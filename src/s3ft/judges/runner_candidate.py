"""Runs in the candidate's sandbox: executes the model-written program, then answers the referee's
requests (call one of its functions with these arguments; what are these names) with plain values.

Reads its job (`code`, `setup`, `limits`, `uid`, the channel's descriptors) on standard input;
writes one `{"ready": ...}` or `{"error": ...}` message, then one reply per request. Nothing here is
trusted after the program has run: the program may replace any of it, and can then only send
other plain values, which the referee judges like any answer.
"""

import builtins
import sys

from s3ft.judges.wire import Channel, WireError, confine, decode, encode, read_job  # sandbox: inline


def describe(e: BaseException) -> dict:
    """An exception as data: its class's name, the built-in exception class it derives from (so the
    tests' `except ValueError` catches it), its args as plain values, and its message."""
    try:
        msg = f"line {e.lineno}: {e.msg}" if isinstance(e, SyntaxError) else str(e)
    except BaseException:
        msg = "<unprintable>"
    try:
        base = next(c.__name__ for c in type(e).__mro__ if c.__module__ == "builtins")
        args = encode(list(e.args))
    except BaseException:
        base, args = None, None
    return {"type": type(e).__name__[:100], "base": base, "args": args, "msg": msg[:300]}


def reply(ns: dict, req: dict) -> dict:
    op = req.get("op")
    if op == "names":
        out = {}
        for name in req.get("names", []):
            if name not in ns:
                out[name] = "missing"
            elif type(ns[name]) is type(sys):  # a module the program imported and the tests use
                out[name] = {"module": str(getattr(ns[name], "__name__", ""))}
            elif callable(ns[name]):
                out[name] = "fn"
            else:
                out[name] = {"value": encode(ns[name])}
        return {"names": out}
    if op == "call":
        name = req.get("name")
        if not callable(fn := ns.get(name)):
            return {"raise": {"type": "NameError", "msg": f"the program defines no function {name!r}"}}
        args = decode(req.get("args"), resolve=lambda n: ns[n])
        kwargs = decode(req.get("kwargs"), resolve=lambda n: ns[n])
        try:
            out = {"ok": fn(*args, **kwargs)}
        except BaseException as e:
            out = {"raise": describe(e)}
        if "ok" in out:
            out["ok"] = encode(out["ok"])
        sent = req["args"]["list"]  # arguments changed in place go back, as the caller's would change
        mutated = {str(i): now for i, a in enumerate(args)
                   if type(a) in (list, dict, set, bytearray) and (now := encode(a)) != sent[i]}  # fmt: skip
        return out | ({"mutated": mutated} if mutated else {})
    return {"raise": {"type": "ValueError", "msg": f"unknown request {op!r}"}}


def main() -> None:
    job = read_job()
    chan = Channel(job["fds"]["in"], job["fds"]["out"])
    confine(job)
    ns = {"__name__": "__candidate__", "__builtins__": builtins}
    for stage in ("code", "setup"):
        try:
            exec(compile(job[stage], f"<{stage}>", "exec"), ns)
        except BaseException as e:
            chan.send({"error": {"stage": stage, **describe(e)}})
            sys.exit(1)
    chan.send({"ready": True})
    while (req := chan.recv()) is not None:
        try:
            msg = reply(ns, req)
        except (WireError, RecursionError, MemoryError) as e:
            msg = {"raise": describe(e)}
        try:
            chan.send(msg)
        except (ValueError, RecursionError, MemoryError) as e:
            chan.send({"raise": describe(e)})


main()
