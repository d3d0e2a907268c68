"""Step-level MCTS (r1model.generation.mcts) on toy trees: a deterministic test-double policy and value, no model."""
import math

import pytest

from r1model.generation.mcts import MCTSSettings, Node, Step, Tree, search

NEWLINE = 9


def _settings(**changes):
    base = dict(branching=3, max_depth=3, max_step_tokens=2, token_budget=100, c_puct=1.0)
    return MCTSSettings(**{**base, **changes})


def _invariant(node: Node) -> None:
    """A node's visits: its own evaluation (not the root's) plus its children's visits; a finished leaf's: its
    evaluation plus each time it was selected again. value_sum likewise."""
    own = 0 if node.parent is None else 1
    if node.children:
        assert node.visits == own + sum(child.visits for child in node.children)
        assert math.isclose(node.value_sum, own * node.value + sum(child.value_sum for child in node.children))
        for child in node.children:
            _invariant(child)
    elif node.parent is not None:
        assert node.visits >= 1 and math.isclose(node.value_sum, node.value * node.visits)
        assert node.finished or node.dead or node.visits == 1


def test_expansion_merges_identical_lines_counts_tokens_and_backs_values_up():
    tree = Tree([1, 2], _settings())
    leaf = tree.next_leaf()
    assert leaf is tree.root
    children = tree.expand(leaf, [Step((5, NEWLINE), False), Step((6, NEWLINE), False), Step((5, NEWLINE), False)])
    assert [c.tokens for c in children] == [(5, NEWLINE), (6, NEWLINE)]
    assert [c.prior for c in children] == pytest.approx([2 / 3, 1 / 3])
    assert tree.tokens_used == 6 and tree.expansions == 1  # duplicates cost their tokens too
    tree.evaluate(children, [0.8, 0.2])
    assert [c.visits for c in children] == [1, 1] and [c.q for c in children] == pytest.approx([0.8, 0.2])
    assert tree.root.visits == 2 and tree.root.value_sum == pytest.approx(1.0)
    assert children[0].path_tokens() == [5, NEWLINE]
    with pytest.raises(ValueError, match="already expanded"):
        tree.expand(tree.root, [Step((7,), False)])


def test_selection_follows_puct_and_backup_updates_the_whole_path():
    tree = Tree([1], _settings(c_puct=1.0))
    a, b = tree.expand(tree.root, [Step((5,), False), Step((6,), False), Step((6,), False)])
    tree.evaluate([a, b], [0.9, 0.3])
    # PUCT at the root (N = 2): a: 0.9 + 1 · 1/3 · √2 / 2 ≈ 1.136; b: 0.3 + 2/3 · √2 / 2 ≈ 0.771
    assert tree.puct(tree.root, a) == pytest.approx(0.9 + (1 / 3) * math.sqrt(2) / 2)
    assert tree.select() is a
    a1, a2 = tree.expand(a, [Step((7,), False), Step((8,), True), Step((7,), False)])
    tree.evaluate([a1, a2], [0.1, 1.0])
    assert a.visits == 3 and a.value_sum == pytest.approx(0.9 + 0.1 + 1.0)
    assert tree.root.visits == 4 and tree.root.value_sum == pytest.approx(0.9 + 0.3 + 0.1 + 1.0)
    _invariant(tree.root)
    # a high c_puct makes the less visited, higher-prior sibling win instead
    wide = Tree([1], _settings(c_puct=10.0))
    x, y = wide.expand(wide.root, [Step((5,), False), Step((6,), False), Step((6,), False)])
    wide.evaluate([x, y], [0.9, 0.3])
    assert wide.select() is y


def test_finished_and_dead_end_leaves_are_not_expanded_and_the_answer_is_the_most_visited_finished_node():
    tree = Tree([1], _settings(max_depth=2))
    (a,) = tree.expand(tree.root, [Step((5,), False)] * 3)
    tree.evaluate([a], [0.5])
    done, dead = tree.expand(a, [Step((8,), True), Step((7,), False), Step((8,), True)])
    assert done.finished and not dead.finished and dead.dead and dead.depth == 2
    tree.evaluate([done, dead], [0.7, 0.9])
    assert dead.value == 0.0 and dead.q == 0.0  # a dead end holds no answer, whatever the value model says
    assert tree.answer() is done
    # nothing is left to expand: the search stops by itself, each simulation re-backing a finished leaf
    assert tree.next_leaf() is None and tree.stopped == "exhausted"
    with pytest.raises(ValueError, match="finished"):
        tree.expand(done, [Step((1,), False)])
    assert Tree([1], _settings()).answer() is None


