"""The run's `precision` is the one place a user says what a run computes in: fp8 builds the built-in model with
FP8 GEMMs, fp32/bf16/fp16 with fp32 Linears (bf16/fp16 are autocast), whatever the preset or folder says; a
transformers model cannot take fp8 and is refused naming the field."""
import pytest
import torch

from r1model.model.fp8 import FP8Linear
from r1model.testing.fixtures import make_tiny_hf_model
from r1model.train import modeling
from r1model.train.config import ModelSpec


def _linear_kinds(model) -> set[type]:
    return {type(m) for m in model.modules() if isinstance(m, torch.nn.Linear) and m is not model.lm_head}


def test_fp8_builds_fp8_gemms_and_fp32_overrides_a_presets_own(tmp_path):
    cpu = torch.device("cpu")
    fp8, _ = modeling.build_model(ModelSpec(source="tiny"), cpu, 0, "fp8")
    assert FP8Linear in _linear_kinds(fp8) and fp8.config.precision == "fp8"
    plain, _ = modeling.build_model(ModelSpec(source="tiny"), cpu, 0, "bf16")
    assert _linear_kinds(plain) == {torch.nn.Linear} and plain.config.precision == "fp32"
    # a checkpoint saved in fp8 loads with the run's precision, not the folder's
    fp8.save_pretrained(tmp_path / "ckpt", tokenizer=_)
    again, _ = modeling.load_model(tmp_path / "ckpt", cpu, precision="fp32")
    assert _linear_kinds(again) == {torch.nn.Linear}
    kept, _ = modeling.load_model(tmp_path / "ckpt", cpu)  # no run precision given: the folder's own
    assert FP8Linear in _linear_kinds(kept)


def test_fp8_on_a_transformers_model_is_refused_naming_the_field(tmp_path):
    folder = make_tiny_hf_model(tmp_path / "qwen", "qwen2")
    with pytest.raises(ValueError, match=r"^precision: fp8 needs the built-in"):
        modeling.load_model(folder, torch.device("cpu"), precision="fp8")
    model, _ = modeling.load_model(folder, torch.device("cpu"), precision="bf16")
    assert model is not None
