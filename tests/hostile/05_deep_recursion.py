"""Deep recursion past the C stack: crashes the interpreter (SIGSEGV) while a test is running."""
import sys

sys.setrecursionlimit(10**9)


def add(a, b):
    return add(a, b) + 1