def test_finished_leaves_selected_again_are_backed_up_without_spending_tokens():
    tree = Tree([1], _settings(max_depth=5))
    done, other = tree.expand(tree.root, [Step((8,), True), Step((5,), False), Step((8,), True)])
    tree.evaluate([done, other], [0.95, 0.05])
    before = tree.tokens_used
    leaf = tree.next_leaf()  # the finished child wins PUCT at first and is backed up again, then `other` comes up
    assert leaf is other and tree.tokens_used == before
    # every simulation but the last re-backed the finished child: its visits are 1 (made) + those re-visits
    assert done.visits >= 2 and tree.simulations == done.visits
    assert done.value_sum == pytest.approx(0.95 * done.visits)
    _invariant(tree.root)


def _toy_policy(calls):
    """Line i of a toy problem: the digit `i` then a newline; the third line finishes; two of three samples agree."""

    def policy(prefixes, k, max_tokens):
        calls.append((len(prefixes), k, max_tokens))
        out = []
        for prefix in prefixes:
            depth = prefix.count(NEWLINE)
            good = Step((depth, NEWLINE), False) if depth < 2 else Step((depth, 50), True)
            bad = Step((40 + depth, NEWLINE), False)
            out.append([good, bad, good][:k])
        return out

    return policy


def _toy_value(sequences):
    return [0.1 if any(40 <= t < 50 for t in seq) else 0.9 for seq in sequences]


def test_search_runs_trees_in_lockstep_to_the_budget_and_reports_each_snapshot_once():
    calls, seen = [], []
    settings = _settings(branching=3, max_depth=3, max_step_tokens=2, token_budget=18)
    trees = [Tree([100], settings), Tree([101, 102], settings)]
    search(trees, _toy_policy(calls), _toy_value, snapshots=[6, 18],
           on_snapshot=lambda i, budget, tree: seen.append((i, budget, tree.tokens_used)))
    assert calls == [(2, 3, 2)] * 3  # each call expands a leaf of both trees
    for tree in trees:
        # the value-guided search walks the good line to a finished answer within the budget
        answer = tree.answer()
        assert answer is not None and answer.path_tokens() == [0, NEWLINE, 1, NEWLINE, 2, 50]
        assert tree.stopped in ("budget", "exhausted")
        assert tree.tokens_used < settings.token_budget + settings.branching * settings.max_step_tokens
        _invariant(tree.root)
    assert sorted((i, b) for i, b, _ in seen) == [(0, 6), (0, 18), (1, 6), (1, 18)]
    assert all(tokens >= 6 for i, b, tokens in seen if b == 6)


def test_search_stops_at_the_token_budget():
    settings = _settings(branching=3, max_depth=3, max_step_tokens=2, token_budget=6)
    tree = Tree([100], settings)
    search([tree], _toy_policy([]), _toy_value)
    assert tree.stopped == "budget" and tree.tokens_used == 6 and tree.expansions == 1
    assert tree.answer() is None  # one expansion cannot reach the third line


@pytest.mark.parametrize("changes, named", [
    (dict(branching=8), "mcts.branching"),
    (dict(max_depth=20), "mcts.max_depth"),
])
def test_a_tree_whose_worst_case_path_exceeds_the_budget_is_refused_naming_the_fields(changes, named):
    settings = MCTSSettings(**{**dict(branching=4, max_depth=5, max_step_tokens=20, token_budget=480), **changes})
    with pytest.raises(ValueError, match="worst-case tokens") as info:
        settings.check()
    assert named in str(info.value) and "mcts.token_budget" in str(info.value)
    MCTSSettings(branching=4, max_depth=5, max_step_tokens=20, token_budget=400).check()  # 4 × 5 × 20 = 400 fits
    with pytest.raises(ValueError, match="mcts.branching: must be an integer"):
        MCTSSettings(branching=0).check()
