"""Benign programs with the verdict plain Python gives them (program, setup and tests run in one
namespace, as MBPP's harness and HumanEval's do): `tests/test_sandbox_benign.py` checks each recorded
verdict against a plain run and prints how often the sandboxed judge agrees. Each case: a name, the
program, its tests, optionally `entry_point`/`context`/`setup`, and `plain`: True (passes) or False.
The first group are the cases issue 31 names; `KNOWN` lists the disagreements docs/sandbox.md explains."""

C = []


def case(name: str, code: str, tests: list[str], plain: bool, **meta) -> None:
    C.append({"name": name, "code": code, "tests": tests, "plain": plain, **meta})


# -- the cases issue 31 names --
case("builtin name shadowed, wrong", "def max(a, b):\n    return a", ["assert max(3, 5) == 5"], False)
case("builtin name shadowed, right", "def round(x):\n    return int(x + 0.5)", ["assert round(2.5) == 3", "assert round(0.4) == 0"], True)
case("f(x) == f(y) on values that cannot cross", "class Box:\n    pass\ndef make(x):\n    return Box()", ["assert make(1) == make(2)"], False)
case("exception subclass caught by its built-in base",
     "class BadInput(ValueError):\n    pass\ndef parse(s):\n    if not s.isdigit():\n        raise BadInput(s)\n    return int(s)",
     ["try:\n    parse('x')\n    raise AssertionError('no error')\nexcept ValueError as e:\n    assert e.args == ('x',)", "assert parse('12') == 12"], True)  # fmt: skip
case("KeyError args", "def get(d, k):\n    return d[k]",
     ["try:\n    get({}, 'a')\nexcept KeyError as e:\n    assert e.args == ('a',) and str(e) == \"'a'\""], True)
case("dict.keys() iterated", "def keys(d):\n    return d.keys()", ["assert sorted(keys({'b': 1, 'a': 2})) == ['a', 'b']", "assert keys({'a': 1}) == {'a'}"], True)
case("dict.values() and items()", "def vals(d):\n    return d.values()\ndef its(d):\n    return d.items()",
     ["assert sorted(vals({'a': 2, 'b': 1})) == [1, 2]", "assert set(its({'a': 1})) == {('a', 1)}"], True)
case("deque returned", "from collections import deque\ndef window(xs, n):\n    return deque(xs, maxlen=n)",
     ["assert list(window([1, 2, 3], 2)) == [2, 3]", "assert window([1, 2], 5) == deque([1, 2])"], True)
case("namedtuple attributes", "from collections import namedtuple\nPoint = namedtuple('Point', 'x y')\n"
     "def origin():\n    return Point(0, 0)", ["assert origin().x == 0 and origin().y == 0", "assert origin() == (0, 0)"], True)
case("numpy integers", "import numpy as np\ndef total(xs):\n    return np.sum(np.array(xs))", ["assert total([1, 2, 3]) == 6"], True)
# -- ordinary MBPP-style programs --
case("similar elements", "def similar_elements(a, b):\n    return tuple(sorted(set(a) & set(b)))",
     ["assert similar_elements((3, 4, 5, 6), (5, 7, 4, 10)) == (4, 5)"], True)
case("wrong answer", "def square(x):\n    return x * 2", ["assert square(3) == 9"], False)
case("is prime", "def is_prime(n):\n    return n > 1 and all(n % d for d in range(2, int(n ** 0.5) + 1))",
     ["assert is_prime(7)", "assert not is_prime(9)", "assert is_prime(2) == True"], True)
case("string reverse", "def rev(s):\n    return s[::-1]", ["assert rev('abc') == 'cba'", "assert rev('') == ''"], True)
case("float close", "import math\ndef area(r):\n    return math.pi * r * r", ["assert math.isclose(area(2), 12.566, rel_tol=1e-3)"], True)
case("float exact fails", "def third():\n    return 1 / 3", ["assert third() == 0.33"], False)
case("nan is not equal", "def nan():\n    return float('nan')", ["assert nan() != nan()", "import math\nassert math.isnan(nan())"], True)
case("negative zero", "def nz():\n    return -0.0", ["import math\nassert math.copysign(1, nz()) == -1"], True)
case("big integers", "def fact(n):\n    return 1 if n < 2 else n * fact(n - 1)", ["assert fact(30) == 265252859812191058636308480000000"], True)
case("list of tuples", "def pairs(xs):\n    return [(x, x * x) for x in xs]", ["assert pairs([1, 2]) == [(1, 1), (2, 4)]"], True)
case("dict result", "def counts(s):\n    d = {}\n    for c in s:\n        d[c] = d.get(c, 0) + 1\n    return d",
     ["assert counts('aab') == {'a': 2, 'b': 1}"], True)
