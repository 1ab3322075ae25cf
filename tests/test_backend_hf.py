"""The transformers backend on the tiny offline model: batching, order, stops, seeds, NLL, model ids."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from s3ft.backends.base import GenParams
from s3ft.backends.hf import HFBackend, StopOnText, cut_at_stop, load_tokenizer, weights_id
from s3ft.config import ModelConfig
from s3ft.errors import S3FTError

PROMPTS = [[{"role": "user", "content": "x" * n + " What is 2 + 3?"}] for n in (1, 40, 5, 70, 2, 13, 8)]


def _cfg(path, **kw) -> ModelConfig:
    return ModelConfig(path=str(path), dtype="float32", device="cpu", **kw)


@pytest.fixture(scope="module")
def backend(tiny_model_dir) -> HFBackend:
    """The tiny model in float32 with its weights scaled up: random init at std 0.02 gives near-uniform
    logits (greedy then repeats one token); scaled, each prompt gets its own varied continuation."""
    b = HFBackend(_cfg(tiny_model_dir), batch_size=4)
    with torch.no_grad():
        for p in b.model.parameters():
            p.mul_(25)
    yield b
    b.close()


def test_generate_order_and_batching(backend, monkeypatch):
    params = GenParams(max_new_tokens=8)
    batched = backend.generate(PROMPTS, params)  # 2 batches of 4 and 3, left-padded
    assert len(batched) == len(PROMPTS) and len(set(batched)) > 3
    monkeypatch.setattr(backend, "batch_size", 1)
    assert [backend.generate([p], params)[0] for p in PROMPTS] == batched
    assert backend.generate([], params) == []


def test_max_new_tokens(backend, monkeypatch):
    widths, new = [], []
    generate = backend.model.generate

    def spy(**kw):
        seqs = generate(**kw)
        widths.append(kw["input_ids"].shape[1])
        new.append(seqs.shape[1] - kw["input_ids"].shape[1])
        return seqs

    monkeypatch.setattr(backend.model, "generate", spy)
    short = backend.generate(PROMPTS[:3], GenParams(max_new_tokens=3))
    long = backend.generate(PROMPTS[:3], GenParams(max_new_tokens=10))
    assert new == [3, 10]
    assert all(b.startswith(a) and len(a) < len(b) for a, b in zip(short, long, strict=True))


def test_stop_strings_cut(backend):
    full = backend.generate(PROMPTS[:3], GenParams(max_new_tokens=16))
    stop = full[1][4:7]
    cut = backend.generate(PROMPTS[:3], GenParams(max_new_tokens=16, stop=("never-there", stop)))
    for f, c in zip(full, cut, strict=True):
        assert c == (f[: f.index(stop)] if stop in f else f)
    assert stop not in cut[1] and len(cut[1]) <= 4


def test_stop_criterion_ignores_the_prompt(backend):
    tok = backend.tokenizer
    prompt = tok.encode("question:\n", add_special_tokens=False)
    crit = StopOnText(["\n\n"], len(prompt), tok)
    row = lambda text: torch.tensor([prompt + tok.encode(text, add_special_tokens=False)])  # noqa: E731
    assert not crit(row("\nabc"), None)[0]  # "\n\n" only across the prompt boundary
    assert crit(row("ab\n\ncd"), None)[0]
    assert cut_at_stop("a STOP b END", ("END", "STOP")) == "a " and cut_at_stop("abc", ()) == "abc"


def test_seeded_sampling_reproducible(backend):
    state = torch.random.get_rng_state()
    s1 = backend.generate(PROMPTS[:5], GenParams(max_new_tokens=10, temperature=1.0, seed=7))
    s2 = backend.generate(PROMPTS[:5], GenParams(max_new_tokens=10, temperature=1.0, seed=7))
    s3 = backend.generate(PROMPTS[:5], GenParams(max_new_tokens=10, temperature=1.0, seed=8))
    assert s1 == s2 and s1 != s3
    assert torch.equal(state, torch.random.get_rng_state())  # the global RNG is left alone


def test_checkpoint_decoding_defaults_do_not_leak(backend, monkeypatch):
    greedy, sampled = GenParams(max_new_tokens=8), GenParams(max_new_tokens=8, temperature=0.9, seed=1)
    before = backend.generate(PROMPTS[:4], greedy), backend.generate(PROMPTS[:4], sampled)
    gc = backend.model.generation_config  # as e.g. Qwen2.5 ships: sampling with top-k and a penalty
    for k, v in dict(do_sample=True, top_k=2, temperature=0.3, repetition_penalty=1.5, min_p=0.5).items():
        monkeypatch.setattr(gc, k, v)
    assert (backend.generate(PROMPTS[:4], greedy), backend.generate(PROMPTS[:4], sampled)) == before


def test_nll_matches_manual(backend):
    tok, model = backend.tokenizer, backend.model
    prompt = [{"role": "user", "content": "How many apples?"}]
    answer = "5 apples"
    full = tok.apply_chat_template([*prompt, {"role": "assistant", "content": answer}], return_dict=True)
    p_len = len(tok.apply_chat_template(prompt, add_generation_prompt=True, return_dict=True)["input_ids"])
    ids = full["input_ids"]
    with torch.no_grad():
        logp = model(torch.tensor([ids])).logits[0].float().log_softmax(-1)
    manual = -sum(logp[t - 1, ids[t]].item() for t in range(p_len, len(ids)))
    assert tok.decode(ids[p_len:]) == answer + "<|im_end|>\n"  # end-of-turn tokens are scored too

    prompts = [PROMPTS[3], prompt, PROMPTS[0]]  # padded in a batch with a longer and a shorter row
    scores = backend.nll(prompts, ["a much longer answer, to force padding of the others", answer, ""])
    nll, n = scores[1]
    assert n == len(ids) - p_len and nll == pytest.approx(manual, rel=1e-4)
    assert all(s > 0 and k > 0 for s, k in scores)
    assert scores[2][1] == len(tok.encode("<|im_end|>\n", add_special_tokens=False))


def test_nll_rejects_prefix_inconsistent_template(backend, monkeypatch):
    bad = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    bad += "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
    monkeypatch.setattr(backend.tokenizer, "chat_template", bad)
    with pytest.raises(S3FTError, match="prefix-consistent"):
        backend.nll([PROMPTS[0]], ["hi"])


def test_chat_template_override(tiny_model_dir, tmp_path):
    tpl = tmp_path / "plain.jinja"
    tpl.write_text(
        "{% for m in messages %}{{ m['role'] | upper }}: {{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
    )
    b = HFBackend(_cfg(tiny_model_dir, chat_template=str(tpl)), batch_size=2)
    ids = b.tokenizer.apply_chat_template(PROMPTS[0], add_generation_prompt=True, tokenize=False)
    assert ids == "USER: " + PROMPTS[0][0]["content"] + "\nASSISTANT:"
    assert "+template:" in b.model_id and b.model_id.startswith(weights_id(str(tiny_model_dir)))
    assert len(b.generate(PROMPTS[:3], GenParams(max_new_tokens=2))) == 3
    with pytest.raises(S3FTError, match="no such file"):
        load_tokenizer(_cfg(tiny_model_dir, chat_template=str(tmp_path / "missing.jinja")))


def test_a_template_that_rejects_a_system_role_gets_it_folded_into_the_first_user_turn(tiny_model_dir):
    """Mistral-7B-Instruct-v0.2's kind of template raises on a system turn: load_tokenizer folds it (the same
    tokenizer serves generation, NLL and TRL's training), and prompt + answer still starts with the prompt."""
    mistral = Path(__file__).parent / "fixtures" / "mistral_chat_template.jinja"
    b = HFBackend(_cfg(tiny_model_dir, chat_template=str(mistral)), batch_size=2)
    prompt = [{"role": "system", "content": "Be brief."}, *PROMPTS[0]]
    text = b.tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)
    assert text.count("[INST]") == 1 and "[INST] Be brief.\n\n" + PROMPTS[0][0]["content"] in text
    assert len(b.generate([prompt, PROMPTS[1]], GenParams(max_new_tokens=2))) == 2
    [(nll, tokens)] = b.nll([prompt], ["4"])
    assert tokens >= 1 and nll > 0


