"""The compose deployment is complete, healthy by construction, and runs only real CLI commands."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml

from artstore.cli import app

COMPOSE = Path(__file__).resolve().parents[3] / "compose"
INFRASTRUCTURE = {"kafka", "postgres", "redis", "minio"}
ARTSTORE_SERVICES = {"auth", "facade", "projector", "worker-local", "worker-s3"}
ONE_SHOT = {"topics"}
MONITORING = {"prometheus", "grafana"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def test_every_part_of_the_system_is_a_service(services) -> None:
    assert set(services) == INFRASTRUCTURE | ARTSTORE_SERVICES | ONE_SHOT | MONITORING


def test_infrastructure_images_are_pinned(services) -> None:
    for name in INFRASTRUCTURE | MONITORING:
        image = services[name]["image"]
        assert ":" in image, f"{name}: {image} has no tag"
        assert not image.endswith(":latest"), f"{name}: {image} is not pinned"


def test_production_runs_the_apache_kafka_version_the_local_stack_pins(services) -> None:
    from artstore.stack.apache_kafka import kafka_version

    assert services["kafka"]["image"] == f"apache/kafka:{kafka_version()}"


def test_artstore_services_build_from_the_one_dockerfile(services) -> None:
    for name in ARTSTORE_SERVICES | ONE_SHOT:
        build = services[name]["build"]
        assert build["dockerfile"] == "compose/Dockerfile"
        assert (COMPOSE / build["context"] / build["dockerfile"]).resolve().is_file()


def test_long_running_services_have_health_checks_and_restart(services) -> None:
    for name in INFRASTRUCTURE | ARTSTORE_SERVICES | MONITORING:
        service = services[name]
        assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"
        assert service.get("restart") == "unless-stopped", name
    assert services["topics"]["restart"] == "no"


def test_artstore_services_wait_for_healthy_dependencies_and_the_topics(services) -> None:
    for name in ARTSTORE_SERVICES:
        deps = services[name]["depends_on"]
        assert set(deps) >= INFRASTRUCTURE | {"topics"}, name
        assert deps["topics"]["condition"] == "service_completed_successfully"
        for dep in INFRASTRUCTURE:
            assert deps[dep]["condition"] == "service_healthy"
        for dep in deps:
            assert dep in services, f"{name} depends on unknown {dep}"


def test_stateful_services_keep_data_in_declared_volumes(compose, services) -> None:
    declared = set(compose["volumes"])
    for name in ("kafka", "postgres", "redis", "minio", "worker-local", "prometheus", "grafana"):
        volumes = services[name].get("volumes", [])
        assert volumes, f"{name} keeps its data in the container"
        named = [v for v in volumes if not v.startswith("./")]  # ./...: config from this repo
        assert named, f"{name} keeps its data in the container"
        for volume in named:
            assert volume.split(":", 1)[0] in declared


def test_health_check_ports_match_what_the_service_serves(services) -> None:
    for name in ARTSTORE_SERVICES:
        probe = " ".join(services[name]["healthcheck"]["test"])
        port = re.search(r"127\.0\.0\.1:(\d+)/", probe).group(1)  # type: ignore[union-attr]
        env = services[name].get("environment", {})
        command = services[name]["command"]
        assert port in {
            env.get("ARTSTORE_FACADE_PORT"),
            env.get("ARTSTORE_PROJECTOR_METRICS_PORT"),
            env.get("ARTSTORE_STORAGE_HEALTH_PORT"),
            *(command[i + 1] for i, arg in enumerate(command) if arg == "--port"),
        }, f"{name} probes port {port} but does not serve it"


def test_secrets_come_from_an_env_file_that_is_not_committed(services) -> None:
    text = (COMPOSE / "docker-compose.yml").read_text()
    for name in ARTSTORE_SERVICES | ONE_SHOT:
        assert services[name]["env_file"] == [".env"]
    example = (COMPOSE / ".env.example").read_text()
    defined = {line.split("=", 1)[0] for line in example.splitlines() if "=" in line}
    referenced = set(re.findall(r"\$\{(ARTSTORE_[A-Z0-9_]+)", text)) - {"ARTSTORE_IMAGE"}
    assert referenced <= defined
    assert not re.search(r"(PASSWORD|SECRET)[A-Z_]*: [^$\s{]", text), "a literal secret"
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", str(COMPOSE / ".env")], check=False
    ).returncode
    assert ignored == 0, "compose/.env must be ignored by git"


def _resolve(command: list[str]) -> Any:
    """Walk the CLI like a shell would; fail on an unknown command or option."""
    assert command[0] == "artstore"
    node: Any = typer.main.get_command(app)
    args = command[1:]
    while hasattr(node, "commands") and args and not args[0].startswith("-"):
        sub = node.commands.get(args[0])
        assert sub is not None, f"`{' '.join(command)}`: no command {args[0]!r}"
        node, args = sub, args[1:]
    options = {opt for param in node.params for opt in getattr(param, "opts", [])}
    for arg in args:
        if arg.startswith("--"):
            assert arg in options, f"`{' '.join(command)}`: no option {arg}"
    return node


def test_every_command_the_deployment_runs_exists_in_the_cli(services) -> None:
    for name in ARTSTORE_SERVICES | ONE_SHOT:
        command = services[name]["command"]
        assert not hasattr(_resolve(command), "commands"), f"{name} runs a command group"


def test_the_command_resolver_refuses_what_does_not_exist() -> None:
    with pytest.raises(AssertionError, match="no command"):
        _resolve(["artstore", "query", "nonsense"])
    with pytest.raises(AssertionError, match="no option"):
        _resolve(["artstore", "auth", "serve", "--nonsense", "1"])


def test_the_image_runs_as_an_unprivileged_user() -> None:
    dockerfile = (COMPOSE / "Dockerfile").read_text()
    stages = re.findall(r"^FROM .* AS (\w+)$", dockerfile, flags=re.M)
    assert stages == ["build", "runtime"]
    runtime = dockerfile.split("AS runtime", 1)[1]
    assert re.search(r"^USER artstore$", runtime, flags=re.M)
    # Every package the wheel is built from (pyproject's packages.find), so none is missed.
    pyproject = tomllib.loads((COMPOSE.parent / "pyproject.toml").read_text())
    included = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = [pattern.removesuffix("*") for pattern in included]
    assert "operations" in packages
    for package in packages:
        assert f"COPY {package} ./{package}" in dockerfile, f"{package} is not in the image"


def test_every_setting_in_the_environment_is_one_the_services_read(services) -> None:
    from auth.settings import AuthSettings
    from base.settings import Settings
    from consumers.settings import ProjectorSettings
    from facade.settings import FacadeSettings
    from storage_workers.config import WorkerConfig

    by_prefix = {
        "ARTSTORE_STORAGE_": WorkerConfig,
        "ARTSTORE_PROJECTOR_": ProjectorSettings,
        "ARTSTORE_FACADE_": FacadeSettings,
        "ARTSTORE_AUTH_": AuthSettings,
        "ARTSTORE_": Settings,
    }
    for name in ARTSTORE_SERVICES | ONE_SHOT:
        for key in services[name].get("environment", {}):
            prefix = next(p for p in by_prefix if key.startswith(p))
            field = key.removeprefix(prefix).lower()
            assert field in by_prefix[prefix].model_fields, f"{name}: {key} is read by nothing"
