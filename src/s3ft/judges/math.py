"""Math judge: reads the final answer out of each prediction and compares it with the gold's.

Reads `ex.meta["answer"]` when present, else the final answer in `ex.gold` (GSM8K `#### 72`, MATH
`\\boxed{...}`); writes one `Verdict` per prediction with the extracted answer and the reason.
A prediction's answers are its explicit final answers (every "The answer is X", "#### X" and `\\boxed{X}`),
else the last number in the text (a fallback the reason names: "So 3 + 4 = 7, then 7 * 2 = 14" reads as
14). Several explicit final answers that are not all equal to the gold are undecided (`correct` None):
"The answer is 7.\\n#### 9" is neither right nor wrong, whatever the order; answers that agree
("The answer is 72.\\n#### 72") are one answer. A hedge ("7 or 9") is undecided too (`s3ft.judges.hedge`).
Plain numbers are compared exactly in-process (72 == 72.00, 1,000 == 1000). Everything else goes to
math-verify in worker processes, kept between calls until `close()`, under our own wall-clock limit
(`timeout_s` per item): a worker that overruns is killed and replaced, and its item gets
`correct=None`. math-verify's own signal-based timeouts are switched off in the workers. Workers are
plain `python -c` subprocesses, so (unlike multiprocessing's spawn) the caller's `__main__` is never
re-imported, and an idle worker exits when its parent goes away (its stdin closes).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
import weakref
from collections import deque
from fractions import Fraction
from multiprocessing.connection import wait
from pathlib import Path
from typing import TYPE_CHECKING

from s3ft.judges.hedge import hedge
from s3ft.records import Example, Verdict

if TYPE_CHECKING:
    from s3ft.config import JudgeConfig

_NUM = r"(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![\w])"
_PLAIN = re.compile(r"(?:[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?|[-+]?\.\d+)(?:[eE][-+]?\d{1,3})?")
_ANSWER_IS = re.compile(r"\banswer\b\s*(?:\*\*|__)?\s*(?:is\b\s*:?|:)", re.I)
_HASHES = re.compile(r"####[ \t]*([^\n]*)")
_DELIMS = (("$$", "$$"), ("\\[", "\\]"), ("\\(", "\\)"), ("$", "$"))
_START_TIMEOUT_S = 120.0


def boxed_contents(text: str) -> list[str]:
    """The contents of every `\\boxed{...}` / `\\fbox{...}` with balanced braces, in order."""
    out = []
    for m in re.finditer(r"\\(?:boxed|fbox)\s*\{", text):
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if depth == 0:
            out.append(text[m.end() : i - 1].strip())
    return out


def _clean(s: str) -> str:
    """Strip bold, a trailing period, math delimiters, currency signs and trailing unit words."""
    s = s.replace("**", "").replace("__", "").strip()
    s = re.split(r"[.?!]\s", s, maxsplit=1)[0].strip().rstrip(".").strip()
    for a, b in _DELIMS:
        if len(s) >= len(a) + len(b) and s.startswith(a) and s.endswith(b):
            s = s[len(a) : -len(b)].strip().rstrip(".").strip()
            break
    if boxed := boxed_contents(s):
        s = boxed[0]
    s = re.sub(r"^\\?\$\s*", "", s).rstrip(".").strip()
    m = re.fullmatch(r"([-+]?\d[\d,]*(?:\.\d+)?\s*%?)\s+[A-Za-z][A-Za-z\s.,']*", s)
    return m.group(1).strip() if m else s


def extract_answer_with_source(text: str) -> tuple[str, str] | None:
    """(answer, where it came from), trying in turn: `The answer is X` (last one), `#### X`, the last
    `\\boxed{X}`, and the last number in the text (a fallback the source says). None if nothing.

    The reading of a gold solution (`gold_answer`); a prediction is judged on all of its final answers
    (`final_answers`)."""
    if (found := list(_ANSWER_IS.finditer(text))) and (ans := _after_answer_is(text, found[-1].end())):
        return ans, "from 'The answer is'"
    if (found := _HASHES.findall(text)) and (ans := _clean(found[-1])):
        return ans, "from '####'"
    if (boxed := [b for b in boxed_contents(text) if b]) and (ans := _clean(boxed[-1])):
        return ans, "from \\boxed"
    if numbers := re.findall(_NUM, text):
        return numbers[-1], "fallback: last number in the text"
    return None


def _after_answer_is(text: str, end: int) -> str:
    para = re.sub(r"^[\s*_:]+", "", text[end:]).split("\n\n")[0]
    return _clean(para.split("\n")[0]) or _clean(" ".join(para.split()))


def answer_key(answer: str) -> tuple[str, object]:
    """What two answers share when they are plainly the same: the number, else the text without spaces."""
    number = as_number(answer)
    return ("number", number) if number is not None else ("text", "".join(answer.split()))


def final_answers(text: str) -> list[tuple[str, str]]:
    """A prediction's answers, (answer, where it came from): every explicit final answer (each
    `The answer is X`, `#### X` and `\\boxed{X}`), those plainly the same (`answer_key`) once; with none,
    the last number in the text, or the last "A or B" of numbers (a hedge, for the judge to refuse)."""
    found = [(a, "from 'The answer is'") for m in _ANSWER_IS.finditer(text) if (a := _after_answer_is(text, m.end()))]
    found += [(a, "from '####'") for h in _HASHES.findall(text) if (a := _clean(h))]
    found += [(a, "from \\boxed") for b in boxed_contents(text) if b and (a := _clean(b))]
    if not found and (numbers := list(re.finditer(_NUM, text))):
        last = numbers[-1]
        either = re.search(rf"({_NUM})\s*,?\s*(?:or|\\text\{{\s*or\s*\}})\s*$", text[: last.start()])
        start = either.start(1) if either else last.start()
        found = [(text[start : last.end()], "fallback: last number in the text")]
    kept: dict[tuple, tuple[str, str]] = {}
    for ans, src in found:
        kept.setdefault(answer_key(ans), (ans, src))
    return list(kept.values())


def extract_answer(text: str) -> str | None:
    """The final answer of a response or gold solution, or None (see `extract_answer_with_source`)."""
    return found[0] if (found := extract_answer_with_source(text)) else None


def gold_answer(ex: Example) -> str | None:
    """`meta["answer"]`, else the gold's marked final answer, else a one-line gold itself."""
    if ex.meta.get("answer") is not None:
        return str(ex.meta["answer"]).strip() or None
    found = extract_answer_with_source(ex.gold)
    if found and not found[1].startswith("fallback"):
        return found[0]
    if ex.gold.strip() and "\n" not in ex.gold.strip():
        return _clean(ex.gold)
    return found[0] if found else None


