"""Control: a correct solution. It must pass, before, among and after the hostile programs."""


def add(a, b):
    return a + b
