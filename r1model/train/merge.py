"""Model merging (Kimi k1.5 §2.4, long2short): average the weights of two checkpoints of one architecture — a
long-CoT model and a short-CoT one — into a new model, without training.

    python -m r1model merge A B --weight 0.5 --out DIR

    θ = weight · θ_A + (1 − weight) · θ_B        (weight 0.5: the plain average the report uses)

A and B are model folders in HF layout (model.safetensors or shards + index, config.json, tokenizer files): a
run's checkpoints/step-N or any transformers model folder. Every tensor is averaged in float32 and written in
A's dtype; integer tensors (counters, buffers) must be equal and are kept. Two folders whose tensors differ in
name, shape or dtype are refused, naming the first such tensor; FP8 weights (block-scaled) are refused too
(dequantise first: averaging scaled values is not averaging weights). DIR receives A's config, tokenizer and
other side files and one model.safetensors; trainer state is not copied (a merged model starts no run's resume),
merge.json records both sources and the weight.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from r1model.model.config import is_model_folder

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")
NOT_COPIED = ("trainer_state.pt", "trainer_state.json", "merge.json")
MERGE_JSON = "merge.json"


class MergeError(ValueError):
    """Two checkpoints that cannot be averaged; the message names the tensor."""


def _float8(dtype) -> bool:
    return "float8" in str(dtype)


def merge_state_dicts(a: dict, b: dict, weight: float = 0.5) -> dict:
    """{name: weight · a[name] + (1 − weight) · b[name]} over the same names, shapes and dtypes (MergeError
    naming the first tensor that differs, in sorted order)."""
    import torch

    if not 0.0 <= weight <= 1.0:
        raise MergeError(f"weight must be in [0, 1], got {weight}")
    only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
    if only_a or only_b:
        name, side = (only_a[0], "the first") if only_a else (only_b[0], "the second")
        raise MergeError(f"tensor {name} is only in {side} checkpoint ({len(only_a)} only in the first, "
                         f"{len(only_b)} only in the second): not the same architecture")
    merged = {}
    for name in sorted(a):
        x, y = a[name], b[name]
        if tuple(x.shape) != tuple(y.shape):
            raise MergeError(f"tensor {name} has shape {tuple(x.shape)} in the first checkpoint and {tuple(y.shape)} "
                             "in the second: not the same architecture")
        if x.dtype != y.dtype:
            raise MergeError(f"tensor {name} is {x.dtype} in the first checkpoint and {y.dtype} in the second")
        if _float8(x.dtype):
            raise MergeError(f"tensor {name} is {x.dtype} (block-scaled FP8): dequantise both checkpoints first")
        if x.is_floating_point() or x.is_complex():
            merged[name] = (weight * x.double() + (1.0 - weight) * y.double()).to(x.dtype).contiguous()
        elif torch.equal(x, y):
            merged[name] = x.clone()
        else:
            raise MergeError(f"tensor {name} ({x.dtype}) differs between the checkpoints and cannot be averaged")
    return merged


def merge_checkpoints(a: str | Path, b: str | Path, out: str | Path, weight: float = 0.5) -> Path:
    """Average checkpoint folders A and B into `out` (see the module docstring); returns `out`. The folder is
    written under a temporary name and renamed when complete."""
    from safetensors.torch import save_file

    from r1model.model.checkpoint import read_weights

    a, b, out = Path(a), Path(b), Path(out)
    for folder in (a, b):
        if not is_model_folder(folder):
            raise MergeError(f"{folder}: not a model folder (no config.json)")
    if out.exists():
        raise MergeError(f"{out} exists; give a new folder")
    merged = merge_state_dicts(read_weights(a), read_weights(b), weight)
    tmp = out.with_name(f".tmp-{out.name}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    for item in a.iterdir():
        if item.is_file() and item.name not in WEIGHT_FILES + NOT_COPIED and not item.name.endswith(".safetensors"):
            shutil.copy2(item, tmp / item.name)
    save_file(merged, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    (tmp / MERGE_JSON).write_text(json.dumps({"a": str(a.resolve()), "b": str(b.resolve()), "weight": weight,
                                              "formula": "weight * a + (1 - weight) * b",
                                              "tensors": len(merged)}, indent=2) + "\n")
    tmp.rename(out)
    return out


def merge_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m r1model merge",
        description="Average two checkpoints of the same architecture (Kimi k1.5 model merging): "
        "weight · A + (1 − weight) · B, written as an HF-layout folder.")
    parser.add_argument("a", help="first model folder (its config and tokenizer are copied)")
    parser.add_argument("b", help="second model folder")
    parser.add_argument("--weight", type=float, default=0.5, help="weight of A (default 0.5, the plain average)")
    parser.add_argument("--out", required=True, help="new folder for the merged model")
    args = parser.parse_args(argv)
    try:
        out = merge_checkpoints(args.a, args.b, args.out, args.weight)
    except (MergeError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"out": str(out), "weight": args.weight}))
    return 0


if __name__ == "__main__":
    sys.exit(merge_main())
