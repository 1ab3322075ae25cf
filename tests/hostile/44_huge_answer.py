"""Answers with a 40 MiB string (issue 31, defect 7): the channel was quadratic in a message's size, so a
large answer stalled the judge for minutes; it must be judged within the time limit."""


def add(a, b):
    return "x" * (40 * 2**20)
