"""FP8 mixed precision (V3 report §3.3): E4M3 block-quantised GEMMs with fp32 scales and accumulation.

Fine-grained quantisation: activations get one scale per 1x128 tile (per token, per 128 channels),
weights one per 128x128 block; scale = amax / 448 with amax clamped >= 1e-4; q = cast_e4m3(x / scale).
All three GEMMs of a Linear (fprop, dgrad, wgrad) take E4M3 inputs, each quantised along its own
contraction dimension. Master weights, gradients and optimizer state stay fp32.

On CPU (and any device without a block-scaled kernel) the GEMM is emulated: quantise with a real cast to
``torch.float8_e4m3fn``, dequantise, multiply in fp32. That is the same arithmetic as the hardware's
per-128-K-block ``acc += (a_q·b_q)·s_a·s_b`` up to fp32 summation order. On CUDA sm90+ the forward GEMM
tries ``torch._scaled_mm`` with blockwise scales and falls back to emulation if this torch build lacks it.

The module also holds the precision switch: ``make_linear(in, out, precision)`` gives the Linear used for
every GEMM that the report quantises (attention projections, experts, MTP projection). Embedding, output
head, MoE gate, norms and the attention core are built elsewhere and stay in high precision.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

E4M3_MAX = 448.0  # largest finite torch.float8_e4m3fn
BLOCK = 128
AMAX_FLOOR = 1e-4


def _pad_to(x: torch.Tensor, dim: int, multiple: int) -> torch.Tensor:
    extra = (-x.shape[dim]) % multiple
    if extra == 0:
        return x
    pad = [0, 0] * (x.dim() - 1 - (dim % x.dim())) + [0, extra]
    return F.pad(x, pad)


def quantize_tiles(x: torch.Tensor, block: int = BLOCK) -> tuple[torch.Tensor, torch.Tensor]:
    """Activation quantisation, one scale per 1 x block tile of the last dim.

    Returns (q, scale): q float8_e4m3fn of x's shape, scale fp32 of shape (..., ceil(K/block)).
    """
    k = x.shape[-1]
    tiles = _pad_to(x.float(), -1, block).unflatten(-1, (-1, block))  # (..., nb, block)
    scale = tiles.abs().amax(-1).clamp(min=AMAX_FLOOR) / E4M3_MAX  # (..., nb)
    q = (tiles / scale[..., None]).to(torch.float8_e4m3fn)
    return q.flatten(-2)[..., :k], scale


def dequantize_tiles(q: torch.Tensor, scale: torch.Tensor, block: int = BLOCK) -> torch.Tensor:
    k = q.shape[-1]
    tiles = _pad_to(q.float(), -1, block).unflatten(-1, (-1, block))
    return (tiles * scale[..., None]).flatten(-2)[..., :k]


def quantize_blocks(w: torch.Tensor, block: int = BLOCK) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight quantisation, one scale per block x block square. w: (N, K) -> q (N, K), scale (nN, nK)."""
    n, k = w.shape
    padded = _pad_to(_pad_to(w.float(), 0, block), 1, block)
    blocks = padded.unflatten(0, (-1, block)).unflatten(2, (-1, block))  # (nN, block, nK, block)
    scale = blocks.abs().amax(dim=(1, 3)).clamp(min=AMAX_FLOOR) / E4M3_MAX  # (nN, nK)
    q = (blocks / scale[:, None, :, None]).to(torch.float8_e4m3fn)
    return q.flatten(2).flatten(0, 1)[:n, :k], scale


def dequantize_blocks(q: torch.Tensor, scale: torch.Tensor, block: int = BLOCK) -> torch.Tensor:
    """Inverse of quantize_blocks; also reads checkpoints' ``weight_scale_inv`` (a multiplier, despite the name)."""
    n, k = q.shape
    padded = _pad_to(_pad_to(q.float(), 0, block), 1, block)
    blocks = padded.unflatten(0, (-1, block)).unflatten(2, (-1, block))
    return (blocks * scale.float()[:, None, :, None]).flatten(2).flatten(0, 1)[:n, :k]


def fake_quant_tiles(x: torch.Tensor) -> torch.Tensor:
    """x after an E4M3 round trip with 1x128 tile scales along the last dim (fp32)."""
    return dequantize_tiles(*quantize_tiles(x))


def fake_quant_blocks(w: torch.Tensor) -> torch.Tensor:
    return dequantize_blocks(*quantize_blocks(w))


def _scaled_mm_available(x: torch.Tensor) -> bool:
    return (x.is_cuda and hasattr(torch, "_scaled_mm") and torch.cuda.get_device_capability(x.device) >= (9, 0)
            and _SCALED_MM_STATE["ok"] is not False)


_SCALED_MM_STATE: dict[str, bool | None] = {"ok": None}


