"""The R1-Zero prompt template and the parser for what the model writes back.

R1-Zero (DeepSeek-R1 report, Table 1) gives the model one fixed instruction: think inside
``<think> </think>``, then answer inside ``<answer> </answer>``. The template is deliberately plain so
that whatever reasoning behaviour appears was learnt by RL, not prompted.

Imports only the standard library (the web lab imports this module).
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass

# The report's wording (Table 1), kept close to the original. `{prompt}` is replaced by the problem.
R1_ZERO_TEMPLATE = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. "
    "The assistant first thinks about the reasoning process in the mind and then provides the user with "
    "the answer. The reasoning process and answer are enclosed within <think> </think> and "
    "<answer> </answer> tags, respectively, i.e., <think> reasoning process here </think> "
    "<answer> answer here </answer>. User: {prompt}. Assistant:"
)

# A short variant for character-level tiny models (aha-mini): every prompt character costs compute, and
# a 400-character instruction would dwarf a 13-character addition problem.
MINI_TEMPLATE = "User: {prompt}\nAssistant: "

TEMPLATES = {"r1-zero": R1_ZERO_TEMPLATE, "mini": MINI_TEMPLATE}

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"
TAGS = (THINK_OPEN, THINK_CLOSE, ANSWER_OPEN, ANSWER_CLOSE)


def resolve_template(template: str) -> str:
    """A template given by name ('r1-zero', 'mini') or as text containing `{prompt}`."""
    if template in TEMPLATES:
        return TEMPLATES[template]
    if "{prompt}" not in template:
        raise ValueError(f"template must contain '{{prompt}}' or be one of {sorted(TEMPLATES)}: {template[:80]!r}")
    return template


def render_prompt(problem_text: str, template: str = R1_ZERO_TEMPLATE) -> str:
    """The template with the problem put in place of `{prompt}` (no other placeholders are expanded)."""
    return resolve_template(template).replace("{prompt}", problem_text)


# The R1-Zero instruction without its "User: ... Assistant:" frame: the system message of chat prompts.
R1_SYSTEM_PROMPT = R1_ZERO_TEMPLATE.split(" User:")[0]


def chat_messages(problem_text: str, template: str = "r1-zero") -> list[dict]:
    """The messages of a chat-format prompt: the R1 instruction as the system message and the problem as the
    user's turn ('r1-zero' / 'mini'); a custom template's rendered text is the user's turn, with no system
    message. The model's chat template (r1model.train.modeling.prompt_text) turns them into text."""
    if template in TEMPLATES or template in TEMPLATES.values():
        return [{"role": "system", "content": R1_SYSTEM_PROMPT}, {"role": "user", "content": problem_text}]
    return [{"role": "user", "content": render_prompt(problem_text, template)}]


@dataclass(frozen=True)
class ParsedCompletion:
    """What a completion says, split along the R1-Zero tags.

    think / answer: the text inside the tags (None when the tag pair is absent).
    well_formed: exactly `<think>…</think>` then `<answer>…</answer>`, each tag once, nothing but
        whitespace around them, and the generation was not cut off.
    truncated: the generation hit the token limit (given by the caller, who knows).
    """

    think: str | None
    answer: str | None
    well_formed: bool
    truncated: bool

    def to_dict(self) -> dict:
        return asdict(self)


_WELL_FORMED = re.compile(r"\A\s*<think>(.*?)</think>\s*<answer>(.*?)</answer>\s*\Z", re.DOTALL)
_THINK = re.compile(r"<think>(.*?)</think>", re.DOTALL)
_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)


def parse_completion(text: str, truncated: bool = False) -> ParsedCompletion:
    """Split a completion into think and answer; never raises on any input string.

    When the completion is not well formed, think is the first complete think pair and answer the last
    complete answer pair, so a reward can still judge the answer while the format reward says no.
    """
    text = text or ""
    match = _WELL_FORMED.match(text)
    if match and all(text.count(tag) == 1 for tag in TAGS):
        return ParsedCompletion(match.group(1).strip(), match.group(2).strip(), not truncated, truncated)
    think = _THINK.search(text)
    answers = _ANSWER.findall(text)
    return ParsedCompletion(
        think.group(1).strip() if think else None,
        answers[-1].strip() if answers else None,
        False,
        truncated,
    )


def format_completion(think: str, answer: str) -> str:
    """The R1-Zero shape: `<think>{think}</think><answer>{answer}</answer>`."""
    return f"{THINK_OPEN}{think}{THINK_CLOSE}{ANSWER_OPEN}{answer}{ANSWER_CLOSE}"
