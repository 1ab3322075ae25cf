"""Makes every value it sends a tagged value that does not decode (issue 31, defect 5): the referee's
errors while binding or decoding the program's values once came back as "the referee failed", so the
verdict was undecided (never a training target, never a failure either). It must be a failure."""
import __main__

__main__.encode = lambda *a, **k: {"complex": ["1", "x"]}


def add(a, b):
    return a + b