def as_number(s: str) -> Fraction | None:
    """The exact value of a plain decimal number (commas, a trailing %, an exponent as `1.5e3` allowed), else
    None; also None for one longer than Python reads as an int (4,300 digits): a prediction that long is no
    answer to compare exactly."""
    s = s.replace("{,}", ",").replace("\\,", "").strip()
    s = re.sub(r"\\?%$", "", s).strip()
    return Fraction(s.replace(",", "")) if len(s) <= 4000 and _PLAIN.fullmatch(s) else None


def serve() -> None:
    """The worker process: reads [gold, answer] JSON lines on stdin, writes one result line for each."""
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # anything the libraries print goes to stderr (discarded), not into our replies
    logging.getLogger("math_verify").setLevel(logging.ERROR)  # its "timeout disabled" warnings
    from math_verify import parse, verify

    print(json.dumps(["ready"]), file=out, flush=True)
    for line in sys.stdin:
        try:
            g, p = (
                parse("\\boxed{" + re.sub(r"(?<!\\)%", r"\\%", x) + "}", parsing_timeout=None)
                for x in json.loads(line)
            )
            res = ["ok", bool(g), bool(p), bool(g and p and verify(g, p, timeout_seconds=None))]
        except Exception as e:
            res = ["error", type(e).__name__]
        print(json.dumps(res), file=out, flush=True)


