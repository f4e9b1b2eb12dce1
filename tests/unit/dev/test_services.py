"""What ``artstore dev`` runs and keeps: services, ports, environment, instance, credentials."""

from __future__ import annotations

import socket
import stat
from pathlib import Path

import pytest

from artstore.dev.runner import DevError, DevOptions, prepare_instance, upload_command
from artstore.dev.services import (
    ELEMENTS,
    Credentials,
    Instance,
    Layout,
    Ports,
    Urls,
    child_environment,
    env_file_text,
    parse_bootstrap_line,
    plan_services,
    read_env_file,
    shared_env,
    write_private,
)
from artstore.stack import StackEnv
from tests.dev_ports import free_dev_ports

STACK = StackEnv(
    kafka_bootstrap="127.0.0.1:19092",
    database_url="postgresql+asyncpg://postgres@127.0.0.1:5432/artstore",
    redis_url="redis://127.0.0.1:6379/0",
    s3_endpoint="127.0.0.1:8333",
)


def test_every_service_is_its_own_process_on_its_own_port() -> None:
    plans = plan_services(Ports(9000), python="/py")
    names = [p.name for p in plans]
    assert names == ["auth", "projector", "facade", "notifications", "se-edit", "se-rw", "se-s3"]
    ports = {p.health_url.split(":")[2].split("/")[0] for p in plans}
    assert len(ports) == len(plans) == len(Ports(9000).all())
    assert all(p.argv[0] == "/py" for p in plans)


def test_two_local_elements_edit_and_rw_and_one_on_s3_which_fills_last() -> None:
    workers = {p.name: p.env for p in plan_services(Ports(9000)) if p.name.startswith("se-")}
    assert {e.element_id: (e.mode, e.backend) for e in ELEMENTS} == {
        "se-edit": ("edit", "local"),
        "se-rw": ("rw", "local"),
        "se-s3": ("rw", "s3"),
    }
    assert workers["se-s3"]["ARTSTORE_STORAGE_BACKEND"] == "s3"
    assert workers["se-s3"]["ARTSTORE_STORAGE_S3_PREFIX"] == "elements/se-s3/"
    assert int(workers["se-s3"]["ARTSTORE_STORAGE_PRIORITY"]) > int(
        workers["se-rw"]["ARTSTORE_STORAGE_PRIORITY"]
    )


def test_rw_elements_archive_to_a_cold_tier_of_their_kind_and_restore_into_the_edit_one() -> None:
    workers = {p.name: p.env for p in plan_services(Ports(9000)) if p.name.startswith("se-")}
    cold = {name: env.get("ARTSTORE_STORAGE_COLD_BACKEND") for name, env in workers.items()}
    assert cold == {"se-edit": None, "se-rw": "local", "se-s3": "s3"}
    restores = {
        name: env.get("ARTSTORE_STORAGE_RESTORE_ELEMENT_ID") for name, env in workers.items()
    }
    assert restores == {"se-edit": None, "se-rw": "se-edit", "se-s3": "se-edit"}


def test_services_agree_on_the_issuer_the_database_and_the_redis_namespace(tmp_path: Path) -> None:
    instance = Instance("abcd1234", "artstore_dev_abcd1234", 9000)
    env = shared_env(STACK, instance, Layout(tmp_path), Ports(9000))
    issuer = "http://127.0.0.1:9000"
    assert env["ARTSTORE_AUTH_ISSUER"] == issuer
    assert env["ARTSTORE_FACADE_ISSUER"] == issuer
    assert env["ARTSTORE_STORAGE_TOKEN_ISSUER"] == issuer
    assert env["ARTSTORE_FACADE_JWKS_URL"] == env["ARTSTORE_STORAGE_JWKS_URL"]
    assert env["ARTSTORE_DATABASE_URL"].endswith("/artstore_dev_abcd1234")
    assert (
        env["ARTSTORE_FACADE_CACHE_GENERATION_KEY"]
        == (env["ARTSTORE_PROJECTOR_CACHE_GENERATION_KEY"])
    )
    for key in (
        "ARTSTORE_AUTH_REDIS_PREFIX",
        "ARTSTORE_FACADE_CACHE_PREFIX",
        "ARTSTORE_FACADE_CACHE_GENERATION_KEY",
    ):
        assert env[key].startswith("artstore:dev-abcd1234:"), key


