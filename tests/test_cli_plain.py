"""Without a terminal (cron, systemd, CI, a pipe) every command prints plain lines.

Tables become tab-separated lines with a header, never rich boxes squeezed to 80 columns,
and no spinner frame reaches stderr. ``CliRunner`` is not a terminal, like cron.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from hub.cli import cli

BOX = set("┏┓┗┛┃━│─┡┩╇╋┼┬┴╭╮╰╯")
SPINNER = set("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏")


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("plain") / "demo.db"
    result = CliRunner().invoke(
        cli, ["demo", "--companies", "12", "--weeks", "1", "--db", str(path)]
    )
    assert result.exit_code == 0, result.output
    assert not BOX & set(result.stdout) and not SPINNER & set(result.stderr)
    return str(path), result.stdout


@pytest.fixture(scope="module")
def demo_db(demo_run):
    return demo_run[0]


def test_the_demo_says_why_a_count_changes_where_it_changes(demo_run):
    """A newcomer reads 12 companies, then fewer accounts, then fewer in the NRR table: each
    drop is explained on the line where the number changes, and the bands come with their
    limits (a 75 is yellow when green starts at 80)."""
    out = demo_run[1]
    # The world plants a CRM merge and a company deleted from the CRM (hub.sandbox.world).
    assert (
        "10 accounts (of 12 companies: 1 merged into another in the CRM; 1 deleted from the "
        "CRM, its other records held for review)" in out
    ), out
    assert "Health (green ≥ 80, yellow ≥ 40, red < 40): green " in out, out
    lines = out.splitlines()
    title = next(i for i, x in enumerate(lines) if "Net revenue retention per CSM book" in x)
    assert lines[title].endswith(")") and "last 90 days (" in lines[title], lines[title]
    table = tables(lines[title + 1 :])[0]
    total = table[-1]
    assert total[0] == "Total"
    after = lines[title + len(table) + 1]
    assert after.startswith(f"NRR and GRR are over the {total[1]} accounts paying on "), after
    # The NRR table comes before the commands to explore, which end the story.
    assert title < next(i for i, x in enumerate(lines) if x.startswith("Explore"))


def plain(db: str, *args: str) -> list[str]:
    result = CliRunner().invoke(cli, ["--db", db, *args])
    assert result.exit_code in (0, 1), result.output
    assert not BOX & set(result.stdout), result.stdout
    assert not SPINNER & set(result.stderr), result.stderr
    return result.stdout.splitlines()


def tables(lines: list[str]) -> list[list[list[str]]]:
    """The tab-separated blocks of the output: each a header and its rows."""
    blocks, current = [], []
    for line in [*lines, ""]:
        if "\t" in line:
            current.append(line.split("\t"))
        elif current:
            blocks.append(current)
            current = []
    return blocks


def test_every_read_command_prints_unwrapped_tab_separated_rows(demo_db):
    account = plain(demo_db, "accounts")[2].split("\t")[0]
    commands = [
        ["status"],
        ["accounts"],
        ["accounts", "--links"],
        ["accounts", "--unmatched"],
        ["timeline", account],
        ["health", "--no-compute", "--limit", "0"],
        ["health", "--explain", account],
        ["portfolio", "--period", "last-90d"],
        ["portfolio", "cohorts"],
        ["portfolio", "movements", account],
        ["plugins"],
        ["db", "status"],
        ["tasks"],
    ]
    for args in commands:
        blocks = tables(plain(demo_db, *args))
        assert blocks, args
        for block in blocks:
            # One line per row, every row as wide as its header: nothing wrapped.
            assert all(len(row) == len(block[0]) for row in block), (args, block)


def test_health_drivers_stay_whole_on_one_line(demo_db):
    rows = tables(plain(demo_db, "health", "--no-compute", "--limit", "0"))[0]
    header, rows = rows[0], rows[1:]
    assert header == ["account", "score", "band", "trend 7d", "coverage", "top driver"]
    drivers = [r[-1] for r in rows if r[-1]]
    assert drivers and max(len(d) for d in drivers) > 40  # long sentences, never folded
