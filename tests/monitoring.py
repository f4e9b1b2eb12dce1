"""The compose deployment's monitoring as the tests read it: the Prometheus config, the alert
rules, the Grafana dashboard, and the metric names their PromQL expressions use.

:func:`metric_names` reads names out of PromQL without a PromQL parser: string literals, label
matchers, ranges and subqueries, ``by``/``without``/``on``/``ignoring``/``group_*`` label lists
and Grafana variables are removed, and what is left that looks like an identifier and is not a
function call or a keyword is a metric name. :func:`series_names` lists the series an exposition
gives Prometheus, family by family (``_total`` and ``_created`` of a counter, ``_bucket``,
``_sum`` and ``_count`` of a histogram, ...), including families declared without a sample yet.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

COMPOSE = Path(__file__).resolve().parents[1] / "compose"
PROMETHEUS_DIR = COMPOSE / "prometheus"
PROMETHEUS_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
RULE_FILES = sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))
RULE_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))
GRAFANA_DIR = COMPOSE / "grafana"
DASHBOARDS = sorted((GRAFANA_DIR / "dashboards").glob("*.json"))

#: Series Prometheus makes itself rather than scraping them from a service.
PROMETHEUS_MADE = {
    "up": "1 when the last scrape of a target succeeded, 0 when it failed",
    "ALERTS": "one series per pending or firing alert",
}

_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_VARIABLE = re.compile(r"\$(?:\{[^}]*\}|\w+)")
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_LABEL_LIST = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENTIFIER = re.compile(r"(?<![\w:.])[A-Za-z_:][\w:]*(?![\w:])(?!\s*\()")
_KEYWORDS = {
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "atan2",
    "inf",
    "nan",
}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (see the module)."""
    text = _STRING.sub('""', expr)
    if "__name__" in text:
        raise ValueError(f"a metric named in a label matcher is not read: {expr}")
    text = _VARIABLE.sub(" ", text)
    for pattern in (_MATCHERS, _RANGE, _LABEL_LIST):
        text = pattern.sub(" ", text)
    if any(bracket in text for bracket in "{}[]"):
        raise ValueError(f"unbalanced or nested brackets left in: {expr}")
    return {name for name in _IDENTIFIER.findall(text) if name.lower() not in _KEYWORDS}


_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "info": ("_info",),
}


def series_names(exposition: str) -> set[str]:
    """Every series name a Prometheus text exposition gives, declared families included."""
    names: set[str] = set()
    for family in text_string_to_metric_families(exposition):
        names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


@dataclass(frozen=True)
class Expression:
    """One PromQL expression and where it is written."""

    where: str
    expr: str


def prometheus_config() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    return loaded


def rules() -> list[dict[str, Any]]:
    """Every rule of every rule file."""
    found = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            found.extend(group["rules"])
    return found


def dashboard_panels(path: Path) -> list[dict[str, Any]]:
    """Every panel of a dashboard, those inside collapsed rows included."""
    panels = []
    for panel in json.loads(path.read_text())["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))
    return panels


def expressions() -> list[Expression]:
    """Every PromQL expression of the rules and the dashboards."""
    found = [Expression(f"rule {rule['alert']}", rule["expr"]) for rule in rules()]
    for path in DASHBOARDS:
        for panel in dashboard_panels(path):
            for target in panel.get("targets", []):
                where = f"{path.name}: panel {panel['title']!r} query {target['refId']}"
                found.append(Expression(where, target["expr"]))
    return found


def used_metric_names() -> dict[str, list[str]]:
    """Metric name -> where the rules and dashboards use it."""
    used: dict[str, list[str]] = {}
    for expression in expressions():
        for name in metric_names(expression.expr):
            used.setdefault(name, []).append(expression.where)
    return used
