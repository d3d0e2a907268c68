"""The R1-Zero template and the completion parser."""
import pytest

from r1model.template import (
    MINI_TEMPLATE, R1_ZERO_TEMPLATE, format_completion, parse_completion, render_prompt,
)


def test_default_template_has_the_reports_wording_and_ends_with_assistant():
    prompt = render_prompt("What is 2+2?")
    assert prompt.startswith("A conversation between User and Assistant.")
    assert "<think> </think>" in prompt and "<answer> </answer>" in prompt
    assert prompt.endswith("User: What is 2+2?. Assistant:")


def test_mini_template_is_short_and_named_templates_resolve():
    assert render_prompt("12+34", MINI_TEMPLATE) == "User: 12+34\nAssistant: "
    assert render_prompt("12+34", "mini") == render_prompt("12+34", MINI_TEMPLATE)
    assert render_prompt("x", "r1-zero") == render_prompt("x", R1_ZERO_TEMPLATE)


def test_problem_text_with_braces_is_inserted_verbatim():
    assert render_prompt("Find {a} in \\boxed{b}", "User: {prompt}") == "User: Find {a} in \\boxed{b}"


def test_template_without_placeholder_is_refused():
    with pytest.raises(ValueError, match="prompt"):
        render_prompt("x", "no placeholder here")


def test_well_formed_completion_is_split_into_think_and_answer():
    parsed = parse_completion("<think>3+4+0=7</think><answer>7</answer>")
    assert (parsed.think, parsed.answer, parsed.well_formed, parsed.truncated) == ("3+4+0=7", "7", True, False)


def test_empty_think_is_still_well_formed():
    parsed = parse_completion(format_completion("", "42"))
    assert parsed.well_formed and parsed.think == "" and parsed.answer == "42"


@pytest.mark.parametrize("text", [
    "<answer>7</answer>",                                     # no think
    "<think>a</think>",                                       # no answer
    "<think>a</think><answer>7</answer> trailing words",      # text after the answer
    "<think>a</think><think>b</think><answer>7</answer>",     # repeated tag
    "<answer>7</answer><think>a</think>",                     # wrong order
    "<think>a<answer>7</answer>",                             # unclosed think
])
def test_malformed_completions_are_not_well_formed(text):
    assert not parse_completion(text).well_formed


def test_malformed_completion_still_yields_its_last_answer():
    parsed = parse_completion("<answer>1</answer> no wait <answer>2</answer>")
    assert parsed.answer == "2" and parsed.think is None and not parsed.well_formed


def test_truncated_completion_is_flagged_and_not_well_formed():
    parsed = parse_completion("<think>a</think><answer>7</answer>", truncated=True)
    assert parsed.truncated and not parsed.well_formed and parsed.answer == "7"


@pytest.mark.parametrize("text", ["", None, "<<<>>>", "</think></answer>", "\x00" * 10])
def test_parser_never_raises_on_junk(text):
    parsed = parse_completion(text)
    assert parsed.answer is None and not parsed.well_formed
