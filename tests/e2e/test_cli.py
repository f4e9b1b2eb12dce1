"""The commands a newcomer runs, run as processes the way a user runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import schemas
from artstore.stack import StackEnv
from events import Topic
from events.schema_export import generated_files

pytestmark = [pytest.mark.e2e]

REPO = Path(__file__).resolve().parents[2]
ARTSTORE = [sys.executable, "-m", "artstore"]


def _run(args: list[str], env: dict[str, str] | None = None, timeout: float = 180):
    return subprocess.run(
        args, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture
def user_env(stack: StackEnv, topic_prefix: str) -> dict[str, str]:
    env = {**os.environ, **stack.as_env(), "ARTSTORE_TOPIC_PREFIX": topic_prefix}
    env["COLUMNS"] = "200"
    return env


@pytest.mark.kafka
def test_topics_create_is_idempotent(user_env: dict[str, str]) -> None:
    user_env["ARTSTORE_TOPIC_PREFIX"] += "-cli"
    first = _run([*ARTSTORE, "topics", "create"], user_env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("created") == len(Topic)
    second = _run([*ARTSTORE, "topics", "create"], user_env)
    assert second.returncode == 0, second.stderr
    assert second.stdout.count("exists") == len(Topic)
    assert "created" not in second.stdout


def test_schemas_export_writes_what_is_committed(tmp_path: Path) -> None:
    result = _run([*ARTSTORE, "schemas", "export", "--directory", str(tmp_path)])
    assert result.returncode == 0, result.stderr
    for rel in generated_files():
        assert (tmp_path / rel).read_text() == (schemas.DIRECTORY / rel).read_text()


def _make_test_only(tmp_path: Path, test_body: str | None) -> subprocess.CompletedProcess[str]:
    suite = tmp_path / "suite"
    suite.mkdir()
    if test_body is not None:
        (suite / "test_sample.py").write_text(test_body)
    return _run(
        [
            "make",
            "--no-print-directory",
            "test-only",
            f"PYTEST_ARGS=-p no:cacheprovider --rootdir={suite} {suite}",
        ]
    )


def test_the_test_command_fails_when_a_test_fails(tmp_path: Path) -> None:
    result = _make_test_only(tmp_path, "def test_fails():\n    assert 1 == 2\n")
    assert result.returncode != 0
    assert "1 failed" in result.stdout


def test_the_test_command_fails_when_no_test_is_collected(tmp_path: Path) -> None:
    result = _make_test_only(tmp_path, None)
    assert result.returncode != 0
    assert "no tests ran" in result.stdout


def test_the_test_command_passes_when_tests_pass(tmp_path: Path) -> None:
    result = _make_test_only(tmp_path, "def test_passes():\n    assert 2 == 2\n")
    assert result.returncode == 0, result.stdout
    assert "1 passed" in result.stdout


def test_ci_runs_the_readme_test_command() -> None:
    ci = (REPO / ".ci" / "run").read_text()
    readme = (REPO / "README.md").read_text()
    assert "make test" in ci.splitlines()[-1]
    assert "make test" in readme


@pytest.mark.s3
def test_rebuilding_an_element_that_is_not_there_says_where_it_looked(
    user_env: dict[str, str], tmp_path: Path
) -> None:
    local = _run(
        [*ARTSTORE, "rebuild", "--element", "se-nope", "--root", str(tmp_path / "nope")], user_env
    )
    assert local.returncode == 2, local.stdout + local.stderr
    assert f"no element se-nope at {tmp_path / 'nope'}" in local.stderr
    assert "--s3-prefix" in local.stderr
    assert not (tmp_path / "nope").exists(), "looking for an element must not create one"
    s3 = _run([*ARTSTORE, "rebuild", "--element", "se-nope", "--s3-prefix", "nope/"], user_env)
    assert s3.returncode == 2, s3.stdout + s3.stderr
    assert "no element se-nope at s3://" in s3.stderr
