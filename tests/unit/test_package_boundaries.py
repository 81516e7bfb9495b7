"""The wings of services/ import only downwards, and architecture.md's picture is the real one."""
from __future__ import annotations

from pathlib import Path

from tests.support.package_graph import (DOC, SERVICES, Import, current_block, imports, mermaid, wing,
                                         wing_edges)

# Which wing may import which (besides itself). The recorder and the uploader never import each
# other; only the entry points import the commands.
ALLOWED = {
    "common": set(),
    "crypt": {"common"},
    "bucket": {"common", "crypt"},
    "recorder": {"common"},
    "uploader": {"common", "bucket", "crypt"},
    "viewer": {"common", "bucket", "crypt"},
    "commands": {"common", "bucket", "crypt", "recorder", "uploader", "viewer"},
    "entry": {"common", "bucket", "crypt", "recorder", "uploader", "viewer", "commands"},
}
MAX_LINES = 400


def forbidden(found: list[Import]) -> list[str]:
    return [f"{i.source}:{i.line} imports {i.target}" for i in found
            if wing(i.source) != wing(i.target) and wing(i.target) not in ALLOWED[wing(i.source)]]


def test_every_module_is_in_a_known_wing():
    assert {wing(i.source) for i in imports()} <= set(ALLOWED)


def test_no_import_against_the_wings_direction():
    assert forbidden(imports()) == []


def test_the_check_catches_a_recorder_importing_the_uploader():
    sneaky = Import("services.recorder.handoff", "services.uploader.job", 3)
    upward = Import("services.common.alerts", "services.commands.status", 9)
    assert forbidden([sneaky, upward]) == ["services.recorder.handoff:3 imports services.uploader.job",
                                           "services.common.alerts:9 imports services.commands.status"]


def test_recorder_and_uploader_do_not_know_each_other():
    edges = wing_edges(imports())
    assert ("recorder", "uploader") not in edges and ("uploader", "recorder") not in edges


def test_modules_stay_small():
    sizes = {str(p.relative_to(SERVICES)): len(p.read_text().splitlines()) for p in SERVICES.rglob("*.py")}
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}


def test_architecture_doc_shows_the_current_graph():
    block = current_block(Path(DOC).read_text())
    assert block is not None, "docs/architecture.md lost its package-graph markers"
    assert block == mermaid(), "run: .venv/bin/python -m tests.support.package_graph --write"