def test_a_child_gets_the_deployment_settings_over_a_stray_env_file() -> None:
    plan = plan_services(Ports(9000))[0]
    env = child_environment(
        {"PATH": "/bin", "ARTSTORE_ENV_FILE": "/elsewhere.env", "ARTSTORE_AUTH_ISSUER": "x"},
        {"ARTSTORE_AUTH_ISSUER": "http://127.0.0.1:9000"},
        plan,
    )
    assert "ARTSTORE_ENV_FILE" not in env
    assert env["ARTSTORE_AUTH_ISSUER"] == "http://127.0.0.1:9000"
    assert env["PATH"] == "/bin"


def test_the_bootstrap_line_yields_the_credentials() -> None:
    line = "ArtStore bootstrap admin created: client_id=sa_dev_admin_1a2b client_secret=s3-cr_et"
    assert parse_bootstrap_line(line) == Credentials("sa_dev_admin_1a2b", "s3-cr_et")
    assert parse_bootstrap_line('{"msg": "started"}') is None


def test_the_env_file_is_private_and_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "artstore.env"
    text = env_file_text(
        {"ARTSTORE_DATA_DIR": "/a dir/with space"},
        Urls.of(Ports(9000)),
        Credentials("sa_dev_admin_1", "it's-secret"),
    )
    write_private(path, text)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    values = read_env_file(path)
    assert values["ARTSTORE_DATA_DIR"] == "/a dir/with space"
    assert values["ARTSTORE_CLIENT_CLIENT_SECRET"] == "it's-secret"
    assert values["ARTSTORE_CLIENT_FACADE_URL"] == "http://127.0.0.1:9001"


def test_a_data_dir_keeps_its_deployment_and_ports_across_starts(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "data")
    base = free_dev_ports()
    first, is_new = prepare_instance(layout, DevOptions(layout.root, port_base=base))
    assert is_new
    again, is_new = prepare_instance(layout, DevOptions(layout.root))
    assert not is_new
    assert again == first
    assert again.port_base == base


def test_ephemeral_never_reuses_a_durable_archive(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "data")
    prepare_instance(layout, DevOptions(layout.root, port_base=free_dev_ports()))
    with pytest.raises(DevError, match="durable archive"):
        prepare_instance(layout, DevOptions(layout.root, ephemeral=True))


def test_ephemeral_refuses_a_directory_with_other_files(tmp_path: Path) -> None:
    (tmp_path / "thesis.tex").write_text("precious")
    with pytest.raises(DevError, match="not empty"):
        prepare_instance(Layout(tmp_path), DevOptions(tmp_path, ephemeral=True))
    assert (tmp_path / "thesis.tex").exists()


def test_a_busy_port_is_named_with_the_way_out(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        busy = sock.getsockname()[1]
        with pytest.raises(DevError, match=r"port \d+ is in use.*--port-base"):
            prepare_instance(Layout(tmp_path), DevOptions(tmp_path, port_base=busy - 1))


def test_the_printed_env_file_path_is_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    export, _ = upload_command(Path("artstore-data/artstore.env"))
    assert export == f"export ARTSTORE_ENV_FILE={tmp_path}/artstore-data/artstore.env"


def test_the_webhook_key_is_made_once_readable_only_by_its_owner(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "data")
    key = layout.notifications_key()
    assert key.startswith("k1:")
    assert layout.notifications_key() == key
    assert layout.notifications_key_file.stat().st_mode & 0o777 == 0o600
