"""Each metric's minimum and maximum over blocks of 2**level steps, for drawing long series fast.

A chart of a long series gets at most MAX_POINTS points: the step range is cut into buckets and each
bucket keeps its minimum and its maximum (lab.selectors.metrics). Computing those buckets from the
stored points is a pass over every point of every series drawn. Instead, as metrics are stored, each
metric keeps for every level k in MIN_LEVEL..MAX_LEVEL and every block b of steps [b·2**k, (b+1)·2**k)
its minimum and maximum with the step where each is first reached (lab.models.MetricSummary). A chart
whose bucket width is 2**k then reads one summary row per bucket.

Summaries merge (the lower minimum, the higher maximum, the lower step on a tie), so merging the same
points twice changes nothing: re-ingesting after a crash or two ingesters racing leave them right.
Points removed (the lost steps of a resumed attempt) need their blocks rebuilt (lab.services.ingest).
This module is plain Python (no Django, no database), so a migration can use it as well.
"""
from __future__ import annotations

from collections.abc import Iterable

MIN_LEVEL = 3  # blocks of 8 steps: a chart with buckets of 4 steps or fewer reads its (at most 4,000) points directly
MAX_LEVEL = 21  # blocks of 2M steps: 1,000 of them cover any int32 step range

Summary = list  # [min step, min, max step, max]


def merge(into: Summary, other: Summary) -> None:
    """Fold `other` into `into`: the lower minimum and the higher maximum, each at its lowest step on a tie."""
    if other[1] < into[1] or (other[1] == into[1] and other[0] < into[0]):
        into[0], into[1] = other[0], other[1]
    if other[3] > into[3] or (other[3] == into[3] and other[2] < into[2]):
        into[2], into[3] = other[2], other[3]


def summarise(points: Iterable[tuple[str, int, float | None]]) -> dict[tuple[str, int, int], Summary]:
    """{(name, level, block): [min step, min, max step, max]} of (name, step, value) points, every level;
    points without a value (NaN/inf are stored as None) are left out. Each level is built from the one
    below it, so the work is about twice the number of points."""
    blocks: dict[tuple[str, int], Summary] = {}
    for name, step, value in points:
        if value is None:
            continue
        key = (name, step >> MIN_LEVEL)
        found = blocks.get(key)
        if found is None:
            blocks[key] = [step, value, step, value]
        else:
            merge(found, [step, value, step, value])
    out: dict[tuple[str, int, int], Summary] = {}
    for level in range(MIN_LEVEL, MAX_LEVEL + 1):
        parents: dict[tuple[str, int], Summary] = {}
        for (name, block), summary in blocks.items():
            out[(name, level, block)] = summary
            parent = parents.get((name, block >> 1))
            if parent is None:
                parents[(name, block >> 1)] = list(summary)
            else:
                merge(parent, summary)
        blocks = parents
    return out
