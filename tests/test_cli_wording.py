"""Words the tester read wrong: one meaning per word, no cut notes, no arrows for no trend."""

from __future__ import annotations

from collections import Counter

from hub.playbooks.engine import PlaybookResult


def test_opened_always_counts_tasks_after_merging():
    result = PlaybookResult(
        opened=[f"t{i}" for i in range(92)],
        by_playbook=Counter(
            billing_missing=1, card_expiring=38, no_recent_touch=80, payment_failed=49
        ),
        merged=76,
        deduplicated=5,
    )
    # 168 findings (the per-playbook counts) → 76 merged → 92 tasks: the figures add up.
    assert result.note() == (
        "168 findings → 76 merged into one task per account → 92 tasks opened; "
        "findings per playbook: billing_missing 1, card_expiring 38, no_recent_touch 80, "
        "payment_failed 49; not opened: 5 already open"
    )
    assert PlaybookResult(opened=["a"], by_playbook=Counter(x=1)).note() == (
        "1 task opened; findings per playbook: x 1"
    )


def _hub(tmp_path, *args):
    from click.testing import CliRunner

    from hub.cli import cli

    config = tmp_path / "hub.toml"
    if not config.exists():
        config.write_text(f'[hub]\ndatabase = "{tmp_path / "hub.db"}"\n')
        config.chmod(0o600)
    return CliRunner().invoke(cli, ["-c", str(config), *args])


def test_plain_status_keeps_whole_notes(tmp_path):
    from hub.store import Store

    store = Store(tmp_path / "hub.db")
    note = "; ".join(f"playbook_{i} {i}" for i in range(30))  # well over 160 characters
    store.finish_run(store.start_run("playbooks"), status="ok", note=note)
    store.close()
    result = _hub(tmp_path, "status")  # no terminal: plain lines
    assert result.exit_code == 0, result.output
    assert note in result.stdout


def test_explicit_format_table_draws_a_table_when_piped(tmp_path):
    result = _hub(tmp_path, "--format", "table", "playbooks")
    assert result.exit_code == 0, result.output
    assert "┃ name" in result.stdout and "\t" not in result.stdout


def test_map_with_nothing_new_says_so(tmp_path):
    _hub(tmp_path, "map")
    result = _hub(tmp_path, "map")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("map: nothing new to map in "), result.stdout


def test_config_errors_point_at_hub_init_example(tmp_path):
    (tmp_path / "hub.toml").write_text('[hub]\ndatabse = "x.db"\n')
    (tmp_path / "hub.toml").chmod(0o600)
    result = _hub(tmp_path, "status")
    assert result.exit_code == 1
    assert "run `hub init --example` to see every option" in result.stderr, result.stderr
    assert "config.example.toml" not in result.stderr


def test_check_offline_flags_the_hub_init_placeholders(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from click.testing import CliRunner

    from hub.cli import cli

    runner = CliRunner()
    assert runner.invoke(cli, ["init"]).exit_code == 0
    result = runner.invoke(cli, ["check", "--offline"])
    placeholders = [ln for ln in result.stderr.splitlines() if "`hub init` placeholder" in ln]
    assert [ln.split(" = ")[0] for ln in placeholders] == [
        "warning: connections.zendesk.settings.subdomain",
        "warning: connections.zendesk.settings.email",
        "warning: timeline.builtwith.our_technologies",
    ], result.stderr


def test_health_step_note_says_the_mode_once_and_what_was_scored():
    from hub.health.runs import step_note

    assert step_note(False, "incremental", {}) == "incremental: no account changed"
    assert step_note(False, "incremental", {"green": 3, "red": 1}) == "incremental: 3 green, 1 red"
    assert step_note(True, "day changed", {"green": 2}) == "full (day changed): 2 green"
