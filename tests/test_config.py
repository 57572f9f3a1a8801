import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tui_trainer.engine.config import (CHAPTER_KEYS, FIELDS, TrainConfig, config_from_dict, field_type, find_problems,
                                       load_config, parse_overrides, parse_value, quoted, read_toml)
from tui_trainer.engine.errors import ConfigError

from .conftest import REPO


def test_defaults_are_the_chapters_hyperparameters():
    cfg = TrainConfig()
    chapter = dict(d_model=80, num_blocks=6, num_heads=4, batch_size=2, context_length=128, max_iters=500,
                   learning_rate=1e-3, dropout=0.1, eval_interval=50, eval_iters=10, device="auto", TORCH_SEED=1337)
    assert {k: getattr(cfg, k) for k in CHAPTER_KEYS} == chapter


def test_chapter19_preset_is_exactly_the_chapter():
    assert load_config(REPO / "configs" / "chapter19.toml") == TrainConfig()


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*.toml")), ids=lambda path: path.stem)
def test_every_preset_is_valid(path):
    load_config(path)


def test_all_problems_reported_at_once():
    with pytest.raises(ConfigError) as info:
        config_from_dict({"d_model": 90, "learning_rate": -1.0, "dropout": 1.5, "max_iters": 0, "bogus": 1,
                          "device": "tpu", "batch_size": "big"})
    text = "\n".join(info.value.problems)
    assert len(info.value.problems) == 7
    assert "d_model 90 is not divisible by num_heads 4" in text
    assert "unknown key 'bogus'" in text
    assert "learning_rate = -1.0: must be > 0" in text
    assert "dropout = 1.5: must be in [0, 1)" in text
    assert "max_iters = 0: must be >= 1" in text
    assert "device = 'tpu'" in text
    assert "batch_size = 'big': must be an integer" in text


def test_divisibility_rule_names_both_fields():
    problems = find_problems({"d_model": 90, "num_heads": 4})
    assert problems == {"d_model": "d_model 90 is not divisible by num_heads 4: pick a multiple of num_heads"}


def test_nan_learning_rate_and_bool_for_int_rejected():
    problems = find_problems({"learning_rate": math.nan, "batch_size": True})
    assert "finite" in problems["learning_rate"]
    assert "integer" in problems["batch_size"]


def test_overrides_parse_types_and_report_bad_items():
    assert parse_overrides(["max_iters=7", "learning_rate=3e-4", "compile=true", "data=a b.txt"]) == {
        "max_iters": 7, "learning_rate": 3e-4, "compile": True, "data": "a b.txt"}
    with pytest.raises(ConfigError) as info:
        parse_overrides(["max_iters", "d_model=wide", "nope=1"])
    text = "\n".join(info.value.problems)
    assert "--set 'max_iters': expected KEY=VALUE" in text
    assert "d_model = 'wide': must be an integer" in text
    assert "unknown key 'nope'" in text


def test_int_accepted_for_float_field():
    assert config_from_dict({"learning_rate": 1}).learning_rate == 1.0


def test_bad_toml_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        read_toml(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("d_model = = 3\n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        read_toml(bad)


def test_readme_lists_every_key():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    missing = [name for name in FIELDS if f"| `{name}` |" not in readme]
    assert not missing, f"README's key table lacks {missing}"


def test_a_compile_mode_without_compile_is_refused_with_the_fix():
    with pytest.raises(ConfigError) as info:
        config_from_dict({"compile_mode": "reduce-overhead"})
    assert info.value.problems == ["compile_mode = 'reduce-overhead' takes effect only with compile = true: set "
                                   "compile = true, or compile_mode = 'default'"]
    assert config_from_dict({"compile_mode": "reduce-overhead", "compile": True}).compile_mode == "reduce-overhead"


NUMBER_KEYS = sorted(name for name in FIELDS if field_type(name) in (int, float))
TYPED = st.one_of(st.text(), st.text("0123456789.e-+", max_size=6000), st.sampled_from(["inf", "-inf", "nan", "1e400"]),
                  st.text("0123456789", min_size=4290, max_size=4310), st.sampled_from(["--5", "+-5", "²", "5²"]))


@given(name=st.sampled_from(NUMBER_KEYS), text=TYPED)
def test_a_number_field_reads_what_was_typed_or_says_so_in_one_line(name, text):
    """Whatever is typed or pasted into a number (a form field, --set, gpt-tui set): a finite
    number of the field's type, or one line that names the field and quotes the text as typed
    (never the inf that 1e400 or 5,000 digits read as)."""
    try:
        value = parse_value(name, text)
    except ValueError as error:
        message = str(error)
        assert message.startswith(f"{name} = {quoted(text)}: ") and "\n" not in message and len(message) < 200
        too_long = re.fullmatch(r"[+-]?[0-9]+", text.strip()) and len(text.strip().lstrip("+-")) > 4300
        assert ("digits" in message) == bool(field_type(name) is int and too_long), message
    else:
        assert type(value) is field_type(name) and (type(value) is int or math.isfinite(value))
