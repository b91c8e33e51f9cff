""" "Run it for real": the Dockerfile and the systemd units are valid and say what the README
says (non-root, a volume for the database, healthcheck via `hub status`, the lock-friendly
SIGTERM stop). Builds nothing; uses systemd-analyze and hadolint where they exist."""

from __future__ import annotations

import configparser
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UNITS = ROOT / "deploy" / "systemd"


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def test_dockerfile_is_small_non_root_with_a_volume_and_a_healthcheck():
    known = {
        "FROM", "RUN", "COPY", "WORKDIR", "USER", "VOLUME", "ENV", "HEALTHCHECK",
        "ENTRYPOINT", "CMD", "ARG", "LABEL", "EXPOSE",
    }  # fmt: skip
    instructions = dockerfile_instructions()
    assert all(k in known for k, _ in instructions), instructions
    froms = [v for k, v in instructions if k == "FROM"]
    assert froms and all("slim" in v for v in froms)
    users = [v for k, v in instructions if k == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert any(k == "VOLUME" and "/data" in v for k, v in instructions)
    assert any(k == "HEALTHCHECK" and '"hub", "status"' in v for k, v in instructions)
    for keyword, value in instructions:
        if keyword == "COPY" and "--from" not in value:
            for source in value.split()[:-1]:
                assert (ROOT / source).exists(), f"Dockerfile copies missing {source}"


def test_dockerfile_lints_where_hadolint_exists():
    if not shutil.which("hadolint"):
        pytest.skip("hadolint not installed")
    proc = subprocess.run(
        ["hadolint", "--failure-threshold", "error", str(ROOT / "Dockerfile")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read_string((UNITS / name).read_text())
    return parser


@pytest.mark.parametrize("name", ["hub.service", "hub-once.service"])
def test_service_units_run_hub_unprivileged(name):
    parsed = unit(name)
    service = parsed["Service"]
    assert service["User"] == "hub" and "hub" in service["ExecStart"]
    assert service["UMask"] == "0077" and service["NoNewPrivileges"] == "true"
    assert "HUB_CONFIG=" in service["Environment"]
    if name == "hub.service":
        assert service["ExecStart"].endswith(" run") and service["KillSignal"] == "SIGTERM"
        assert parsed["Install"]["WantedBy"] == "multi-user.target"
    else:
        assert service["Type"] == "oneshot" and service["ExecStart"].endswith("run --once")


def test_timer_starts_the_oneshot_service():
    parsed = unit("hub-once.timer")
    assert parsed["Timer"]["Unit"] == "hub-once.service"
    assert parsed["Timer"]["OnUnitInactiveSec"] and parsed["Install"]["WantedBy"] == "timers.target"


def test_units_verify_where_systemd_analyze_exists():
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze not installed")
    proc = subprocess.run(
        ["systemd-analyze", "verify", "hub.service", "hub-once.service", "hub-once.timer"],
        cwd=UNITS,
        capture_output=True,
        text=True,
        timeout=60,
    )
    # The hub binary is not installed where the unit expects it on a test machine.
    problems = [
        line
        for line in (proc.stdout + proc.stderr).splitlines()
        if line.strip() and "/usr/local/bin/hub is not executable" not in line
    ]
    assert not problems, problems


def test_readme_documents_running_it_for_real():
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Run it for real") :]
    for needle in ("deploy/systemd/hub.service", "hub-once.timer", "Dockerfile", "--log-file",
                   "timezone", "hub db migrate", "hub init --example"):  # fmt: skip
        assert needle in section, needle
