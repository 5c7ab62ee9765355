"""The recorded runs: every leaderboard studies/RESULTS.md quotes from a committed study archive is
what `leaderboard` prints from that archive alone, as in a fresh clone, and every committed archive
is named there, and optuna-dashboard serves it. So the recorded figures can be checked by anyone,
and stay true."""

import gzip
import re
import shutil

import pytest

from conftest import ROOT, dashboard, get_json, run_cli

RESULTS = ROOT / "studies" / "RESULTS.md"
ARCHIVES = ROOT / "studies" / "archive"
# a marker line, then the fenced block of leaderboard lines it quotes
QUOTE = re.compile(r"<!-- leaderboard: archive/(?P<file>[\w.\-]+?\.jsonl(?:\.gz)?) -->\n```\n(?P<text>.*?)```", re.S)


def study_of(archive: str) -> str:
    """The study an archive file holds, by its name (`<study>.jsonl`, or `.jsonl.gz` where large)."""
    return re.sub(r"\.jsonl(\.gz)?$", "", archive)


def quotes() -> list[tuple[str, str]]:
    return [(m["file"], m["text"]) for m in QUOTE.finditer(RESULTS.read_text())]


def test_every_committed_archive_is_named_in_the_results():
    text = RESULTS.read_text()
    archives = sorted(p.name for p in ARCHIVES.iterdir() if re.search(r"\.jsonl(\.gz)?$", p.name))
    assert archives, "no committed archive"
    assert [a for a in archives if f"archive/{a}" not in text] == []


@pytest.mark.parametrize("name,quoted", [pytest.param(*q, id=q[0]) for q in quotes()])
def test_a_quoted_leaderboard_is_what_its_committed_archive_prints(name, quoted, tmp_path):
    clone = tmp_path / "studies" / "archive"
    clone.mkdir(parents=True)
    shutil.copy(ARCHIVES / name, clone / name)  # all a fresh clone holds of the study
    printed = run_cli("leaderboard", "--study", study_of(name), "--limit", "100",
                      cwd=tmp_path, check=True).stdout.splitlines()
    lines = quoted.splitlines()
    assert any(line.startswith("winner") for line in lines)  # the quote holds the verdict it records
    missing = [line for line in lines if line not in printed]
    assert missing == [], f"RESULTS.md quotes lines the archive no longer prints: {missing}"
    assert [printed.index(line) for line in lines] == sorted(printed.index(line) for line in lines)


@pytest.mark.parametrize("name", sorted({q[0] for q in quotes()}))
def test_the_dashboard_serves_every_quoted_archive(name, tmp_path):
    from search.store.archive import read_archive

    # a plain journal copy outside the tree: the dashboard reads no .gz, and its backend may lock
    # beside its file
    copy = tmp_path / f"{study_of(name)}.jsonl"
    with (gzip.open if name.endswith(".gz") else open)(ARCHIVES / name, "rb") as src, open(copy, "wb") as dst:
        shutil.copyfileobj(src, dst)
    journal = read_archive(copy)
    [stored] = journal.get_all_studies()
    trials = journal.get_all_trials(journal.get_study_id_from_name(stored.study_name))
    with dashboard(str(copy)) as base:
        [summary] = get_json(f"{base}/api/studies")["study_summaries"]
        assert summary["study_name"] == stored.study_name == study_of(name)
        served = get_json(f"{base}/api/studies/{summary['study_id']}")["trials"]
    assert [(t["number"], t["state"].lower(), t.get("values")) for t in served] == \
           [(t.number, t.state.name.lower(), t.values) for t in trials]


def test_the_results_quote_at_least_one_archive():
    assert quotes(), "RESULTS.md quotes no leaderboard from an archive"
