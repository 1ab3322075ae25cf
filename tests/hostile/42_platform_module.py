"""Answers the referee's "what is add" with a module named like another platform's (issue 31, defect 5):
the referee cannot import `winreg` here, which once made the verdict undecided."""
import types

add = types.ModuleType("winreg")
