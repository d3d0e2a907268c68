"""The Models page: registered models (hub ids from the page, folders by an admin under a model root), their
info read without torch (config.json, tokenizer files, safetensors headers), run checkpoints as models and
the lineage base → run → checkpoint → next run."""
from __future__ import annotations

import json
import struct
from io import StringIO
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.http import Http404

from lab.env import EnvError, env_named_paths
from lab.models import CheckpointRecord, RegisteredModel, Run
from lab.services.model_info import read_model_info, safetensors_parameters
from lab.services.model_registry import (
    ModelFolderError, model_folder_path, model_register_folder, model_register_hub, parse_hub_reference,
)


def write_safetensors(path: Path, shapes: dict[str, list[int]]) -> int:
    """A real safetensors file (header + zero bytes, float32); returns its parameter count."""
    header, offset, total = {"__metadata__": {"format": "pt"}}, 0, 0
    for name, shape in shapes.items():
        count = 1
        for d in shape:
            count *= d
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + 4 * count]}
        offset += 4 * count
        total += count
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + bytes(offset))
    return total


def make_folder(folder: Path, *, moe: bool = False, sharded: bool = False, template: str = "config") -> int:
    """A tiny Hugging Face model folder; returns its parameter count."""
    folder.mkdir(parents=True, exist_ok=True)
    config = {"model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"], "hidden_size": 8, "num_hidden_layers": 2,
              "max_position_embeddings": 4096, "vocab_size": 32, "intermediate_size": 16}
    if moe:
        config.update(model_type="qwen2_moe", architectures=["Qwen2MoeForCausalLM"], num_experts=4, num_experts_per_tok=1,
                      moe_intermediate_size=4)
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "tokenizer.json").write_text("{}")
    tokenizer_config = {"eos_token": "</s>"}
    if template == "config":
        tokenizer_config["chat_template"] = "{% for m in messages %}{{ m.content }}{% endfor %}"
    elif template == "jinja":
        (folder / "chat_template.jinja").write_text("{{ messages }}")
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    shapes = {"model.embed_tokens.weight": [32, 8], "model.layers.0.mlp.up_proj.weight": [16, 8],
              "model.norm.weight": [8], "lm_head.weight": [32, 8]}
    if moe:
        shapes.update({f"model.layers.{layer}.mlp.experts.{e}.{p}.weight": [4, 8] if p != "down_proj" else [8, 4]
                       for layer in range(2) for e in range(4) for p in ("gate_proj", "up_proj", "down_proj")})
    if not sharded:
        return write_safetensors(folder / "model.safetensors", shapes)
    names = list(shapes)
    half = len(names) // 2
    parts = {"model-00001-of-00002.safetensors": names[:half], "model-00002-of-00002.safetensors": names[half:]}
    total = sum(write_safetensors(folder / f, {n: shapes[n] for n in ns}) for f, ns in parts.items())
    (folder / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {}, "weight_map": {n: f for f, ns in parts.items() for n in ns}}))
    return total


@pytest.fixture
def roots(tmp_path, settings):
    root = tmp_path / "models"
    root.mkdir()
    settings.LAB_MODEL_ROOTS = {"shared": str(root)}
    return root


# --- info without torch ------------------------------------------------------------------------------------

def test_info_of_a_dense_folder_is_exact(tmp_path):
    total = make_folder(tmp_path / "m")
    info = read_model_info(tmp_path / "m")
    assert total == 32 * 8 + 16 * 8 + 8 + 32 * 8
    assert info["parameters"] == info["active_parameters"] == total and not info["active_is_estimate"]
    assert info["architecture"] == "Qwen2ForCausalLM" and info["context_length"] == 4096
    assert info["hidden_size"] == 8 and info["layers"] == 2 and info["vocab_size"] == 32
    assert info["tokenizer"] is True and info["chat_template"] is True and info["experts"] is None
    assert info["problems"] == []


def test_info_of_a_sharded_moe_folder_estimates_active_parameters(tmp_path):
    total = make_folder(tmp_path / "moe", moe=True, sharded=True, template="jinja")
    info = read_model_info(tmp_path / "moe")
    assert info["parameters"] == total
    assert info["experts"] == {"routed": 4, "per_token": 1}
    # 2 MoE layers × 3 unused experts × 3 matrices of 8×4
    assert info["active_parameters"] == total - 2 * 3 * 3 * 8 * 4 and info["active_is_estimate"]
    assert info["chat_template"] is True


def test_info_says_what_it_could_not_read(tmp_path):
    folder = tmp_path / "bare"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "llama"}))
    (folder / "model.safetensors").write_bytes(struct.pack("<Q", 10**12) + b"{}")
    info = read_model_info(folder)
    assert info["parameters"] is None and info["tokenizer"] is False and info["chat_template"] is False
    assert info["architecture"] == "llama" and any("safetensors" in p for p in info["problems"])
    with pytest.raises(ValueError):
        safetensors_parameters(folder / "model.safetensors")


