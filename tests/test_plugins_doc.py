"""PLUGINS.md's examples, copied into a package as a plugin author would, pass the test kit
they document (so the page cannot drift from ``hub.testing``), and the vocabulary contract
for reusing an event type by name holds."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hub.errors import StartupError
from hub.vocabulary import EventType, Vocabulary

DOC = Path(__file__).resolve().parent.parent / "PLUGINS.md"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)


def _block(marker: str) -> str:
    found = [b for b in _blocks() if marker in b]
    assert len(found) == 1, f"PLUGINS.md has {len(found)} python blocks with {marker!r}"
    return found[0]


def test_documented_plugin_passes_the_documented_suites(tmp_path):
    package = tmp_path / "hub_acme"
    package.mkdir()
    # The minimal plugin, then the sandbox fake, measure and playbook appended to it.
    module = "\n\n".join(
        [
            _block("# hub_acme/__init__.py"),
            _block("class AcmeFake(FakeAPI)"),
            _block("class AcmeTickets(Measure)"),
            _block("class AcmeTicketStorm(Playbook)"),
        ]
    )
    (package / "__init__.py").write_text(module)
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "test_acme_mapping.py").write_text(_block("# tests/test_acme_mapping.py"))
    (tests / "test_acme_measure.py").write_text(_block("# tests/test_acme_measure.py"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUB_", "PYTEST_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    # declares itself, idempotent, incremental = full, tombstone, (retype skipped), measure
    assert "5 passed" in done.stdout, done.stdout[-2000:]


def test_reusing_an_event_type_needs_the_same_polarity_only():
    vocab = Vocabulary()
    builtin = EventType("ticket_opened", "A support ticket was opened", noun=("t", "ts"))
    vocab.add_event_type(builtin, "zendesk")
    vocab.add_event_type(EventType("ticket_opened", "Acme ticket opened"), "acme")
    assert vocab.event_type("ticket_opened") == builtin  # the first declaration stays
    with pytest.raises(StartupError) as refused:
        vocab.add_event_type(EventType("ticket_opened", "x", polarity="negative"), "other")
    text = str(refused.value)
    assert "zendesk" in text and "other" in text and "polarity='neutral'" in text
    assert "\n" not in text