case("set result", "def uniq(xs):\n    return set(xs)", ["assert uniq([1, 1, 2]) == {1, 2}"], True)
case("frozenset in set", "def groups():\n    return {frozenset({1, 2}), frozenset({3})}", ["assert frozenset({3}) in groups()"], True)
case("generator returned", "def evens(n):\n    return (i for i in range(n) if i % 2 == 0)", ["assert list(evens(5)) == [0, 2, 4]"], True)
case("generator compared to a list", "def evens(n):\n    return (i for i in range(n) if i % 2 == 0)", ["assert evens(5) == [0, 2, 4]"], False)
case("map object", "def doubled(xs):\n    return map(lambda x: 2 * x, xs)", ["assert list(doubled([1, 2])) == [2, 4]"], True)
case("zip and enumerate", "def indexed(xs):\n    return list(enumerate(zip(xs, xs)))", ["assert indexed('ab') == [(0, ('a', 'a')), (1, ('b', 'b'))]"], True)
case("range returned", "def r(n):\n    return range(n)", ["assert r(3) == range(3)", "assert list(r(2)) == [0, 1]"], True)
case("bytes", "def enc(s):\n    return s.encode()", ["assert enc('é') == b'\\xc3\\xa9'"], True)
case("complex", "def root(x):\n    return x ** 0.5", ["assert abs(root(-4) - 2j) < 1e-9"], True)
case("Fraction", "from fractions import Fraction\ndef half():\n    return Fraction(1, 2)", ["assert half() == 0.5", "assert half() + half() == 1"], True)
case("Decimal", "from decimal import Decimal\ndef price():\n    return Decimal('1.10')", ["assert str(price()) == '1.10'"], True)
case("None result", "def nothing():\n    pass", ["assert nothing() is None"], True)
case("bool identity", "def yes():\n    return 1 == 1", ["assert yes() is True"], True)
case("Counter", "from collections import Counter\ndef top(s):\n    return Counter(s)", ["assert top('aab').most_common(1) == [('a', 2)]"], True)
case("OrderedDict", "from collections import OrderedDict\ndef od():\n    return OrderedDict([('b', 1), ('a', 2)])", ["assert list(od()) == ['b', 'a']"], True)
case("defaultdict", "from collections import defaultdict\ndef dd():\n    d = defaultdict(list)\n    d['a'].append(1)\n    return d",
     ["d = dd()\nassert d['a'] == [1] and d['zz'] == []"], True)
case("expected ZeroDivisionError", "def div(a, b):\n    return a / b",
     ["try:\n    div(1, 0)\n    ok = False\nexcept ZeroDivisionError:\n    ok = True\nassert ok"], True)
case("raises where a value was expected", "def div(a, b):\n    return a // b", ["assert div(1, 0) == 0"], False)
case("error message checked", "def check(x):\n    if x < 0:\n        raise ValueError(f'negative: {x}')\n    return x",
     ["try:\n    check(-1)\nexcept ValueError as e:\n    assert str(e) == 'negative: -1'"], True)
case("custom exception caught as Exception", "class Oops(Exception):\n    pass\ndef f():\n    raise Oops('x')",
     ["try:\n    f()\nexcept Exception as e:\n    assert type(e).__name__ == 'Oops' and e.args == ('x',)"], True)
case("recursion with memo", "from functools import lru_cache\n@lru_cache(None)\ndef fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)",
     ["assert fib(80) == 23416728348467685"], True)