def test_info_ignores_a_shard_that_links_out_of_the_folder(tmp_path):
    make_folder(tmp_path / "m", sharded=True)
    outside = tmp_path / "outside.safetensors"
    (tmp_path / "m" / "model-00002-of-00002.safetensors").rename(outside)
    (tmp_path / "m" / "model-00002-of-00002.safetensors").symlink_to(outside)
    info = read_model_info(tmp_path / "m")
    assert info["parameters"] is None and info["problems"]


# --- LAB_MODEL_ROOTS -----------------------------------------------------------------------------------------

def test_model_roots_from_the_environment(monkeypatch):
    monkeypatch.setenv("LAB_MODEL_ROOTS", "shared=/srv/models, scratch=/data/m/")
    assert env_named_paths("LAB_MODEL_ROOTS") == {"shared": "/srv/models", "scratch": "/data/m"}
    monkeypatch.delenv("LAB_MODEL_ROOTS")
    assert env_named_paths("LAB_MODEL_ROOTS") == {}
    for bad in ("shared", "shared=relative/path", "a b=/x", "x=/a,x=/b"):
        monkeypatch.setenv("LAB_MODEL_ROOTS", bad)
        with pytest.raises(EnvError, match="^LAB_MODEL_ROOTS: "):
            env_named_paths("LAB_MODEL_ROOTS")


# --- registering ---------------------------------------------------------------------------------------------

def test_register_a_hub_model_checks_the_id_and_the_name(lab):
    model = model_register_hub(team=lab.team, user=lab.owner, name="qwen", hub_id="Qwen/Qwen2.5-0.5B-Instruct@main")
    assert (model.kind, model.hub_id, model.revision, model.info) == ("hub", "Qwen/Qwen2.5-0.5B-Instruct", "main", {})
    assert model.hub_source == "Qwen/Qwen2.5-0.5B-Instruct@main"
    assert parse_hub_reference("Qwen/x\n") is None and parse_hub_reference("a/b@x/../y") is None
    for bad in ("/etc/passwd", "../x/y", "Qwen", "Qwen/x@../../etc", "Qwen/x y", "", "a/b/c"):
        with pytest.raises(ValidationError) as exc:
            model_register_hub(team=lab.team, user=lab.owner, name=f"bad{len(bad)}", hub_id=bad)
        assert "hub_id" in exc.value.message_dict, bad
    with pytest.raises(ValidationError, match="already has a model"):
        model_register_hub(team=lab.team, user=lab.owner, name="qwen", hub_id="a/b")
    model_register_hub(team=lab.other, user=lab.outsider, name="qwen", hub_id="a/b")  # names are per team
    with pytest.raises(Http404):
        model_register_hub(team=lab.team, user=lab.outsider, name="x", hub_id="a/b")


def test_register_a_folder_reads_its_info_and_stays_in_its_root(lab, roots, tmp_path):
    total = make_folder(roots / "qwen" / "small")
    model = model_register_folder(team=lab.team, name="small", root="shared", folder="qwen/small")
    assert model.kind == "folder" and model.info["parameters"] == total and model.location == "shared:qwen/small"
    outside = tmp_path / "secret-model"
    make_folder(outside)
    (roots / "escape").symlink_to(outside)
    for root, folder in (("shared", "escape"), ("shared", "../secret-model"), ("shared", str(outside)),
                         ("nope", "qwen/small"), ("shared", "missing"), ("shared", ".")):
        with pytest.raises(ValidationError):
            model_register_folder(team=lab.team, name=f"x-{root}-{folder}"[:90], root=root, folder=folder)
    with pytest.raises(ModelFolderError, match="outside its model root"):
        model_folder_path("shared", "escape")


def test_the_management_command_registers_a_folder(lab, roots):
    make_folder(roots / "m1")
    out = StringIO()
    call_command("lab_register_model", team="alpha", name="m1", root="shared", folder="m1", stdout=out)
    model = RegisteredModel.objects.get(team=lab.team, name="m1")
    assert f"model:{model.id}" in out.getvalue() and "Qwen2ForCausalLM" in out.getvalue()
    with pytest.raises(CommandError, match="--root"):
        call_command("lab_register_model", team="alpha", name="m2", root="other", folder="m1")
    with pytest.raises(CommandError, match="outside"):
        (roots / "up").symlink_to(roots.parent)
        call_command("lab_register_model", team="alpha", name="m3", root="shared", folder="up")


# --- the page ------------------------------------------------------------------------------------------------

def test_the_models_page_lists_models_with_info_and_no_server_paths(lab, roots, owner_client):
    make_folder(roots / "qwen")
    folder_model = model_register_folder(team=lab.team, name="local-qwen", root="shared", folder="qwen")
    hub = model_register_hub(team=lab.team, user=lab.owner, name="hub-qwen", hub_id="Qwen/Qwen2.5-0.5B")
    used = Run.objects.create(team=lab.team, name="from-hub", created_by=lab.owner,
                              config={"kind": "grpo", "model": {"source": hub.reference}})
    page = owner_client.get("/models/").content.decode()
    assert "local-qwen" in page and "Qwen2ForCausalLM" in page and "4096" in page and "shared:qwen" in page
    assert "hub-qwen" in page and "not downloaded yet" in page and "Qwen/Qwen2.5-0.5B" in page
    assert str(roots) not in page
    assert f'href="/runs/{used.id}/"' in page and f"?model=model%3A{hub.id}" in page
    assert f"model:{folder_model.id}" in page and 'href="/models/"' in page  # the top bar


