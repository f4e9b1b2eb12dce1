"""The compose deployment's Prometheus and Grafana: the config and rules pass promtool, the
alerts fire on what they are about, the dashboard shows what an operator needs, and every
ArtStore service is scraped where it serves its metrics.

That every metric named here is exported by a running service is checked against the real
services in tests/e2e/operations/test_dashboards.py.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.monitoring import (
    COMPOSE,
    DASHBOARDS,
    GRAFANA_DIR,
    PROMETHEUS_CONFIG,
    RULE_FILES,
    RULE_TESTS,
    dashboard_panels,
    expressions,
    metric_names,
    prometheus_config,
    rules,
    series_names,
)
from tests.promtool import promtool_or_skip

#: Long-running ArtStore services, each scraped by Prometheus.
SCRAPED_SERVICES = {"auth", "facade", "projector", "worker-local", "worker-s3"}
DATASOURCE_UID = "artstore-prometheus"


@pytest.fixture(scope="module")
def promtool() -> Path:
    return promtool_or_skip()


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    compose: dict[str, Any] = yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())
    return compose["services"]


def promtool_says(promtool: Path, *args: str | Path, cwd: Path | None = None) -> str:
    done = subprocess.run(
        [str(promtool), *map(str, args)], capture_output=True, text=True, cwd=cwd, check=False
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"promtool {' '.join(map(str, args))}:\n{output}"
    return output


# -- promtool ----------------------------------------------------------------------------------


def test_the_alert_rules_pass_promtool_check_rules(promtool: Path) -> None:
    assert RULE_FILES
    output = promtool_says(promtool, "check", "rules", *RULE_FILES)
    assert f"SUCCESS: {len(rules())} rules found" in output


def test_the_prometheus_config_passes_promtool_check_config(promtool: Path) -> None:
    output = promtool_says(promtool, "check", "config", PROMETHEUS_CONFIG)
    # The config's rule_files glob finds the rule files (a wrong glob finds none, silently).
    assert f"SUCCESS: {len(RULE_FILES)} rule files found" in output


def test_each_alert_fires_on_what_it_is_about_and_not_on_a_healthy_deployment(
    promtool: Path,
) -> None:
    assert RULE_TESTS
    for path in RULE_TESTS:
        assert "SUCCESS" in promtool_says(promtool, "test", "rules", path.name, cwd=path.parent)


def test_promtool_refuses_a_broken_rule(promtool: Path, tmp_path: Path) -> None:
    """The checks above can fail: a rule with a PromQL syntax error does not pass."""
    broken = tmp_path / "broken.yml"
    broken.write_text(
        yaml.safe_dump(
            {"groups": [{"name": "g", "rules": [{"alert": "A", "expr": "sum by (x (y)"}]}]}
        )
    )
    done = subprocess.run(
        [str(promtool), "check", "rules", str(broken)], capture_output=True, text=True, check=False
    )
    assert done.returncode != 0


# -- the rules ---------------------------------------------------------------------------------


def test_the_rules_alert_on_lag_dead_letters_fill_workers_and_fixity() -> None:
    uses = {rule["alert"]: metric_names(rule["expr"]) for rule in rules()}
    needed = {
        "lag": "artstore_consumer_lag_seconds",
        "DLQ growth": "artstore_dlq_records",
        "element nearly full": "artstore_storage_capacity_status",
        "fixity failures": "artstore_storage_fixity_failed_files",
        "worker down": "up",
    }
    for what, metric in needed.items():
        assert any(metric in names for names in uses.values()), f"no alert on {what}"
    down = next(rule for rule in rules() if rule["alert"] == "ArtStoreWorkerDown")
    assert 'job="artstore-storage"' in down["expr"]
    jobs = {job["job_name"] for job in prometheus_config()["scrape_configs"]}
    assert "artstore-storage" in jobs


def test_every_alert_has_a_severity_a_summary_and_a_description() -> None:
    names = [rule["alert"] for rule in rules()]
    assert len(names) == len(set(names)), "alert names repeat"
    for rule in rules():
        assert rule["alert"].startswith("ArtStore"), rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert rule["annotations"]["description"], rule["alert"]


# -- the dashboard -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def panels() -> list[dict[str, Any]]:
    assert DASHBOARDS
    return [panel for path in DASHBOARDS for panel in dashboard_panels(path)]


def test_the_dashboard_shows_what_an_operator_needs(panels: list[dict[str, Any]]) -> None:
    shown: dict[str, set[str]] = {}
    for panel in panels:
        for target in panel.get("targets", []):
            shown.setdefault(panel["title"], set()).update(metric_names(target["expr"]))
    needed = {
        "Ingest rate": "artstore_storage_files_stored_total",
        "Bytes": "artstore_storage_bytes_written_total",
        "Rejections by reason": "artstore_storage_commands_rejected_total",
        "Lag in seconds": "artstore_consumer_lag_seconds",
        "DLQ depth": "artstore_dlq_records",
        "Element fill": "artstore_storage_used_bytes",
        "Mode": "artstore_storage_mode",
        "Tokens issued": "artstore_auth_tokens_issued_total",
        "Token failures": "artstore_auth_token_failures_total",
        "Search latency": "artstore_facade_request_seconds_bucket",
    }
    for title, metric in needed.items():
        assert title in shown, f"no panel {title!r}"
        assert metric in shown[title], f"panel {title!r} does not show {metric}"
    rejections = next(p for p in panels if p["title"] == "Rejections by reason")
    assert "by (reason)" in rejections["targets"][0]["expr"]
    search = next(p for p in panels if p["title"] == "Search latency")
    assert all('route="/api/v1/search"' in t["expr"] for t in search["targets"])


def test_every_panel_queries_the_provisioned_datasource(panels: list[dict[str, Any]]) -> None:
    provisioned = yaml.safe_load(
        (GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )["datasources"]
    assert [d["uid"] for d in provisioned] == [DATASOURCE_UID]
    for panel in panels:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == DATASOURCE_UID, panel["title"]
        assert panel["targets"], f"panel {panel['title']!r} has no query"
        for target in panel["targets"]:
            assert target["expr"].strip(), panel["title"]
            assert target["datasource"]["uid"] == DATASOURCE_UID, panel["title"]


def test_panels_have_unique_ids_and_do_not_overlap(panels: list[dict[str, Any]]) -> None:
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    taken: dict[tuple[int, int], str] = {}
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in taken, f"{panel['title']!r} overlaps {taken[(x, y)]!r}"
                taken[(x, y)] = panel["title"]


# -- reading metric names out of PromQL ----------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("up", {"up"}),
        ('up{job="artstore-storage"} == 0', {"up"}),
        (
            'histogram_quantile(0.95, sum by (le) (rate(a_seconds_bucket{route="/x"}[5m])))',
            {"a_seconds_bucket"},
        ),
        ("sum(rate(a_total[$__rate_interval])) by (le, job)", {"a_total"}),
        ("a / on(element_id) group_left(mode) b", {"a", "b"}),
        ("a > bool 1 and b or vector(0) unless c offset 5m", {"a", "b", "c"}),
        ("max_over_time(a[1h:5m]) - a @ 1609746000", {"a"}),
        ('label_replace(a, "dst", "$1 by (x)", "src", "(.*)")', {"a"}),
        ('count(ALERTS{alertstate="firing", alertname=~"Art.*"}) or vector(0)', {"ALERTS"}),
        ("time() - (max by (e) (a:recorded) > 1e3)", {"a:recorded"}),
        ("sum without (instance) (rate(x_total[5m])) * 0x10 + Inf", {"x_total"}),
    ],
)
def test_metric_names_are_read_out_of_promql(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_a_name_hidden_in_a_matcher_is_refused_rather_than_missed() -> None:
    with pytest.raises(ValueError, match="__name__"):
        metric_names('{__name__="a_total"}')


def test_the_rules_and_dashboards_use_plenty_of_metrics() -> None:
    """Guards the reader: a regression that reads nothing would pass the e2e check vacuously."""
    names = set().union(*(metric_names(e.expr) for e in expressions()))
    assert len(names) >= 25
    assert all(re.fullmatch(r"[A-Za-z_:][\w:]*", name) for name in names)


def test_series_names_follow_each_family_type_even_without_samples() -> None:
    exposition = "\n".join(
        [
            "# HELP a_total Things.",
            "# TYPE a_total counter",
            "# HELP b_seconds Time.",
            "# TYPE b_seconds histogram",
            "# HELP c Level.",
            "# TYPE c gauge",
            'c{x="1"} 2.0',
            "",
        ]
    )
    assert series_names(exposition) == {
        "a_total",
        "a_created",
        "b_seconds_bucket",
        "b_seconds_sum",
        "b_seconds_count",
        "b_seconds_created",
        "c",
    }


# -- compose: Prometheus, Grafana and what they scrape -------------------------------------------


def _metrics_ports(service: dict[str, Any]) -> set[str]:
    """The ports on which a compose service serves /metrics."""
    env = service.get("environment", {})
    command = service.get("command", [])
    ports = {
        env.get("ARTSTORE_FACADE_METRICS_PORT"),
        env.get("ARTSTORE_PROJECTOR_METRICS_PORT"),
        env.get("ARTSTORE_STORAGE_HEALTH_PORT"),
    }
    if command[:3] == ["artstore", "auth", "serve"]:  # auth serves /metrics on its own port
        ports.add(command[command.index("--port") + 1])
    return {port for port in ports if port is not None}


def test_prometheus_scrapes_every_artstore_service_where_it_serves_metrics(
    services: dict[str, dict[str, Any]],
) -> None:
    targets: dict[str, str] = {}
    for job in prometheus_config()["scrape_configs"]:
        for static in job["static_configs"]:
            for target in static["targets"]:
                host, port = target.rsplit(":", 1)
                targets[host] = port
    for name in SCRAPED_SERVICES:
        assert name in targets, f"Prometheus does not scrape {name}"
        assert targets[name] in _metrics_ports(services[name]), (
            f"{name} is scraped on {targets[name]}, where it serves no metrics"
        )
    assert targets["facade"] != "8081", "the facade's public /metrics asks for a token"
    for host in targets:
        assert host in services or host == "localhost", f"scrape target {host} is no service"


def test_the_facade_metrics_port_stays_inside_the_compose_network(
    services: dict[str, dict[str, Any]],
) -> None:
    facade = services["facade"]
    published = {p.split(":")[-1] for p in facade.get("ports", [])}
    assert facade["environment"]["ARTSTORE_FACADE_METRICS_PORT"] not in published


def test_prometheus_and_grafana_run_pinned_images_on_the_files_here(
    services: dict[str, dict[str, Any]],
) -> None:
    prometheus, grafana = services["prometheus"], services["grafana"]
    for service in (prometheus, grafana):
        image = service["image"]
        assert re.search(r":v?\d+\.\d+\.\d+$", image), f"{image} is not pinned to a version"
    mounts = {
        volume.split(":")[1]: COMPOSE / volume.split(":")[0]
        for service in (prometheus, grafana)
        for volume in service["volumes"]
        if volume.startswith("./")
    }
    config_dir = mounts["/etc/prometheus"]
    assert config_dir.resolve() == PROMETHEUS_CONFIG.parent.resolve()
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    assert (mounts["/etc/grafana/provisioning"] / "datasources" / "prometheus.yml").is_file()
    provider = yaml.safe_load(
        (mounts["/etc/grafana/provisioning"] / "dashboards" / "artstore.yml").read_text()
    )["providers"][0]
    dashboards_dir = mounts[provider["options"]["path"]]
    assert sorted(dashboards_dir.glob("*.json")) == DASHBOARDS
    datasource = yaml.safe_load(
        (mounts["/etc/grafana/provisioning"] / "datasources" / "prometheus.yml").read_text()
    )["datasources"][0]
    assert datasource["url"] == "http://prometheus:9090"
    assert "9090:9090" in prometheus["ports"]
