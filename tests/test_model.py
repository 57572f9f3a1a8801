import pytest
import torch

from tui_trainer.engine.model import GPT, ModelConfig, filter_logits, sinusoidal_positions


def small() -> GPT:
    torch.manual_seed(0)
    return GPT(ModelConfig(vocab_size=50, d_model=16, num_blocks=2, num_heads=4, context_length=12, dropout=0.0))


def test_shapes_and_loss():
    model = small()
    idx = torch.randint(50, (3, 12))
    logits, loss = model(idx, idx)
    assert logits.shape == (3, 12, 50)
    assert loss.shape == () and abs(loss.item() - torch.log(torch.tensor(50.0)).item()) < 1.0
    assert model(idx)[1] is None


def test_causal_future_tokens_do_not_change_the_past():
    model = small().eval()
    idx = torch.randint(50, (1, 12))
    changed = idx.clone()
    changed[0, 8:] = (changed[0, 8:] + 1) % 50
    a, _ = model(idx)
    b, _ = model(changed)
    assert torch.allclose(a[0, :8], b[0, :8], atol=1e-6)
    assert not torch.allclose(a[0, 8:], b[0, 8:])


def test_positions_are_a_fixed_buffer_outside_the_state_dict():
    model = small()
    assert "positions" not in model.state_dict()
    table = sinusoidal_positions(12, 16)
    assert torch.equal(model.positions, table)
    assert torch.allclose(table[0, 0::2], torch.zeros(8)) and torch.allclose(table[0, 1::2], torch.ones(8))


def test_generate_crops_context_and_extends():
    model = small()
    steps = list(model.generate_steps(torch.zeros((1, 20), dtype=torch.long), max_new_tokens=5, top_k=3, top_p=0.9))
    assert len(steps) == 5 and all(next_id.shape == (1, 1) for next_id, _ in steps)


def test_top_k_and_top_p_filtering():
    logits = torch.tensor([[1.0, 3.0, 2.0, 0.0]])
    assert torch.isinf(filter_logits(logits, 2, None)).tolist() == [[True, False, False, True]]
    # probabilities ~ [0.09, 0.67, 0.24, 0.03]: top_p 0.5 keeps only the largest
    assert torch.isinf(filter_logits(logits, None, 0.5)).tolist() == [[True, False, True, True]]


def test_count_params_matches_the_module():
    from tui_trainer.engine.model import count_params

    for vocab, d, blocks in [(50, 16, 2), (432, 80, 6), (99751, 80, 6)]:
        model = GPT(ModelConfig(vocab_size=vocab, d_model=d, num_blocks=blocks, num_heads=4, context_length=8))
        assert count_params(vocab, d, blocks) == model.num_params()


def generated(model, idx, tokens, temperature, cached, seed=1):
    generator = torch.Generator().manual_seed(seed)
    steps = list(model.generate_steps(idx, tokens, temperature=temperature, generator=generator, cached=cached))
    return torch.cat([s[0] for s in steps], 1), torch.stack([torch.softmax(s[1], -1) for s in steps])



@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_the_kv_cache_gives_the_same_tokens_and_probabilities_within_the_context(temperature):
    torch.manual_seed(0)
    model = GPT(ModelConfig(vocab_size=97, d_model=32, num_blocks=3, num_heads=4, context_length=24, dropout=0.0)).eval()
    idx = torch.randint(97, (2, 5))
    for prompt in (idx, idx[:, :1]):  # a prompt of several positions, and of one
        tokens = 24 - prompt.size(1)  # up to a full context, no further
        plain, plain_probs = generated(model, prompt, tokens, temperature, cached=False)
        cached, cached_probs = generated(model, prompt, tokens, temperature, cached=True)
        assert torch.equal(plain, cached)
        assert (plain_probs - cached_probs).abs().max() < 1e-4


def test_the_kv_cache_goes_on_past_a_full_context_from_its_last_half():
    torch.manual_seed(0)
    model = GPT(ModelConfig(vocab_size=97, d_model=32, num_blocks=2, num_heads=2, context_length=16, dropout=0.0)).eval()
    long_prompt = torch.randint(97, (1, 40))  # longer than the context: its last 16 tokens are encoded
    tokens, probs = generated(model, long_prompt, 50, 1.0, cached=True)
    assert tokens.shape == (1, 50) and torch.isfinite(probs).all()
    # the token after a re-encode is what the uncached model gives on that half context
    out = torch.cat([long_prompt, tokens], 1)
    end = 40 + 1  # the prompt filled the cache, so the second token re-encoded the last 8
    logits, _ = model(out[:, end - 8:end], last_only=True)
    assert torch.allclose(torch.softmax(logits[0, -1], -1), probs[1, 0], atol=1e-5)
