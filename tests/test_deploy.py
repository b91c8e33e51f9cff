""" "Run it for real": the Dockerfile and the systemd units are valid and say what the README
says (non-root, a volume for the database, healthcheck via `hub status`, the lock-friendly
SIGTERM stop). Builds nothing; uses systemd-analyze and hadolint where they exist."""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UNITS = ROOT / "deploy" / "systemd"


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(KEYWORD, rest) per instruction, continuation lines joined, ``${ARG}`` resolved to the
    ARG's default."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    out: list[tuple[str, str]] = []
    args: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            rest = rest.strip()
            for name, value in args.items():
                rest = rest.replace("${" + name + "}", value)
            if keyword.upper() == "ARG" and "=" in rest:
                name, _, value = rest.partition("=")
                args[name] = value
            out.append((keyword.upper(), rest))
    return out


def test_dockerfile_is_small_non_root_with_a_volume_and_a_healthcheck():
    known = {
        "FROM", "RUN", "COPY", "WORKDIR", "USER", "VOLUME", "ENV", "HEALTHCHECK",
        "ENTRYPOINT", "CMD", "ARG", "LABEL", "EXPOSE",
    }  # fmt: skip
    instructions = dockerfile_instructions()
    keywords = [k for k, _ in instructions]
    assert all(k in known for k in keywords), instructions
    # A small official Python base (or the one PYTHON_IMAGE names), in a build and a runtime
    # stage: the runtime holds no compilers, caches or sources.
    froms = [v for k, v in instructions if k == "FROM"]
    assert len(froms) == 2 and all(v.split()[0] == "python:3.12-slim" for v in froms), froms
    runtime = instructions[keywords.index("FROM", keywords.index("FROM") + 1) :]
    # Runs as a named unprivileged user from before the entry point on.
    users = [v for k, v in runtime if k == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert any(k == "RUN" and "useradd" in v and users[-1] in v for k, v in runtime)
    assert [k for k, _ in runtime].index("USER") < [k for k, _ in runtime].index("ENTRYPOINT")
    # The database (and the shared rate budgets) on a volume the user owns.
    assert any(k == "VOLUME" and "/data" in v for k, v in runtime)
    assert any(k == "RUN" and "chown hub:hub /data" in v for k, v in runtime)
    env = " ".join(v for k, v in runtime if k == "ENV")
    assert "HUB_CONFIG=/config/hub.toml" in env and "HUB_BUDGETS=/data/" in env
    # Healthy while `hub status` is: it exits 1 when a connection is failing.
    assert any(k == "HEALTHCHECK" and v.endswith('CMD ["hub", "status"]') for k, v in runtime)
    assert ("ENTRYPOINT", '["hub"]') in runtime
    # Everything `pip install .` reads is copied, and nothing copied is ignored.
    copied = {
        source.rstrip("/").removeprefix("./")
        for keyword, value in instructions
        if keyword == "COPY" and "--from" not in value
        for source in value.split()[:-1]
    }
    packages = re.search(r"include = \[(.*?)\]", (ROOT / "pyproject.toml").read_text()).group(1)
    needed = {"pyproject.toml", "README.md", "config.example.toml"} | {
        p.strip(' "*') for p in packages.split(",")
    }
    assert needed <= copied, needed - copied
    for source in copied:
        assert (ROOT / source).exists(), f"Dockerfile copies missing {source}"
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert not copied & set(ignored) and "hub.toml" in ignored and ".git" in ignored


@pytest.mark.skipif(
    not os.environ.get("HUB_TEST_DOCKER"), reason="set HUB_TEST_DOCKER=1 (needs a Docker engine)"
)
def test_docker_image_builds_and_runs_the_demo_as_non_root(tmp_path):
    """Opt-in: build the image, run ``hub demo`` in it with the database on a volume, then
    the healthcheck's ``hub status``. ``HUB_TEST_DOCKER_BASE`` names another base image."""
    tag = "hub-test:latest"
    build = ["docker", "build", "--network", "host", "-t", tag]
    if os.environ.get("HUB_TEST_DOCKER_BASE"):
        build += ["--build-arg", f"PYTHON_IMAGE={os.environ['HUB_TEST_DOCKER_BASE']}"]
    subprocess.run([*build, str(ROOT)], check=True, capture_output=True, timeout=900)
    volume = f"hub-test-{os.getpid()}"
    config = tmp_path / "hub.toml"
    config.write_text('[hub]\ndatabase = "/data/demo.db"\n')
    config.chmod(0o644)  # the image's user (uid 10001) reads it through the mount
    tmp_path.chmod(0o755)
    run = ["docker", "run", "--rm", "--network", "none", "-v", f"{volume}:/data"]
    try:
        demo = subprocess.run(
            [*run, tag, "demo", "--companies", "20", "--weeks", "0", "--db", "/data/demo.db"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert demo.returncode == 0 and "Done in" in demo.stdout, demo.stdout + demo.stderr
        who = subprocess.run(
            [*run, "--entrypoint", "id", tag, "-u"], capture_output=True, text=True, timeout=60
        )
        assert who.stdout.strip() == "10001"
        status = subprocess.run(
            [*run, "-v", f"{tmp_path}:/config:ro", tag, "status"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert status.returncode == 0 and "Pipeline steps" in status.stdout, status.stderr
    finally:
        subprocess.run(["docker", "volume", "rm", "-f", volume], capture_output=True)


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
