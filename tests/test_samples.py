"""Samples you can read: each token's probability and top 5, split characters, comparisons of
checkpoints with one seed, kept checkpoints, and the Samples tab's keys."""
from __future__ import annotations

import json
import shutil

import torch

from tui_trainer.cli import main
from tui_trainer.engine.checkpoint import load_checkpoint, model_from_checkpoint
from tui_trainer.engine.control import SampleRequest
from tui_trainer.engine.events import SampleText
from tui_trainer.engine.follow import read_events
from tui_trainer.engine.sampling import TokenDecoder, encode_prompt, generate
from tui_trainer.engine.tokenizer import VocabMap, get_tokenizer
from tui_trainer.engine.trainer import Trainer
from tui_trainer.token_text import level, token_text
from tui_trainer.ui.app import create_app

from .conftest import REPO, make_config
from .test_app import press, wait_for

CKPT = REPO / "tests" / "data" / "tiny-sample.ckpt"  # 300 steps of a 1-block model on "the cat sat" lines


def tiny_model():
    ckpt = load_checkpoint(CKPT)
    model, _, vocab = model_from_checkpoint(ckpt, CKPT)
    return model, vocab, get_tokenizer(ckpt["tokenizer"]["name"])


def test_probabilities_entropy_and_top5_are_those_of_a_softmax_of_the_logits():
    model, vocab, tokenizer = tiny_model()
    generation = generate(model, tokenizer, vocab, "the ", 12, temperature=0.8, top_k=3, seed=5)
    context = encode_prompt("the ", tokenizer, vocab)
    for token in generation.tokens:
        with torch.no_grad():
            logits, _ = model(torch.tensor([context[-model.cfg.context_length:]]))
        p = torch.softmax(logits[0, -1], dim=-1)
        chosen = int(vocab.to_model([token["id"]])[0])
        assert abs(token["prob"] - p[chosen].item()) <= 1e-4 * p[chosen].item() + 1e-7
        assert abs(token["entropy"] - torch.special.entr(p).sum().item()) < 1e-3
        top = p.topk(5)
        assert [alt["id"] for alt in token["top"]] == vocab.to_tokenizer(top.indices.tolist())
        assert [alt["prob"] for alt in token["top"]] == sorted((alt["prob"] for alt in token["top"]), reverse=True)
        assert chosen in top.indices[:3].tolist()  # top_k=3 drew it; its probability is the model's own
        context.append(chosen)
    assert generation.text == "the " + "".join(token["piece"] for token in generation.tokens)


def test_the_head_over_the_last_position_gives_the_full_forward_last_row():
    model, _, _ = tiny_model()
    idx = torch.randint(model.cfg.vocab_size, (2, 16))
    with torch.no_grad():
        full, _ = model(idx)
        last, _ = model(idx, last_only=True)
    assert last.shape == (2, 1, model.cfg.vocab_size) and torch.allclose(last[:, 0], full[:, -1], atol=1e-6)


def token_texts(tokenizer, vocab, model_ids):
    """(tokenizer id, text, piece) of each model id, as a generation records them."""
    decoder = TokenDecoder(tokenizer, vocab)
    for model_id in model_ids:
        decoder.record(model_id, 0.0, 0.0, [], [])
    return [(token["id"], token["text"], token["piece"]) for token in decoder.finish()]


def test_a_character_split_over_tokens_reads_whole_and_broken_bytes_are_shown():
    byte = get_tokenizer("byte")
    ids = list("中a".encode()) + [0xE4, 0xB8]  # then a character cut off after two of its three bytes
    assert token_texts(byte, VocabMap("full", 256), ids) == [
        (228, "‹e4›", ""), (184, "‹b8›", ""), (173, "‹ad›", "中"), (97, "a", "a"), (228, "‹e4›", ""),
        (184, "‹b8›", "‹e4 b8›")]
    cl100k = get_tokenizer("cl100k_base")
    tokens = cl100k.encode("山禾 ok\x1b")  # 禾 is two cl100k tokens; ESC would drive the terminal
    vocab = VocabMap("full", cl100k.n_vocab)
    texts = token_texts(cl100k, vocab, tokens)
    assert "".join(piece for _, _, piece in texts) == "山禾 ok‹1b›"
    assert any(text.startswith("‹") and piece == "" for _, text, piece in texts)  # the first half of 禾


def test_the_same_seed_gives_the_same_text_and_another_seed_another():
    model, vocab, tokenizer = tiny_model()
    texts = [generate(model, tokenizer, vocab, "the ", 30, seed=seed).text for seed in (1, 1, 2)]
    assert texts[0] == texts[1] != texts[2]


def test_colour_levels_follow_probability_or_entropy():
    tokens = [{"text": t, "piece": t, "id": i, "prob": p, "entropy": h, "top": []}
              for i, (t, p, h) in enumerate([("a", 0.9, 0.2), ("b", 0.5, 1.0), ("c", 0.2, 2.0), ("d", 0.01, 4.0)])]
    assert [level(t) for t in tokens] == [0, 1, 2, 3] == [level(t, "entropy") for t in tokens]
    text = token_text("p:", tokens, ("green", "default", "yellow", "red"), selected=3)
    assert text.plain == "p:abcd"
    assert [str(span.style) for span in text.spans] == ["bold", "green", "default", "yellow", "red reverse"]
    assert token_text("", tokens, ("g", "d", "y", "r"), boundaries=True).plain == "|a|b|c|d"