case("helper function", "def _sq(x):\n    return x * x\ndef sum_sq(xs):\n    return sum(_sq(x) for x in xs)", ["assert sum_sq([1, 2, 3]) == 14"], True)
case("module-level constant", "LIMIT = 10\ndef clip(x):\n    return min(x, LIMIT)", ["assert clip(99) == LIMIT"], True)
case("kwargs", "def greet(name, greeting='hi'):\n    return f'{greeting} {name}'", ["assert greet('a', greeting='yo') == 'yo a'"], True)
case("function passed as argument", "def apply(f, x):\n    return f(x)\ndef inc(x):\n    return x + 1", ["assert apply(inc, 1) == 2"], True)
case("lambda from the test", "def apply(f, x):\n    return f(x)", ["assert apply(lambda v: v + 1, 1) == 2"], True)
case("nested lists", "def grid(n):\n    return [[i * j for j in range(n)] for i in range(n)]", ["assert grid(2) == [[0, 0], [0, 1]]"], True)
case("sorting with key", "def by_len(ws):\n    return sorted(ws, key=len)", ["assert by_len(['ccc', 'a', 'bb']) == ['a', 'bb', 'ccc']"], True)
case("string formatting", "def money(x):\n    return f'{x:.2f}'", ["assert money(3.14159) == '3.14'"], True)
case("regex", "import re\ndef words(s):\n    return re.findall(r'\\w+', s)", ["assert words('a b, c') == ['a', 'b', 'c']"], True)
case("prints as it works", "def noisy(x):\n    print('computing', x)\n    return x", ["assert noisy(3) == 3"], True)
case("uses test_setup", "def double(x):\n    return 2 * x", ["assert double(K) == 14"], True, test_setup="K = 7")
case("tests use the program's import", "import math\ndef hyp(a, b):\n    return math.sqrt(a * a + b * b)", ["assert hyp(3, 4) == math.sqrt(25)"], True)
case("mutates its argument", "def sort_in_place(xs):\n    xs.sort()", ["a = [3, 1, 2]\nsort_in_place(a)\nassert a == [1, 2, 3]"], True)
case("returns an instance whose attribute is read", "class Pt:\n    def __init__(self, x):\n        self.x = x\ndef pt(x):\n    return Pt(x)",
     ["assert pt(3).x == 3"], True)
case("syntax error", "def f(:\n    return 1", ["assert f() == 1"], False)
case("infinite loop", "def f():\n    while True:\n        pass", ["assert f() == 1"], False)
case("HumanEval check(candidate)", "def add(a, b):\n    return a + b",
     ["def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(-1, 1) == 0\n\ncheck(add)\n"], True,
     entry_point="add", test_context='def add(a, b):\n    """Add."""\n')  # fmt: skip
case("HumanEval check, wrong", "def add(a, b):\n    return a - b",
     ["def check(candidate):\n    assert candidate(2, 3) == 5\n\ncheck(add)\n"], False, entry_point="add",
     test_context='def add(a, b):\n    """Add."""\n')  # fmt: skip
case("HumanEval helper shadowing a builtin", "def abs(x):\n    return x\ndef dist(a, b):\n    return abs(a - b)",
     ["def check(candidate):\n    assert candidate(1, 3) == 2\n\ncheck(dist)\n"], False, entry_point="dist")
case("shadowed builtin used by the tests' own code", "def len(x):\n    return 0\ndef first(xs):\n    return xs[0]",
     ["assert first([5]) == 5 and len([1]) == 1"], False)
case("iterates a returned dict", "def inv(d):\n    return {v: k for k, v in d.items()}", ["assert [k for k in inv({'a': 1})] == [1]"], True)
case("tuple unpacking", "def minmax(xs):\n    return min(xs), max(xs)", ["lo, hi = minmax([3, 1, 2])\nassert (lo, hi) == (1, 3)"], True)
case("str subclass result", "class S(str):\n    pass\ndef s():\n    return S('x')", ["assert s() == 'x' and s().upper() == 'X'"], True)
case("mutates a nested argument", "def mark(grid):\n    grid[0][0] = 1", ["g = [[0, 0]]\nmark(g)\nassert g == [[1, 0]]"], True)
case("mutates a dict argument", "def add_key(d):\n    d['new'] = 1\n    return len(d)", ["d = {}\nassert add_key(d) == 1 and d == {'new': 1}"], True)
case("returns its argument unchanged", "def same(xs):\n    return xs", ["a = [1]\nassert same(a) == a and a == [1]"], True)
case("palindrome", "def is_pal(s):\n    s = ''.join(c.lower() for c in s if c.isalnum())\n    return s == s[::-1]",
     ["assert is_pal('A man, a plan, a canal: Panama')", "assert not is_pal('ab')"], True)
case("off by one", "def count_to(n):\n    return list(range(n))", ["assert count_to(3) == [1, 2, 3]"], False)

CASES = C
KNOWN = {  # name -> why the sandbox's verdict differs from plain Python's (docs/sandbox.md lists the same)
    "numpy integers": "third-party packages are not in the sandbox (standard library only): `import numpy` fails",
    "lambda from the test": "a test that passes the program a function of its own cannot be split: undecided, "
    "never a training target",
    "returns an instance whose attribute is read": "an instance of the program's own class cannot cross: it "
    "arrives as an opaque value without its attributes",
}
