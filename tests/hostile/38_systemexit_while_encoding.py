"""Raises SystemExit(255) while the runner serialises its answer (issue 31, defect 1): the answer is a
generator that the runner consumes to send it, outside the call's own error handling."""


def _answer(a, b):
    yield a + b
    raise SystemExit(255)


def add(a, b):
    return _answer(a, b)
