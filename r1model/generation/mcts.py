"""Step-level Monte Carlo tree search over a think's lines (DeepSeek-R1 §4.2, "Unsuccessful attempts": MCTS).

A node is one step: the tokens of one line of the think (the last step ends the completion: `</answer>` or eos).
One simulation of a tree:

    select   from the root, the child maximising PUCT  Q(c) + c_puct · P(c) · sqrt(N(parent)) / (1 + N(c)),
             Q(c) = W(c) / N(c) (a child not yet backed up: its value-model estimate), down to a leaf;
    expand   the leaf gets K = `branching` next lines sampled from the policy (identical lines merged, prior
             P = the share of the K samples) — the report's "maximum extension limit" per node: a node is
             expanded once;
    evaluate each new child by the value model (predicted final correctness of the prefix);
    backup   each new child's value goes up its path: N += 1, W += value on the child and every ancestor, so a
             node's N is 1 (its own evaluation; not the root's) plus its children's N, and a finished leaf's
             grows each time it is selected again.

Selecting a finished leaf (an answer, or a dead end at `max_depth`) backs its value up again and costs no
tokens. The search stops when the generated tokens reach the budget (the last expansion may pass it by at most
K · max_step_tokens, as the last sample of best-of-N does), when no leaf is left to expand, or after
`max_simulations`. The answer is the finished node with the most visits (ties: the higher Q), None when the
tree holds none.

The tree logic is plain Python: `policy(prefixes, k, max_tokens) -> [[Step] * k]` and
`value(sequences) -> [float]` are passed in (engine_policy adapts a GenerationEngine). `search` runs many
trees in lockstep so that one policy call expands a leaf of every tree.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence


@dataclass(frozen=True)
class Step:
    """One sampled line: its tokens and whether it ends the completion (a stop token other than newline)."""

    tokens: tuple[int, ...]
    finished: bool


@dataclass(frozen=True)
class MCTSSettings:
    branching: int = 4  # K: lines sampled when a node is expanded (its children, at most)
    max_depth: int = 5  # steps below the root; a node this deep that has not finished is a dead end
    max_step_tokens: int = 20  # longest line (max_new_tokens of one expansion sample)
    token_budget: int = 480  # generated tokens per problem
    c_puct: float = 1.0
    max_simulations: int = 1000

    def worst_case_path_tokens(self) -> int:
        """Tokens one root-to-answer path can cost: max_depth expansions of branching × max_step_tokens."""
        return self.branching * self.max_depth * self.max_step_tokens

    def check(self, prefix: str = "mcts.", budget_field: str | None = None) -> None:
        """ValueError naming the field: a non-positive knob, or branching × max_depth × max_step_tokens (the
        worst case of one path) over the token budget — such a tree may not finish a single answer. Fields are
        named `prefix` + name; the budget `budget_field` when it lives elsewhere."""
        budget_name = budget_field or f"{prefix}token_budget"
        for name in ("branching", "max_depth", "max_step_tokens", "token_budget", "max_simulations"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                field_name = budget_name if name == "token_budget" else f"{prefix}{name}"
                raise ValueError(f"{field_name}: must be an integer >= 1, got {value!r}")
        if not isinstance(self.c_puct, (int, float)) or self.c_puct < 0:
            raise ValueError(f"{prefix}c_puct: must be a number >= 0, got {self.c_puct!r}")
        worst = self.worst_case_path_tokens()
        if worst > self.token_budget:
            raise ValueError(
                f"{prefix}branching {self.branching} × {prefix}max_depth {self.max_depth} × {prefix}max_step_tokens "
                f"{self.max_step_tokens} = {worst} worst-case tokens for one root-to-answer path exceed the token "
                f"budget ({budget_name} {self.token_budget}); lower {prefix}branching or {prefix}max_depth")


@dataclass(eq=False)
class Node:
    tokens: tuple[int, ...] = ()  # this step's tokens (the root: none)
    parent: "Node | None" = None
    prior: float = 1.0
    value: float = 0.0  # the value model's estimate when the node was made
    finished: bool = False  # ends the completion
    dead: bool = False  # at max_depth without finishing
    depth: int = 0
    visits: int = 0
    value_sum: float = 0.0
    children: list["Node"] = field(default_factory=list)

    @property
    def q(self) -> float:
        return self.value_sum / self.visits if self.visits else self.value

    @property
    def leaf_done(self) -> bool:
        """Nothing to expand below: an answer or a dead end."""
        return self.finished or self.dead

    def path_tokens(self) -> list[int]:
        parts, node = [], self
        while node is not None:
            parts.append(node.tokens)
            node = node.parent
        return [t for part in reversed(parts) for t in part]

    def iter(self):
        yield self
        for child in self.children:
            yield from child.iter()


class Tree:
    """One problem's search tree (see the module docstring)."""

    def __init__(self, prompt_ids: Sequence[int], settings: MCTSSettings):
        self.prompt_ids = list(prompt_ids)
        self.settings = settings
        self.root = Node()
        self.tokens_used = 0
        self.expansions = 0
        self.simulations = 0
        self.stopped = ""

    # ---- the four phases ----------------------------------------------------------------------
    def puct(self, parent: Node, child: Node) -> float:
        explore = self.settings.c_puct * child.prior * math.sqrt(max(parent.visits, 1)) / (1 + child.visits)
        return child.q + explore

    def select(self) -> Node:
        """From the root down by PUCT (first of equals) to a node without children."""
        node = self.root
        while node.children:
            node = max(node.children, key=lambda child: self.puct(node, child))
        return node

    def expand(self, leaf: Node, steps: Sequence[Step]) -> list[Node]:
        """Children of `leaf` from its K sampled steps (identical lines merged, prior = share); every sampled
        token counts towards the budget."""
        if leaf.children or leaf.leaf_done:
            raise ValueError("expand: the node is already expanded or finished")
        if not steps:
            raise ValueError("expand: no steps sampled")
        self.tokens_used += sum(len(step.tokens) for step in steps)
        self.expansions += 1
        counts: dict[tuple[tuple[int, ...], bool], int] = {}
        for step in steps:
            key = (tuple(step.tokens), bool(step.finished))
            counts[key] = counts.get(key, 0) + 1
        for (tokens, finished), count in counts.items():
            depth = leaf.depth + 1
            leaf.children.append(Node(tokens=tokens, parent=leaf, prior=count / len(steps), finished=finished,
                                      dead=not finished and depth >= self.settings.max_depth, depth=depth))
        return list(leaf.children)

    def evaluate(self, children: Sequence[Node], values: Sequence[float]) -> None:
        """Set each new child's value estimate (a dead end is worth 0: it holds no answer) and back it up."""
        if len(children) != len(values):
            raise ValueError(f"evaluate: {len(values)} values for {len(children)} children")
        for child, value in zip(children, values):
            child.value = 0.0 if child.dead else float(value)
            self.backup(child, child.value)

    @staticmethod
    def backup(node: Node, value: float) -> None:
        while node is not None:
            node.visits += 1
            node.value_sum += value
            node = node.parent

    # ---- the answer and the tree's size -------------------------------------------------------------
    def answer(self) -> Node | None:
        """The finished node with the most visits (ties: higher Q, then the first made); None if none."""
        best = None
        for node in self.root.iter():
            if node.finished and (best is None or (node.visits, node.q) > (best.visits, best.q)):
                best = node
        return best

    def stats(self) -> dict:
        nodes = [n for n in self.root.iter() if n is not self.root]
        return {"nodes": len(nodes), "expansions": self.expansions, "tokens": self.tokens_used,
                "simulations": self.simulations, "max_depth": max((n.depth for n in nodes), default=0),
                "answers": sum(n.finished for n in nodes), "dead_ends": sum(n.dead for n in nodes),
                "stopped": self.stopped}

    def next_leaf(self) -> Node | None:
        """Simulate until a leaf to expand comes up (finished leaves selected on the way are backed up again);
        None, with `stopped` set, once the budget is spent, nothing is left to expand or the simulations run out."""
        while True:
            if self.tokens_used >= self.settings.token_budget:
                self.stopped = "budget"
                return None
            if self.simulations >= self.settings.max_simulations:
                self.stopped = "simulations"
                return None
            if not _expandable(self.root):
                self.stopped = "exhausted"
                return None
            self.simulations += 1
            leaf = self.select()
            if not leaf.leaf_done:
                return leaf
            self.backup(leaf, leaf.value)


