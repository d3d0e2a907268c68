"""Multi-token prediction: the loss is CE of the token after next, weighted lambda/D, D modules chained."""
import pytest
import torch
import torch.nn.functional as F

from r1model.model import DeepSeekV3, ModelConfig


def test_mtp_loss_is_ce_of_the_token_after_next():
    torch.manual_seed(0)
    model = DeepSeekV3(ModelConfig.preset("tiny", seq_aux_loss_alpha=0.0)).eval()
    ids = torch.randint(3, 103, (2, 10))
    out = model(ids, labels=ids)
    # by hand: position i sees h_i and Emb(t_{i+1}) and predicts t_{i+2}
    _, logits = model.mtp_forward(out.hidden_states[:, :9], ids[:, 1:], None, None)
    expected = F.cross_entropy(logits[:, :8].reshape(-1, 103), ids[:, 2:].reshape(-1))
    assert out.mtp_loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert out.loss.item() == pytest.approx(out.lm_loss.item() + 0.3 * expected.item(), rel=1e-5)


def test_two_mtp_depths_chain_and_average():
    torch.manual_seed(0)
    cfg = ModelConfig.preset("tiny", num_nextn_predict_layers=2, mtp_loss_weight=0.5)
    model = DeepSeekV3(cfg)
    ids = torch.randint(3, 103, (2, 10))
    out = model(ids, labels=ids)
    out.loss.backward()
    assert model.mtp[1].eh_proj.weight.grad.abs().sum() > 0
    keys = model.state_dict()
    assert "mtp.1.shared_head.norm.weight" in keys
    from r1model.model.checkpoint import to_hf_key
    assert to_hf_key("mtp.1.eh_proj.weight", 4) == "model.layers.5.eh_proj.weight"


def test_no_mtp_modules_means_zero_mtp_loss():
    model = DeepSeekV3(ModelConfig.preset("tiny", num_nextn_predict_layers=0))
    ids = torch.randint(3, 103, (2, 8))
    out = model(ids, labels=ids)
    assert out.mtp_loss.item() == 0.0 and len(model.mtp) == 0
