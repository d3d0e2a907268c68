"""docker-compose.yml describes the cluster (no Docker engine here: the file is parsed and checked)."""
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def load_compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_every_service_with_a_healthcheck():
    services = load_compose()["services"]
    assert set(services) == {"postgres", "redis", "web", "worker-cpu", "worker-gpu", "flower"}
    for name, service in services.items():
        assert "test" in service.get("healthcheck", {}), f"{name} has no healthcheck"


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
