"""docker-compose.yml describes the cluster (no Docker engine here: the file is parsed and checked)."""
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def load_compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_every_service_with_a_healthcheck():
    services = load_compose()["services"]
    default = {name for name, service in services.items() if not service.get("profiles")}
    assert default == {"postgres", "redis", "web", "worker-cpu", "worker-gpu", "flower"}
    for name, service in services.items():
        assert "test" in service.get("healthcheck", {}), f"{name} has no healthcheck"


def test_gpu2_profile_runs_one_torchrun_per_node_against_one_master():
    services = load_compose()["services"]
    nodes = [services["gpu-node0"], services["gpu-node1"]]
    assert all(node["profiles"] == ["gpu2"] for node in nodes)
    assert [node["environment"]["NODE_RANK"] for node in nodes] == ["0", "1"]
    assert nodes[0]["environment"]["MASTER_ADDR"] == nodes[1]["environment"]["MASTER_ADDR"]
    for node in nodes:
        command = " ".join(node["command"])
        assert "torchrun --nnodes 2 --node-rank" in command and "-m r1model train" in command
        assert "labdata:/data" in node["volumes"]  # one run directory: rank 0 writes, every rank resumes from it
        assert any("gpu" in d["capabilities"] for d in node["deploy"]["resources"]["reservations"]["devices"])


def test_workers_listen_on_their_own_queue():
    services = load_compose()["services"]
    for name, queue in (("worker-cpu", "cpu"), ("worker-gpu", "gpu")):
        command = services[name]["command"]
        assert command[command.index("-Q") + 1] == queue
        assert "--concurrency" in command and command[command.index("--concurrency") + 1] == "1"


def test_gpu_worker_reserves_gpus_and_uses_the_gpu_image():
    gpu = load_compose()["services"]["worker-gpu"]
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert any("gpu" in d["capabilities"] for d in devices)
    assert gpu["build"]["dockerfile"] == "Dockerfile.gpu"
    assert (ROOT / "Dockerfile.gpu").exists() and ".[gpu]" in (ROOT / "Dockerfile.gpu").read_text()


def test_web_and_workers_share_the_data_volume_and_the_services():
    services = load_compose()["services"]
    for name in ("web", "worker-cpu", "worker-gpu"):
        service = services[name]
        assert "labdata:/data" in service["volumes"], name
        assert service["environment"]["LAB_DATA_DIR"] == "/data"
        assert service["environment"]["DATABASE_URL"].startswith("postgres://")
        assert service["environment"]["REDIS_URL"].startswith("redis://")
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "pgdata:/var/lib/postgresql/data" in services["postgres"]["volumes"]