def test_missing_chat_template_is_a_clear_error(tiny_model_dir, tmp_path):
    d = Path(shutil.copytree(tiny_model_dir, tmp_path / "no_template"))
    (d / "chat_template.jinja").unlink()
    with pytest.raises(S3FTError, match="model.chat_template"):
        HFBackend(_cfg(d))


def test_model_id_follows_the_weights(tiny_model_dir, tmp_path):
    d = Path(shutil.copytree(tiny_model_dir, tmp_path / "copy"))
    first = weights_id(str(d))
    assert first == weights_id(str(d)) and first.startswith(str(d.resolve()) + "#")
    (d / "config.json").write_text((d / "config.json").read_text() + "\n")
    second = weights_id(str(d))
    assert second != first
    (d / ".hidden").write_text("ignored")
    assert weights_id(str(d)) == second
    assert weights_id("org/model", "v1") == "org/model@v1"  # not in the local hub cache: as given


@pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")
def test_adapter_is_merged_and_keyed(tiny_model_dir, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    lora = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(base, lora).save_pretrained(tmp_path / "adapter")
    plain = HFBackend(_cfg(tiny_model_dir), batch_size=2)
    tuned = HFBackend(_cfg(tiny_model_dir), batch_size=2, adapter=str(tmp_path / "adapter"))
    assert tuned.model_id.startswith(plain.model_id + "+adapter:")
    assert not hasattr(tuned.model, "peft_config")  # merged: a plain transformers model
    p, c = PROMPTS[:2], ["four", "five"]
    tuned_nll, plain_nll = tuned.nll(p, c), plain.nll(p, c)
    assert [n for _, n in tuned_nll] == [n for _, n in plain_nll]
    assert [s for s, _ in tuned_nll] != pytest.approx([s for s, _ in plain_nll], rel=1e-3)
    with pytest.raises(S3FTError, match="adapter"):
        HFBackend(_cfg(tiny_model_dir), adapter=str(tmp_path / "nowhere"))


def test_each_generation_says_why_it_ended(backend, monkeypatch):
    from s3ft.backends.base import finish_of

    cut = backend.generate(PROMPTS[:3], GenParams(max_new_tokens=3))
    assert [finish_of(t) for t in cut] == ["length"] * 3  # cut off at max_new_tokens
    full = backend.generate(PROMPTS[:3], GenParams(max_new_tokens=16))
    stopped = backend.generate(PROMPTS[:3], GenParams(max_new_tokens=16, stop=(full[0][2:5],)))
    assert finish_of(stopped[0]) == "stop" and len(stopped[0]) < len(full[0])  # a stop string
    first = backend.tokenizer.encode(backend.generate(PROMPTS[:1], GenParams(max_new_tokens=1))[0],
                                     add_special_tokens=False)[0]
    monkeypatch.setattr(backend, "eos_ids", [first])  # its first token now ends the turn
    ended = backend.generate(PROMPTS[:1], GenParams(max_new_tokens=8))[0]
    assert (str(ended), finish_of(ended)) == ("", "stop")


def test_model_id_names_what_changes_outputs_besides_the_weights(tiny_model_dir):
    import transformers

    ids = {dtype: HFBackend(_cfg(tiny_model_dir).model_copy(update={"dtype": dtype})).model_id
           for dtype in ("float32", "bfloat16")}
    assert ids["float32"] != ids["bfloat16"]
    assert ids["float32"].startswith(weights_id(str(tiny_model_dir)) + f"+hf:{transformers.__version__}:float32:cpu:")