def _fprop_scaled_mm(x2d: torch.Tensor, w: torch.Tensor) -> torch.Tensor | None:
    """Block-scaled E4M3 GEMM on Hopper; None when this torch build rejects blockwise scales.

    Scale layouts follow torch's checks for (BlockWise1x128, BlockWise128x128): scale_a (M, K/128),
    scale_b (K/128, N/128). The first result is compared with the emulation; a mismatch (a layout this
    build reads differently) disables the kernel for the rest of the process.
    """
    if x2d.shape[-1] % BLOCK or w.shape[0] % BLOCK or w.shape[1] % BLOCK:
        return None
    try:
        qa, sa = quantize_tiles(x2d)  # (M, K), (M, K/128)
        qw, sw = quantize_blocks(w)  # (N, K), (N/128, K/128)
        out = torch._scaled_mm(qa, qw.t(), scale_a=sa.contiguous(), scale_b=sw.t().contiguous(),
                               out_dtype=torch.bfloat16).float()
    except (RuntimeError, TypeError, NotImplementedError):
        _SCALED_MM_STATE["ok"] = False
        return None
    if _SCALED_MM_STATE["ok"] is None:
        reference = fake_quant_tiles(x2d) @ fake_quant_blocks(w).t()
        error = (out - reference).norm() / reference.norm().clamp(min=1e-12)
        _SCALED_MM_STATE["ok"] = bool(error < 1e-2)
        if not _SCALED_MM_STATE["ok"]:
            return reference
    return out


class _FP8LinearFunction(torch.autograd.Function):
    """y = x W^T with E4M3 inputs in all three GEMMs; the quantiser is passed through in backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        x2d = x.reshape(-1, x.shape[-1])
        w_q = fake_quant_blocks(weight)  # 128x128 blocks serve both fprop (over K) and dgrad (over N)
        ctx.save_for_backward(x, weight, w_q)
        out = _fprop_scaled_mm(x2d, weight) if _scaled_mm_available(x) else None
        if out is None:  # fprop: contraction over K -> tiles along K for x
            out = fake_quant_tiles(x2d) @ w_q.t()
        return out.reshape(*x.shape[:-1], weight.shape[0]).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        x, weight, w_q = ctx.saved_tensors
        g2d = grad_out.reshape(-1, grad_out.shape[-1]).float()  # (M, N)
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:  # dgrad: contraction over N -> tiles of the output grad along N
            grad_x = (fake_quant_tiles(g2d) @ w_q).reshape(x.shape).to(x.dtype)
        if ctx.needs_input_grad[1]:  # wgrad: contraction over tokens M -> tiles along M
            x2d = x.reshape(-1, x.shape[-1]).float()  # (M, K)
            grad_w = (fake_quant_tiles(g2d.t()) @ fake_quant_tiles(x2d.t()).t()).to(weight.dtype)
        return grad_x, grad_w


class FP8Linear(nn.Linear):
    """nn.Linear (fp32 master weight, same state_dict) whose GEMMs run in block-scaled E4M3."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__(in_features, out_features, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _FP8LinearFunction.apply(x, self.weight)


class BF16Linear(nn.Linear):
    """nn.Linear with fp32 master weights whose GEMM runs in bfloat16; returns the input dtype."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__(in_features, out_features, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x.to(torch.bfloat16), self.weight.to(torch.bfloat16)).to(x.dtype)


def gemm_weight(linear: nn.Linear) -> torch.Tensor:
    """The weight (out, in) as this Linear's GEMM multiplies it, in fp32 for FP8 and BF16.

    For code that folds a Linear's matrix into another product instead of calling it (absorbed MLA decoding,
    V2 report §2.1.3): FP8 -> the E4M3 round trip of its 128x128 blocks (V3 §3.3; DeepSeek-V3's inference
    code dequantises wkv_b the same way), BF16 -> its bfloat16 rounding, fp32 -> the weight itself. Reading
    ``.weight`` directly would compute with the master weight, a different function from the forward's.
    """
    if isinstance(linear, FP8Linear):
        return fake_quant_blocks(linear.weight)
    if isinstance(linear, BF16Linear):
        return linear.weight.to(torch.bfloat16).float()
    return linear.weight


def gemm_input(linear: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """x (..., in) as this Linear's GEMM takes it (the partner of gemm_weight), in x's dtype: FP8 -> the E4M3
    round trip of its 1x128 tiles (per token, so any rows give the same result), BF16 -> its bfloat16 rounding,
    fp32 -> x itself."""
    if isinstance(linear, FP8Linear):
        return fake_quant_tiles(x).to(x.dtype)
    if isinstance(linear, BF16Linear):
        return x.to(torch.bfloat16).to(x.dtype)
    return x


def make_linear(in_features: int, out_features: int, precision: str) -> nn.Linear:
    """The precision switch: fp32 -> nn.Linear, bf16 -> BF16Linear, fp8 -> FP8Linear (all bias-free)."""
    if precision == "fp8":
        return FP8Linear(in_features, out_features)
    if precision == "bf16":
        return BF16Linear(in_features, out_features)
    if precision == "fp32":
        return nn.Linear(in_features, out_features, bias=False)
    raise ValueError(f"precision: must be one of fp32, bf16, fp8 (got {precision!r})")
