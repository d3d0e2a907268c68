"""R1Tokenizer: character-level, special tags as single ids, round trip, save/load."""
from r1model.model.config import CHAR_VOCAB_SIZE, ModelConfig
from r1model.model.tokenizer import R1Tokenizer


def test_round_trip_of_printable_ascii_and_newlines():
    tok = R1Tokenizer.build()
    text = "".join(chr(c) for c in range(32, 127)) + "\n  12 + 34 = 46\n"
    ids = tok.encode(text)
    assert len(ids) == len(text)
    assert tok.decode(ids) == text


def test_tags_are_single_tokens_inside_text():
    tok = R1Tokenizer.build()
    ids = tok.encode("<think>1+1</think><answer>2</answer>")
    assert len(ids) == 1 + 3 + 1 + 1 + 1 + 1
    assert ids[0] == tok.token_id("<think>") and ids[-1] == tok.token_id("</answer>")
    assert tok.decode(ids) == "<think>1+1</think><answer>2</answer>"
    assert tok.decode(ids, skip_special_tokens=True) == "1+12"


def test_unknown_characters_become_unk_not_errors():
    tok = R1Tokenizer.build()
    ids = tok.encode("é\t")
    assert ids == [tok.token_id("<unk>")] * 2


def test_special_ids_and_vocab_match_the_tiny_preset():
    tok = R1Tokenizer.build()
    cfg = ModelConfig.preset("tiny")
    assert tok.vocab_size == CHAR_VOCAB_SIZE == cfg.vocab_size
    assert (tok.pad_id, tok.eos_id) == (cfg.pad_token_id, cfg.eos_token_id)
    assert len({tok.token_id(t) for t in ("<think>", "</think>", "<answer>", "</answer>", "<eos>", "<pad>")}) == 6


def test_save_and_load_give_the_same_encoding(tmp_path):
    tok = R1Tokenizer.build()
    path = tok.save(tmp_path)
    assert path.name == "tokenizer.json" and path.is_file()
    again = R1Tokenizer.load(tmp_path)
    text = "<think>x</think> y\n<eos>"
    assert again.encode(text) == tok.encode(text) and again.eos_id == tok.eos_id


# ---- the byte-level BPE tokenizer (presets tiny-bpe / small-bpe) ------------------------------------
import json  # noqa: E402

import pytest  # noqa: E402

from r1model.model.config import BPE_VOCAB_SIZE, PRESETS  # noqa: E402
from r1model.model.tokenizer import BPE_FILE, SPECIAL_TOKENS  # noqa: E402

BILINGUAL = "<think>先加个位：7加5等于12，写下2，进1。Then 3+4+1=8, so the sum is 82.</think><answer>82</answer>"


def test_bpe_round_trips_chinese_english_and_any_unicode_exactly():
    tok = R1Tokenizer.build("bpe")
    for text in (BILINGUAL, "让我们一步一步地思考。", "User: 679527+153242\nAssistant: ", "  tabs\tand é ü 😀 한국어\n\n"):
        ids = tok.encode(text)
        assert tok.token_id("<unk>") not in ids
        assert tok.decode(ids) == text


def test_bpe_merges_common_text_into_fewer_tokens_than_characters():
    tok = R1Tokenizer.build("bpe")
    for text in ("A conversation between User and Assistant.", "让我再检查一遍答案。"):
        assert len(tok.encode(text)) < len(text)


def test_bpe_tags_and_special_tokens_are_single_tokens_with_the_char_ids():
    bpe, char = R1Tokenizer.build("bpe"), R1Tokenizer.build("char")
    for special in SPECIAL_TOKENS:
        assert bpe.encode(special) == [bpe.token_id(special)] == [char.token_id(special)]
    ids = bpe.encode("x<think>不</think><answer>2</answer>")
    assert ids.count(bpe.token_id("<think>")) == 1 and ids[-1] == bpe.token_id("</answer>")
    assert bpe.decode(ids, skip_special_tokens=True) == "x不2"
    assert (bpe.pad_id, bpe.eos_id) == (char.pad_id, char.eos_id)


def test_bpe_spells_numbers_one_digit_per_token():
    tok = R1Tokenizer.build("bpe")
    pieces = [tok.decode([i]) for i in tok.encode("1234567890+98765")]
    assert pieces == list("1234567890+98765")


def test_the_shipped_bpe_file_is_what_the_training_script_produces():
    from r1model.model.train_tokenizer import train_bpe

    shipped = json.loads(BPE_FILE.read_text(encoding="utf-8"))
    assert shipped == json.loads(train_bpe().to_str(pretty=True))
    assert R1Tokenizer.build("bpe").vocab_size == BPE_VOCAB_SIZE
    assert BPE_FILE.stat().st_size < 100_000