def test_run_checkpoints_are_models_with_their_lineage(lab, owner_client):
    hub = model_register_hub(team=lab.team, user=lab.owner, name="base-hub", hub_id="org/base")
    Run.objects.filter(id=lab.run.id).update(config={"kind": "grpo", "model": {"source": hub.reference}})
    child = Run.objects.create(team=lab.team, name="next-run", created_by=lab.owner, parent=lab.run, parent_step=20,
                               config={"kind": "sft", "model": {"source": f"run:{lab.run.id}@20"}})
    CheckpointRecord.objects.create(run=child, seq=1, step=5, path="/x")
    grandchild = Run.objects.create(team=lab.team, name="third", created_by=lab.owner,
                                    config={"kind": "grpo", "model": {"source": f"run:{child.id}@5"}})
    page = owner_client.get("/models/").content.decode()
    assert f"run:{lab.run.id}@20" in page and f"run:{child.id}@5" in page
    row = page.split(f'id="checkpoint-{lab.run.id}-20"')[1].split("</tr>")[0]
    assert "base-hub" in row and f"#model-{hub.id}" in row and "next-run" in row  # base → run → checkpoint → next
    row = page.split(f'id="checkpoint-{child.id}-5"')[1].split("</tr>")[0]
    assert f"run:{lab.run.id}@20" in row and "third" in row and f"/runs/{grandchild.id}/" in row
    assert f"/runs/new/?parent={lab.run.id}&amp;step=20" in page
    hub_row = page.split(f'id="model-{hub.id}"')[1].split("</tr>")[0]
    assert "alpha-run" in hub_row  # the run that used it


def test_register_a_hub_model_from_the_page(lab, owner_client, teammate_client):
    response = owner_client.post("/models/register", {"name": "tiny-qwen", "hub_id": "Qwen/Qwen2.5-0.5B@v1"})
    model = RegisteredModel.objects.get(team=lab.team, name="tiny-qwen")
    assert response.status_code == 302 and response["Location"] == f"/models/#model-{model.id}"
    response = owner_client.post("/models/register", {"name": "bad", "hub_id": "/srv/models/qwen"})
    assert response.status_code == 400 and "is not a Hugging Face hub id" in response.content.decode()
    assert not RegisteredModel.objects.filter(name="bad").exists()
    assert teammate_client.post("/models/register", {"name": "r", "hub_id": "a/b"}).status_code == 403
    assert "Register a hub model" not in teammate_client.get("/models/").content.decode()


def test_another_team_sees_none_of_it(lab, outsider_client, client):
    hub = model_register_hub(team=lab.team, user=lab.owner, name="alpha-secret-model", hub_id="org/secret")
    page = outsider_client.get("/models/").content.decode()
    assert "alpha-secret-model" not in page and "org/secret" not in page and f"run:{lab.run.id}@" not in page
    outsider_client.post("/models/register", {"name": "beta-model", "hub_id": "a/b"})
    assert RegisteredModel.objects.get(name="beta-model").team_id == lab.other.id
    assert hub.team_id == lab.team.id
    assert client.get("/models/").status_code == 302  # anonymous: to the login


def test_hostile_names_are_escaped(lab, owner_client):
    from tests.lab.xss_corpus import XSS_CORPUS

    for i, payload in enumerate(XSS_CORPUS[:5]):
        model_register_hub(team=lab.team, user=lab.owner, name=f"{i} {payload}"[:100], hub_id="org/name")
    Run.objects.filter(id=lab.run.id).update(name=XSS_CORPUS[0])
    page = owner_client.get("/models/").content.decode()
    for payload in XSS_CORPUS[:5]:
        if "<" in payload:
            assert payload not in page


def test_the_django_admin_registers_a_folder_confined_to_its_root(lab, roots, tmp_path):
    from django.contrib.auth import get_user_model
    from django.test import Client

    make_folder(roots / "good")
    (roots / "out").symlink_to(tmp_path)
    staff = get_user_model().objects.create_superuser("root-admin", password="root-admin-password-1")
    client = Client()
    client.force_login(staff)
    form = {"team": lab.team.id, "name": "escape", "kind": "folder", "root": "shared", "folder": "out", "hub_id": "", "revision": ""}
    response = client.post("/admin/lab/registeredmodel/add/", form)
    assert response.status_code == 200 and "outside its model root" in response.content.decode()
    response = client.post("/admin/lab/registeredmodel/add/", {**form, "name": "good", "folder": "good"})
    assert response.status_code == 302
    model = RegisteredModel.objects.get(name="good")
    assert model.info["architecture"] == "Qwen2ForCausalLM" and model.created_by == staff