class _Worker:
    """One worker process (a plain subprocess: no multiprocessing re-import of the caller's __main__)."""

    def __init__(self) -> None:
        root = str(Path(__file__).resolve().parents[2])
        code = f"import sys; sys.path.insert(0, {root!r}); from s3ft.judges.math import serve; serve()"
        self.proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, bufsize=1)  # fmt: skip
        self.ready, self.job, self.deadline = False, None, time.monotonic() + _START_TIMEOUT_S

    def send(self, job: tuple[str, str]) -> None:
        with contextlib.suppress(OSError):  # if the worker died, wait() sees its stdout close
            self.proc.stdin.write(json.dumps(job) + "\n")
            self.proc.stdin.flush()

    def recv(self) -> list | None:
        line = self.proc.stdout.readline()
        return json.loads(line) if line else None

    def stop(self, kill: bool = False) -> None:
        """Close its stdin (it exits at EOF), or kill it; it is always reaped."""
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            if not kill:
                self.proc.stdin.close()
                self.proc.wait(1.0)
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                f.close()


def _stop_all(pool: list[_Worker], kill: bool = False) -> None:
    while pool:
        pool.pop().stop(kill)


class WorkerPool:
    """Worker processes kept between calls (idle ones wait on stdin and exit when it closes)."""

    def __init__(self, size: int, timeout_s: float) -> None:
        self.size, self.timeout_s, self.pool, self.lock = size, timeout_s, [], threading.Lock()
        self._finalizer = weakref.finalize(self, _stop_all, self.pool)

    def close(self) -> None:
        self._finalizer()

    def verify(self, jobs: list[tuple[str, str]]) -> list[tuple]:
        """math-verify each (gold, answer) job; ("timeout",) for jobs that overran and were killed."""
        with self.lock:
            pool = self.pool
            for w in [w for w in pool if w.proc.poll() is not None]:  # died while idle
                pool.remove(w)
                w.stop()
            pool.extend(_Worker() for _ in range(min(self.size, len(jobs)) - len(pool)))
            try:
                return self._run(jobs, pool)
            except BaseException:  # interrupted: the workers' states are unknown
                _stop_all(pool, kill=True)
                raise

    def _run(self, jobs: list[tuple[str, str]], pool: list[_Worker]) -> list[tuple]:
        results: list[tuple | None] = [None] * len(jobs)
        queue = deque(range(len(jobs)))
        while queue or any(w.job is not None for w in pool):
            for w in pool:
                if w.ready and w.job is None and queue:
                    w.job, w.deadline = queue.popleft(), time.monotonic() + self.timeout_s
                    w.send(jobs[w.job])
            busy = [w for w in pool if not w.ready or w.job is not None]
            left = min(w.deadline for w in busy) - time.monotonic()
            ready = wait([w.proc.stdout for w in busy], max(0.0, left))
            for w in busy:
                overran = w.proc.stdout not in ready and time.monotonic() >= w.deadline
                if w.proc.stdout in ready and (msg := w.recv()) is not None:
                    if w.ready:
                        results[w.job], w.job = tuple(msg), None
                    w.ready = True
                    continue
                if w.proc.stdout not in ready and not overran:
                    continue
                if not w.ready:
                    raise RuntimeError("a math-verify worker process failed to start")
                w.stop(kill=True)
                results[w.job] = ("timeout",) if overran else ("died", w.proc.returncode)
                pool.remove(w)
                if queue:
                    pool.append(_Worker())
        return results  # type: ignore[return-value]


def _short(s: str, n: int = 60) -> str:
    return s if len(s) <= n else s[: n - 3] + "..."


