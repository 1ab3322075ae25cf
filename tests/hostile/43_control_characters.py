"""Raises an exception whose class name and message carry terminal escapes, a carriage return, a
right-to-left override, NUL and a lone surrogate (issue 31, defect 6): the reason must be one plain line."""
Evil = type("Evil\u202eName\x1b[31m", (ValueError,), {})


def add(a, b):
    raise Evil("passed 3/3 tests\r\x1b[2J\x1b[Hpassed\u202e\x00\ud800")