def test_unknown_tokenizer_kind_is_an_error():
    with pytest.raises(ValueError, match="tokenizer kind"):
        R1Tokenizer.build("wordpiece")
    with pytest.raises(ValueError, match="tokenizer"):
        ModelConfig.preset("tiny", tokenizer="wordpiece")


def test_presets_choose_their_tokenizer_and_the_vocabulary_follows_it():
    assert ModelConfig.preset("tiny").tokenizer == "char"  # aha-mini's tuned preset keeps its tokenizer
    assert "tokenizer" not in PRESETS["tiny"] and "tokenizer" not in PRESETS["small"]
    for name in ("tiny-bpe", "small-bpe"):
        cfg = ModelConfig.preset(name)
        tok = R1Tokenizer.for_config(cfg)
        assert (cfg.tokenizer, tok.kind, cfg.vocab_size, tok.vocab_size) == ("bpe", "bpe", BPE_VOCAB_SIZE, BPE_VOCAB_SIZE)
    override = ModelConfig.preset("tiny", tokenizer="bpe")
    assert override.vocab_size == BPE_VOCAB_SIZE and R1Tokenizer.for_config(override).kind == "bpe"
    assert R1Tokenizer.for_config(ModelConfig.preset("tiny")).kind == "char"
    with pytest.raises(ValueError, match="vocab_size"):
        R1Tokenizer.for_config(ModelConfig.preset("tiny", tokenizer="bpe", vocab_size=200))


def test_config_json_names_the_bpe_tokenizer_and_stays_unchanged_for_char():
    assert "tokenizer" not in ModelConfig.preset("tiny").to_hf_dict()
    data = ModelConfig.preset("tiny-bpe").to_hf_dict()
    assert data["tokenizer"] == "bpe"
    assert ModelConfig.from_hf_dict(data) == ModelConfig.preset("tiny-bpe")


SMALL = dict(hidden_size=32, intermediate_size=64, moe_intermediate_size=16, num_hidden_layers=2, num_attention_heads=2,
             q_lora_rank=16, kv_lora_rank=16, qk_nope_head_dim=8, qk_rope_head_dim=8, v_head_dim=8,
             num_nextn_predict_layers=0)


def test_an_old_char_checkpoint_loads_with_its_char_tokenizer(tmp_path):
    """A checkpoint written before the tokenizer field: config.json without it, a char tokenizer.json."""
    import torch

    from r1model.model.deepseek_v3 import DeepSeekV3
    from r1model.train import modeling

    torch.manual_seed(0)
    model = DeepSeekV3(ModelConfig.preset("tiny", **SMALL))
    model.save_pretrained(tmp_path, tokenizer=R1Tokenizer.build())
    data = json.loads((tmp_path / "config.json").read_text())
    assert "tokenizer" not in data  # the old layout, byte for byte
    loaded, tok = modeling.load_model(tmp_path, torch.device("cpu"))
    assert (loaded.config.tokenizer, loaded.config.vocab_size, tok.kind, tok.vocab_size) == ("char", CHAR_VOCAB_SIZE, "char", CHAR_VOCAB_SIZE)
    assert tok.encode("<think>1+1</think>") == R1Tokenizer.build().encode("<think>1+1</think>")
    ids = torch.tensor([tok.encode("User: 1+1\nAssistant: ")])
    assert torch.equal(loaded(ids).logits, model(ids).logits)


def test_a_bpe_checkpoint_loads_with_its_bpe_tokenizer(tmp_path):
    import torch

    from r1model.model.deepseek_v3 import DeepSeekV3
    from r1model.train import modeling

    torch.manual_seed(0)
    cfg = ModelConfig.preset("tiny-bpe", **SMALL)
    model = DeepSeekV3(cfg)
    model.save_pretrained(tmp_path, tokenizer=R1Tokenizer.for_config(cfg))
    loaded, tok = modeling.load_model(tmp_path, torch.device("cpu"))
    assert (loaded.config.tokenizer, tok.kind, tok.vocab_size) == ("bpe", "bpe", BPE_VOCAB_SIZE)
    assert tok.decode(tok.encode(BILINGUAL)) == BILINGUAL
    ids = torch.tensor([tok.encode("User: 先加 1+1\nAssistant: ")])
    assert torch.equal(loaded(ids).logits, model(ids).logits)


def test_a_bpe_preset_builds_with_its_own_tokenizer():
    import torch

    from r1model.train.config import ModelSpec
    from r1model.train.modeling import build_model

    model, tokenizer = build_model(ModelSpec(source="tiny-bpe"), torch.device("cpu"), seed=0)
    assert tokenizer.kind == "bpe" and tokenizer.vocab_size == model.config.vocab_size
    assert tokenizer.decode(tokenizer.encode("二加三等于五")) == "二加三等于五"