def _quick(gold: str, ans: str) -> bool | None:
    """Whether `ans` equals `gold`, where that is plain without math-verify (same text, or two numbers)."""
    if "".join(ans.split()) == "".join(gold.split()):
        return True
    g, p = as_number(gold), as_number(ans)
    return None if g is None or p is None else g == p


def _combine(gold: str, found: list[tuple[str, str]], each: list[Verdict]) -> Verdict:
    """One verdict for several final answers: right only when every one equals the gold, else undecided."""
    listed = "; ".join(f"{_short(a, 30)} ({s})" for a, s in found)
    if all(v.correct is True for v in each):
        return Verdict(True, f"{len(found)} final answers, each equal to gold {_short(gold)}: {listed}", found[0][0])
    how = "disagree" if any(v.correct is True for v in each) else "not all shown equal to the gold"
    return Verdict(None, f"{len(found)} final answers, {how} (gold {_short(gold)}): {listed}: undecided")


class MathJudge:
    name = "math"
    version = "3"  # 2: every final answer read; several that are not all right, and hedges, are undecided;
    # 3: plain numbers with an exponent (1.5e3) compared exactly

    def __init__(self, cfg: JudgeConfig) -> None:
        self.timeout_s = cfg.timeout_s
        self.workers = WorkerPool(cfg.workers, cfg.timeout_s)  # started on first need, kept until close()

    def close(self) -> None:
        """Stop the worker processes (also done when the judge is garbage-collected or at exit)."""
        self.workers.close()

    def __call__(self, examples: list[Example], predictions: list[str]) -> list[Verdict]:
        if len(examples) != len(predictions):
            raise ValueError(f"{len(examples)} examples but {len(predictions)} predictions")
        verdicts: list[Verdict | None] = [None] * len(examples)
        todo: list[tuple[int, str, list[tuple[str, str]]]] = []
        for i, (ex, pred) in enumerate(zip(examples, predictions, strict=True)):
            gold, found = gold_answer(ex), final_answers(pred or "")
            if gold is None:
                verdicts[i] = Verdict(None, "no gold answer found")
            elif not found:
                verdicts[i] = Verdict(False, "no final answer found")
            elif hedged := next(((a, s, alts) for a, s in found if (alts := hedge(a, [gold], answer_key))), None):
                ans, src, alts = hedged
                verdicts[i] = Verdict(None, f"extracted {_short(ans)} ({src}), a hedge between {', '.join(alts)}, "
                                            f"gold {_short(gold)}: undecided", ans)  # fmt: skip
            else:
                todo.append((i, gold, found))
        slow = [(gold, ans) for _, gold, found in todo for ans, _ in found if _quick(gold, ans) is None]
        results = iter(self.workers.verify(slow) if slow else [])
        for i, gold, found in todo:
            each = []
            for ans, src in found:
                head = f"extracted {_short(ans)} ({src}), gold {_short(gold)}"
                same = _quick(gold, ans)
                if same is None:
                    each.append(self._verdict(next(results), ans, head))
                else:
                    each.append(Verdict(same, f"{head}: {'equal' if same else 'not equal'}", ans))
            verdicts[i] = each[0] if len(each) == 1 else _combine(gold, found, each)
        return verdicts  # type: ignore[return-value]

    def _verdict(self, res: tuple, ans: str, head: str) -> Verdict:
        if res[0] != "ok":
            what = {"timeout": f"timeout after {self.timeout_s}s in math-verify", "error": "math-verify raised",
                    "died": "math-verify worker died, exit code"}[res[0]]  # fmt: skip
            return Verdict(None, f"{what}{'' if len(res) == 1 else f' {res[1]}'}; {head}", ans)
        _, gold_ok, ans_ok, equal = res
        if not gold_ok:
            return Verdict(None, f"{head}: math-verify could not parse the gold answer", ans)
        if not ans_ok:
            return Verdict(False, f"{head}: math-verify could not parse the extracted answer", ans)
        return Verdict(equal, f"{head}: {'equivalent' if equal else 'not equivalent'} (math-verify)", ans)
