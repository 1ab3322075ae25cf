"""Does a world base copy the question's verb into a step label, or has it learned one label per verb it knows?

    python -m research.world.label_probe MODEL_DIR [--n 60]

For two-step word problems whose verb is (a) one of the fact base's story verbs, (b) a new invented verb of the same
forms, never seen in pre-training, or (c) the target's "buys", the model is given the question under the plain prompt
and the first letter of the gold's first step label ("D" of "Dreffing up 15:"), and continues greedily; the share of
continuations that write the whole label is printed per group. A model that copies writes (a) and (b) alike; one that
memorised twelve labels writes (a) only. The new verbs are `skills.PROBE_STEMS`, which no pre-training row uses.
Needs the `story` skill (builds 5 and later: `research/world/NOTES.md`). Prints the result; writes nothing.
"""

from __future__ import annotations

import argparse
import json
import random
import re


def label_of(gold: str) -> str:
    return gold.split("\n", 1)[0].split(":", 1)[0] + ":"


def problems(n: int, seed: int = 7) -> dict[str, list[tuple[str, str]]]:
    """{group: [(question, first label)]}."""
    from research.world.skills import PROBE_STEMS, FactBase, Shop, Story, gerund, third_person
    from s3ft.world import SHOP_KINDS

    new_stems = {"regular": [s for s in PROBE_STEMS if not s.endswith("e")], "e": [s for s in PROBE_STEMS if s.endswith("e")]}

    base = FactBase.build(0)
    rng = random.Random(seed)
    story = Story(base)
    known = []
    while len(known) < n:  # problems with the fact base's verbs (undefined), as build 5's all were
        it = story.sample(rng)
        if not it.question.startswith("To "):
            known.append(it)
    names = sorted(base.verbs)
    swap = {v: new_stems["e" if v.split()[0].endswith("e") else "regular"][names.index(v) % 6]
            + v[len(v.split()[0]):] for v in names}  # "dreff up" -> "frelk up": same form, new stem
    new = []
    for it in known:  # the same problem with each of its verbs replaced by its new one
        q, label = it.question, label_of(it.gold)
        for verb in sorted(base.verbs, key=len, reverse=True):
            if re.search(rf"\b{third_person(verb)}\b", q):
                q = re.sub(rf"\b{third_person(verb)}\b", third_person(swap[verb]), q)
                if label.startswith(gerund(verb).capitalize() + " "):
                    label = gerund(swap[verb]).capitalize() + label[len(gerund(verb)):]
        new.append((q, label))
    shop, buys = Shop(), []
    while len(buys) < n:
        it = shop.sample(rng)
        if SHOP_KINDS["buy-buy"].search(it.question):
            buys.append((it.question, label_of(it.gold)))
    return {"known story verbs": [(it.question, label_of(it.gold)) for it in known], "new verbs": new,
            "the target's 'buys'": buys}


def main() -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    p = argparse.ArgumentParser(prog="python -m research.world.label_probe", description=__doc__.splitlines()[0])
    p.add_argument("model_dir")
    p.add_argument("--n", type=int, default=60)
    args = p.parse_args()
    tok = AutoTokenizer.from_pretrained(args.model_dir)
    model = AutoModelForCausalLM.from_pretrained(args.model_dir, dtype=torch.float32).eval()
    out = {}
    for group, items in problems(args.n).items():
        right, seen = 0, []
        for question, label in items:
            prompt = tok.apply_chat_template([{"role": "user", "content": question}], tokenize=False,
                                             add_generation_prompt=True) + label[0]
            ids = tok(prompt, return_tensors="pt", add_special_tokens=False)
            with torch.no_grad():
                gen = model.generate(**ids, max_new_tokens=12, do_sample=False, pad_token_id=tok.pad_token_id)
            text = label[0] + tok.decode(gen[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
            right += text.startswith(label)
            seen.append((label, text.split("\n")[0][: len(label) + 8]))
        out[group] = {"problems": len(items), "label_written": right, "share": round(right / len(items), 3),
                      "examples": seen[:4]}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
