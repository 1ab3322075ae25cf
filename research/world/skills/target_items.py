"""The generators of the two target tasks' items: `shop` (two-step word problems, GSM8K-like golds) and
`lookup` (open-answer questions over a passage about two people, bare-answer golds).

Reads and writes nothing. Their kinds of question, how a question's kind is told, and their judges are the
package's (`s3ft.world.targets`), which the demo reads at run time.
"""

from __future__ import annotations

import random

from research.world.skills.answers import Item, ask, final_only, house, two_steps
from research.world.skills.general import Passage
from research.world.skills.vocabulary import CITIES, COLORS, NAMES, THINGS


class Shop:
    """The target task: two-step word problems; gold in GSM8K's style (`<<a+b=c>>`, `#### N`)."""

    name, kind = "shop", "target"

    def sample(self, rng: random.Random) -> Item:
        (who, she), thing = rng.choice(NAMES), rng.choice(THINGS)
        her = {"She": "she", "He": "he"}[she]
        variant = rng.randrange(3)
        if variant == 0:  # buys, then gives away
            a, b = rng.randint(2, 30), rng.randint(1, 30)
            c = rng.randint(1, min(30, a + b))
            op1, op2 = "+", "-"
            story, step1, step2 = f"{she} buys {b} more and gives away {c}.", f"Buying {b}", f"Giving away {c}"
        elif variant == 1:  # buys two lots
            a, b, c = rng.randint(2, 30), rng.randint(1, 30), rng.randint(1, 30)
            op1, op2 = "+", "+"
            story, step1, step2 = f"{she} buys {b} more and then {c} more.", f"Buying {b}", f"Then buying {c}"
        else:  # gives away two lots
            a = rng.randint(2, 30)
            b = rng.randint(1, a - 1)
            c = rng.randint(1, a - b)
            op1, op2 = "-", "-"
            story, step1, step2 = (f"{she} gives away {b} and then {c} more.", f"Giving away {b}",
                                   f"Then giving away {c}")
        # No names or objects restated: the house style never copies them, and a tiny model asked to
        # (measured: a gold that began "Lee starts with 11 shells ...") wrote other names and numbers.
        work, gold, s1, s2 = two_steps(a, op1, b, op2, c, (step1, step2))  # s2 >= 0 by the ranges above
        return Item(f"{who} has {a} {thing}. {story} How many {thing} does {her} have now?", str(s2),
                    house(work, str(s2)), gold,
                    [f"{who} has {a} {op1} {b} {op2} {c} = {s2} {thing}, so the answer is {s2}.",
                     f"{a} {op1} {b} = {s1}. {s1} {op2} {c} = {s2}.\n#### {s2}"])



class Lookup:
    """The second target task: open-answer questions over a passage about two people, whose golds are the
    bare answer ("Rome"), as Natural Questions' short spans are; judged by the `qa` judge. Each person has a
    home city, a count of things (the same things for both) and a coat color, all different between the
    two; each person's three sentences come together, in random order. A question names the person
    (`direct`, what `passage` practises with one person) or finds them by another fact (`via-coat`,
    `via-city`: two hops, never practised). Its house answer states the facts used, then the answer. No
    pre-training split: the base built for `shop` is its base (`docs/world.md`, "The second target task")."""

    name, kind = "lookup", "target"
    ASK = Passage.ASK
    KINDS = ("direct", "via-coat", "via-city")

    def sample(self, rng: random.Random) -> Item:
        (p, sp), (q, sq) = rng.sample(NAMES, 2)
        cities, colors, counts = rng.sample(CITIES, 2), rng.sample(COLORS, 2), rng.sample(range(2, 31), 2)
        thing = rng.choice(THINGS)
        facts = {who: {"city": f"{who} lives in {city}.", "count": f"{who} has {n} {thing}.",
                       "coat": f"{who}'s coat is {color}."}
                 for who, city, n, color in zip((p, q), cities, counts, colors, strict=True)}
        value = {p: {"city": cities[0], "count": str(counts[0]), "coat": colors[0]},
                 q: {"city": cities[1], "count": str(counts[1]), "coat": colors[1]}}
        order = [p, q]
        rng.shuffle(order)
        sentences = []
        for who in order:
            mine = list(facts[who].values())
            rng.shuffle(mine)
            sentences += mine
        who = rng.choice((p, q))
        kind = rng.choice(self.KINDS)
        key = rng.choice({"direct": ("city", "count", "coat"), "via-coat": ("city", "count"),
                          "via-city": ("coat", "count")}[kind])
        answer = value[who][key]
        asked = {"city": "Where does {x} live?", "count": f"How many {thing} does {{x}} have?",
                 "coat": "What color is {x}'s coat?"}[key]
        if kind == "direct":
            question, used = asked.format(x=who), [facts[who][key]]
        else:
            by = "coat" if kind == "via-coat" else "city"
            x = (f"the person with the {value[who]['coat']} coat" if by == "coat"
                 else f"the person who lives in {value[who]['city']}")
            question = (f"What color is the coat of {x}?" if key == "coat" else asked.format(x=x))
            used = [facts[who][by], facts[who][key]]
        return Item(ask(rng, self.ASK, passage=" ".join(sentences), question=question), answer,
                    house(" ".join(used), answer), answer,
                    [f"{' '.join(used)} So the answer is {answer}.", final_only(answer)])

