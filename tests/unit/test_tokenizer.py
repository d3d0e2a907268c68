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