def test_sample_json_is_one_complete_object(capsys):
    assert main(["sample", str(CKPT), "--json", "--seed", "3", "--max-new-tokens", "8", "--prompt", "the"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["prompt"] == "the" and len(out["tokens"]) == 8
    assert out["text"] == "the" + "".join(token["piece"] for token in out["tokens"])
    for token in out["tokens"]:
        assert set(token) >= {"text", "id", "prob", "top"} and 0 < token["prob"] <= 1
        probs = [alt["prob"] for alt in token["top"]]
        assert len(probs) == 5 and probs == sorted(probs, reverse=True) and all(0 < p <= 1 for p in probs)
        if token["prob"] >= probs[-1]:
            assert token["id"] in [alt["id"] for alt in token["top"]]


def test_sample_compare_uses_one_seed_for_every_checkpoint(tmp_path, capsys):
    copy = tmp_path / "copy.ckpt"
    shutil.copyfile(CKPT, copy)
    assert main(["sample", str(CKPT), "--compare", str(copy), "--json", "--max-new-tokens", "20"]) == 0
    out = json.loads(capsys.readouterr().out)
    first, second = out["samples"]
    assert isinstance(out["seed"], int) and second["checkpoint"] == str(copy)
    assert first["text"] == second["text"]  # the same weights and the same seed
    assert main(["sample", str(CKPT), "--compare", str(copy), "--show-probs", "--seed", "4"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("seed 4") == 2 and "p < 0.1" in printed


def test_kept_checkpoints_are_pruned_oldest_first_and_compare_samples_them(tiny_config):
    events = []
    config = make_config(tiny_config, max_iters=40, checkpoint_interval=10, keep_checkpoints=2)
    trainer = Trainer(config, on_event=events.append)
    trainer.run()
    assert [p.name for p in trainer.rundir.history()] == ["ckpt-00000030.ckpt", "ckpt-00000040.ckpt"]
    trainer.sample(SampleRequest("ab", 6, 1.0, None, compare=True))
    samples = [e for e in events if isinstance(e, SampleText)]
    assert [s.source for s in samples] == ["", "best.ckpt", "ckpt-00000040.ckpt", "ckpt-00000030.ckpt"]
    assert len({s.seed for s in samples}) == 1 and len({s.compare for s in samples}) == 1
    assert samples[0].text == samples[2].text  # the current weights are those saved at step 40
    replayed = [e for e in read_events(trainer.rundir.path) if isinstance(e, SampleText)]
    assert replayed == samples  # tokens, probabilities and all, as the watcher sees them


async def test_samples_tab_keys_select_page_toggle_and_compare(tiny_config):
    app = create_app(make_config(tiny_config, max_iters=40, sample_interval=20, sample_tokens=12))
    async with app.run_test(size=(120, 40)) as pilot:
        await press(pilot, "f5")
        await wait_for(pilot, lambda: app.dashboard.state == "ended")
        view = app.query_one("#sample-view")
        assert [page[0].step for page in view.pages] == [20, 40]  # periodic samples keep their step
        view.focus()
        await pilot.press("pageup")
        assert view.page == 0
        await pilot.press("right", "right")
        assert view.selected == 1
        assert "top 5:" in str(view.render().renderables[-2])
        await pilot.press("e", "b")
        assert view.by == "entropy" and view.boundaries
        await pilot.press("c")
        await wait_for(pilot, lambda: len(view.pages) == 3 and len(view.pages[-1]) == 2)
        assert view.page == 0  # paged back: a new sample does not pull the view away
        await pilot.press("pagedown", "pagedown")
        assert view.page == 2 and [s.source for s in view.pages[2]] == ["", "best.ckpt"]
        await pilot.press("down", "right")
        assert view.row == 1 and view.selected == 0


async def test_the_selected_token_scrolls_into_view_at_80x24():
    from tui_trainer.engine.config import load_config

    model, vocab, tokenizer = tiny_model()
    generation = generate(model, tokenizer, vocab, "the ", 400, seed=3)
    app = create_app(load_config(REPO / "configs" / "default.toml"))
    async with app.run_test(size=(80, 24)) as pilot:
        app.dashboard.samples.add_event(SampleText(300, "the ", generation.text, generation.tokens))
        await pilot.press("ctrl+t")  # onto the Samples tab, the sample focused
        scroll = app.query_one("#sample-scroll")
        await pilot.pause()
        assert scroll.max_scroll_y > 0 and scroll.scroll_y == 0  # taller than the tab
        await pilot.press("left")  # from nothing selected, left selects the last token
        await pilot.pause()
        assert app.query_one("#sample-view").selected == 399
        assert scroll.scroll_y > 0  # scrolled down to it (nothing else scrolls the tab here)
