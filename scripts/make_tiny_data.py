"""Write the embedded default's small word-problem set in the real openai/gsm8k schema.

Rebuilds `src/s3ft/data/tiny_gsm8k_{train,test}.jsonl` from a seed: two-step arithmetic word
problems whose gold solutions use GSM8K's conventions (`<<a+b=c>>` calculator annotations and a
final `#### N` line), plus `tiny_gsm8k_house_style.jsonl`: the same problems answered in the tiny
base model's own terser style ("3 + 4 = 7. 7 - 2 = 5. The answer is 5."), valid but different from
the gold, as an instruct model's answers differ from GSM8K's reference solutions. Run: `python scripts/make_tiny_data.py`.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

NAMES = ["Ava", "Ben", "Cleo", "Dan", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jun", "Kai", "Lena"]
ITEMS = ["apples", "marbles", "books", "stickers", "coins", "pencils", "shells", "cards"]


def problem(rng: random.Random) -> dict:
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    a, b = rng.randint(2, 20), rng.randint(2, 20)
    c = rng.randint(1, min(9, a + b - 1))
    if rng.random() < 0.5:
        total, final = a + b, a + b - c
        q = f"{name} has {a} {item} and gets {b} more. Then {name} gives away {c}. How many {item} does {name} have now?"
        gold = (f"{name} has {a} + {b} = <<{a}+{b}={total}>>{total} {item} after getting more.\n"
                f"After giving away {c}, {name} has {total} - {c} = <<{total}-{c}={final}>>{final} {item}.\n#### {final}")
        house = f"{a} + {b} = {total}. {total} - {c} = {final}. The answer is {final}."
    else:
        total, final = a * c, a * c + b
        q = f"{name} buys {c} bags with {a} {item} in each bag and already had {b}. How many {item} does {name} have?"
        gold = (f"The bags hold {c} * {a} = <<{c}*{a}={total}>>{total} {item}.\n"
                f"Together with the {b} from before, {name} has {total} + {b} = <<{total}+{b}={final}>>{final} {item}.\n"
                f"#### {final}")
        house = f"{c} * {a} = {total}. {total} + {b} = {final}. The answer is {final}."
    return {"question": q, "answer": gold, "house": house}


OUT = Path(__file__).resolve().parents[1] / "src" / "s3ft" / "data"


def main(out: Path = OUT, seed: int = 0) -> None:
    rng = random.Random(seed)
    rows, seen = [], set()
    while len(rows) < 64:
        r = problem(rng)
        if r["question"] not in seen:
            seen.add(r["question"])
            rows.append(r)
    for split, part in (("train", rows[:48]), ("test", rows[48:])):
        with open(out / f"tiny_gsm8k_{split}.jsonl", "w") as f:
            f.writelines(json.dumps({"question": r["question"], "answer": r["answer"]}) + "\n" for r in part)
        print(f"wrote {len(part)} rows to {out / f'tiny_gsm8k_{split}.jsonl'}")
    # The tiny base model's own "house style" answers, used only to teach it (s3ft.tiny.teach).
    with open(out / "tiny_gsm8k_house_style.jsonl", "w") as f:
        f.writelines(json.dumps({"question": r["question"], "house": r["house"]}) + "\n" for r in rows)


if __name__ == "__main__":
    main()