def _expandable(node: Node) -> bool:
    if not node.children:
        return not node.leaf_done
    return any(_expandable(child) for child in node.children)


Policy = Callable[[list[list[int]], int, int], list[list[Step]]]
Value = Callable[[list[list[int]]], list[float]]


def search(trees: Sequence[Tree], policy: Policy, value: Value,
           snapshots: Sequence[int] = (), on_snapshot: Callable[[int, int, Tree], None] | None = None) -> None:
    """Run every tree to its stop, in lockstep: each round expands one leaf per live tree with one policy call
    and evaluates the new children with one value call. `on_snapshot(tree index, budget, tree)` is called for
    each of `snapshots` (token budgets, ascending) once the tree's tokens reach it or it stops: the tree then is
    what a search with that budget would have grown (expansions start while tokens < budget)."""
    budgets = sorted(snapshots)
    pending = [list(budgets) for _ in trees]

    def report(index: int, tree: Tree, final: bool) -> None:
        while pending[index] and (final or tree.tokens_used >= pending[index][0]):
            budget = pending[index].pop(0)
            if on_snapshot is not None:
                on_snapshot(index, budget, tree)

    live = list(range(len(trees)))
    while live:
        leaves = []
        for index in live:
            leaf = trees[index].next_leaf()
            if leaf is None:
                report(index, trees[index], final=True)
            else:
                leaves.append((index, leaf))
        if not leaves:
            break
        k, max_tokens = trees[0].settings.branching, trees[0].settings.max_step_tokens
        sampled = policy([trees[i].prompt_ids + leaf.path_tokens() for i, leaf in leaves], k, max_tokens)
        new = []
        for (index, leaf), steps in zip(leaves, sampled):
            new.append((index, leaf, trees[index].expand(leaf, steps)))
        sequences = [trees[i].prompt_ids + child.path_tokens() for i, _, children in new for child in children]
        values = value(sequences) if sequences else []
        at = 0
        for index, _, children in new:
            trees[index].evaluate(children, values[at:at + len(children)])
            at += len(children)
            report(index, trees[index], final=False)
        live = [index for index, _ in leaves]


def engine_policy(engine, newline_id: int, *, temperature: float = 1.0, top_p: float = 1.0, seed: int = 0) -> Policy:
    """A Policy from a GenerationEngine: K samples of the next line after each prefix (stop at newline, eos or
    `</answer>`). A sample is `finished` when it stopped on eos or `</answer>`; a line cut at max_tokens is a
    step like any other."""
    from r1model.generation.engine import SamplingParams

    calls = [0]

    def policy(prefixes: list[list[int]], k: int, max_tokens: int) -> list[list[Step]]:
        params = SamplingParams(temperature=temperature, top_p=top_p, max_new_tokens=max_tokens,
                                stop_token_ids=(newline_id,), seed=seed * 1_000_003 + calls[0])
        calls[0] += 1
        prompts = [prefix for prefix in prefixes for _ in range(k)]
        completions = engine.generate(prompts, params)
        out = []
        for i in range(len(prefixes)):
            steps = []
            for completion in completions[i * k:(i + 1) * k]:
                ids = tuple(completion.token_ids)
                finished = completion.finish_reason == "stop" and bool(ids) and ids[-1] != newline_id
                steps.append(Step(ids, finished))
            out.append(steps)
        return out

    return policy
