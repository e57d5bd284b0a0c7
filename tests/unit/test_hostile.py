"""Artifacts from elsewhere are hostile: every verb fed a broken or malicious run directory,
report.json, manifest, mbox, series directory or config exits 2 with one line naming the file
and field, writes nothing outside its own directories and deletes nothing (issue 31).

Each case runs `kharness` in-process (harness.cli.main) in a tmp_path world holding a sentinel
tree; the whole world is compared before and after. No case builds or boots anything: the run
verbs' pipeline is replaced by a stub that fails the test if a case reaches it."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from harness import REPO_ROOT, cli, commands

GOLDEN_RUN = REPO_ROOT / "tests" / "golden" / "run"
KEY = "ab" * 32


def snapshot(top: Path, skip: tuple[str, ...] = ()) -> dict[str, object]:
    """Every path under ``top`` (symlinks as their targets, files as their bytes), minus ``skip``."""
    out: dict[str, object] = {}
    for dirpath, dirnames, filenames in os.walk(top):
        here = Path(dirpath)
        rel = here.relative_to(top)
        if rel.parts and rel.parts[0] in skip:
            dirnames.clear()
            continue
        for name in dirnames + filenames:
            p = here / name
            key = str(p.relative_to(top))
            if key.split("/")[0] in skip:
                continue
            out[key] = ("link", os.readlink(p)) if p.is_symlink() else \
                ("dir",) if p.is_dir() else ("file", p.read_bytes())
    return out


@pytest.fixture
def world(tmp_path, monkeypatch):
    """tmp_path as a CI job sees it: two downloaded job run directories (the golden A/B split
    by arch), a cache with their kernels, a sentinel tree nothing may touch."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KHARNESS_CACHE", str(tmp_path / "cache"))
    sentinel = tmp_path / "sentinel"
    (sentinel / "dir").mkdir(parents=True)
    (sentinel / "secret").write_text("do not copy\n")
    (sentinel / "dir" / "keep").write_text("do not delete\n")
    data = json.loads((GOLDEN_RUN / "report.json").read_text())
    for arch in ("x86_64", "arm64"):
        job = tmp_path / "jobs" / arch
        job.mkdir(parents=True)
        runs = [r for r in data["runs"] if r["arch"] == arch]
        for r in runs:
            r["kernel_key"] = KEY if arch == "x86_64" and r["variant"] == "base" else None
            shutil.copytree(GOLDEN_RUN / f"{arch}-{r['variant']}", job / f"{arch}-{r['variant']}")
        (job / "report.json").write_text(json.dumps({**data, "runs": runs}))
    kernel = tmp_path / "cache" / "kernels" / KEY
    kernel.mkdir(parents=True)
    for name in ("image", "config", "build.log"):
        (kernel / name).write_bytes(name.encode())
    return tmp_path


def run(argv: list[str], capsys) -> tuple[int, str]:
    code = cli.main(argv)
    return code, capsys.readouterr().err


def assert_refused(world: Path, argv: list[str], capsys, *said: str, own: tuple[str, ...] = ()) -> None:
    """Exit 2, one line on stderr holding every ``said``, nothing changed outside ``own``."""
    before = snapshot(world, own)
    code, err = run(argv, capsys)
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("kharness: "), err
    for s in said:
        assert s in err, err
    assert "Traceback" not in err
    assert snapshot(world, own) == before


def job_report(world: Path, arch: str = "x86_64") -> Path:
    return world / "jobs" / arch / "report.json"


def edit_report(world: Path, change) -> None:
    path = job_report(world)
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def scenario(data, i=0, j=0):
    return data["runs"][i]["scenarios"][j]


# A report.json change, and the field the one-line error must name.
HOSTILE_REPORTS = {
    "delta a string": (lambda d: scenario(d).update(delta="many"), "runs[0].scenarios[0].delta"),
    "kind a number": (lambda d: scenario(d).update(kind=5), "runs[0].scenarios[0].kind"),
    "kind unknown": (lambda d: scenario(d).update(kind="zap"), "runs[0].scenarios[0].kind"),
    "metrics a list": (lambda d: scenario(d).update(metrics=[1]), "runs[0].scenarios[0].metrics"),
    "metric a string": (lambda d: scenario(d).update(metrics={"x": "1"}), "runs[0].scenarios[0].metrics.x"),
    "tests values": (lambda d: scenario(d).update(tests={"a:b": 3}), "runs[0].scenarios[0].tests.a:b"),
    "test_runs letters": (lambda d: scenario(d).update(test_runs={"a:b": "zz"}), "test_runs.a:b"),
    "repeats junk": (lambda d: scenario(d).update(repeats=[{"metrics": "x"}]), "repeats[0].metrics"),
    "repeats not mappings": (lambda d: scenario(d).update(repeats=[1]), "repeats[0]"),
    "logs a string": (lambda d: d["runs"][0].update(logs="console.log"), "runs[0].logs"),
    "timings a string": (lambda d: d["runs"][0].update(timings={"build": "slow"}), "runs[0].timings.build"),
    "jobs a string": (lambda d: d.update(jobs="many"), "jobs"),
    "profile null": (lambda d: d["runs"][0].update(profile=None), "runs[0].profile"),
    "profiles a string": (lambda d: d.update(profiles="default"), "profiles"),
    "kernel a list": (lambda d: d.update(kernel=[]), "kernel"),
    "series a string": (lambda d: d.update(series="x"), "series"),
    "patches not mappings": (lambda d: d["series"].update(patches=[1]), "series.patches[0]"),
    "huge number": (lambda d: d.update(seconds=10 ** 400), "seconds"),
    "arch escapes": (lambda d: d["runs"][0].update(arch="../../sentinel"), "runs[0].arch"),
    "scenario escapes": (lambda d: scenario(d).update(scenario="../../x"), "runs[0].scenarios[0].scenario"),
    "variant escapes": (lambda d: scenario(d).update(variant="/tmp"), "runs[0].scenarios[0].variant"),
    "log escapes": (lambda d: d["runs"][0].update(logs={"c": "../../sentinel/secret"}), "runs[0].logs.c"),
    "log absolute": (lambda d: d["runs"][0].update(logs={"c": "/etc/hostname"}), "runs[0].logs.c"),
    "kernel_key absolute": (lambda d: d["runs"][0].update(kernel_key=str(Path.cwd() / "sentinel")),
                            "runs[0].kernel_key"),
    "kernel_key dotdot": (lambda d: d["runs"][0].update(kernel_key="../../sentinel"), "runs[0].kernel_key"),
    "scenario missing a field": (lambda d: scenario(d).pop("expectation"), "runs[0].scenarios[0].expectation"),
    "scenarios a mapping": (lambda d: d["runs"][0].update(scenarios={}), "runs[0].scenarios"),
    "runs a mapping": (lambda d: d.update(runs={}), "runs"),
    "schema true": (lambda d: d.update(schema=True), "schema"),
}

VERBS = {   # `report --write` reads as `report` does: test_report_write_* for what it writes
    "report": lambda w: ["report", str(w / "jobs" / "x86_64")],
    "kcidb": lambda w: ["kcidb", str(w / "jobs" / "x86_64")],
    "merge": lambda w: ["merge", str(w / "jobs" / "x86_64"), str(w / "jobs" / "arm64"), "--out", str(w / "out")],
    "export": lambda w: ["export", str(w / "jobs" / "x86_64"), "--to", str(w / "exported")],
}


@pytest.mark.parametrize("verb", VERBS)
@pytest.mark.parametrize("case", HOSTILE_REPORTS)
def test_a_hostile_report_json_is_one_line_naming_its_field(world, capsys, verb, case):
    change, field = HOSTILE_REPORTS[case]
    edit_report(world, change)
    assert_refused(world, VERBS[verb](world), capsys, str(job_report(world)), field, own=("out",))


RAW_REPORTS = {
    "NaN": lambda text: text.replace('"jobs": 2', '"jobs": NaN').replace('"jobs": 1', '"jobs": NaN'),
    "Infinity": lambda text: text.replace('"seconds": ', '"seconds": -Infinity, "x": '),
    "nested deep": lambda text: '{"schema": 2, "runs": ' + "[" * 100_000 + "]" * 100_000 + "}",
    "binary": lambda text: "\udcff\udcfe".encode("utf-8", "surrogateescape").decode("latin-1") + text,
    "a list": lambda text: "[]",
    "empty": lambda text: "",
}


@pytest.mark.parametrize("verb", VERBS)
@pytest.mark.parametrize("case", RAW_REPORTS)
def test_an_unreadable_report_json_is_one_line_naming_the_file(world, capsys, verb, case):
    path = job_report(world)
    text = RAW_REPORTS[case](path.read_text())
    path.write_bytes(text.encode("latin-1") if case == "binary" else text.encode())
    assert_refused(world, VERBS[verb](world), capsys, str(path), own=("out",))


def test_a_missing_report_json_is_one_line(world, capsys):
    job_report(world).unlink()
    for verb in VERBS.values():
        assert_refused(world, verb(world), capsys, str(job_report(world)), own=("out",))


# --- merge: what a run directory holds -----------------------------------------------------------

def with_logs(world: Path, logs: dict[str, str]) -> None:
    edit_report(world, lambda d: d["runs"][0].update(logs=logs))


def test_merge_refuses_a_symlinked_log(world, capsys):
    log = world / "jobs" / "x86_64" / "x86_64-base" / "console.log"
    log.unlink()
    log.symlink_to(world / "sentinel" / "secret")
    with_logs(world, {"console.log": "x86_64-base/console.log"})
    assert_refused(world, VERBS["merge"](world), capsys, str(log), "symlink", own=("out",))
    assert not any(p.read_bytes() == b"do not copy\n" for p in (world / "out").rglob("*") if p.is_file())


def test_merge_refuses_a_log_reached_through_a_symlinked_directory(world, capsys):
    (world / "jobs" / "x86_64" / "up").symlink_to(world / "sentinel")
    with_logs(world, {"secret": "up/secret"})
    assert_refused(world, VERBS["merge"](world), capsys, "up/secret", "symlink", own=("out",))


def test_merge_refuses_a_symlinked_kernel_directory_of_a_report_without_logs(world, capsys):
    kernel_dir = world / "jobs" / "x86_64" / "x86_64-base"
    shutil.rmtree(kernel_dir)
    kernel_dir.symlink_to(world / "sentinel" / "dir")
    assert_refused(world, VERBS["merge"](world), capsys, "x86_64-base", "symlink", own=("out",))


def test_merge_never_writes_through_a_symlink_in_its_out_directory(world, capsys):
    out = world / "out" / "x86_64-base"
    out.mkdir(parents=True)
    (out / "console.log").symlink_to(world / "sentinel" / "secret")
    with_logs(world, {"console.log": "x86_64-base/console.log"})
    assert_refused(world, VERBS["merge"](world), capsys, "symlink", own=())


@pytest.mark.parametrize("out", ["jobs/x86_64", "jobs", "jobs/arm64/x86_64-base"])
def test_merge_refuses_to_write_over_a_run_it_reads(world, capsys, out):
    argv = ["merge", str(world / "jobs" / "x86_64"), str(world / "jobs" / "arm64"), "--out", str(world / out)]
    assert_refused(world, argv, capsys, "--out")


def test_merge_out_a_file_or_results_a_file_is_one_line(world, capsys):
    (world / "afile").write_text("x")
    argv = ["merge", str(world / "jobs" / "x86_64"), str(world / "jobs" / "arm64"), "--results", "afile"]
    assert_refused(world, argv, capsys, "afile")


def test_report_write_replaces_a_symlink_never_its_target(world, capsys):
    run_dir = world / "jobs" / "x86_64"
    for name in ("summary.txt", "summary.md", "junit.xml"):
        (run_dir / name).symlink_to(world / "sentinel" / "secret")
    code, err = run(["report", "--write", str(run_dir)], capsys)
    assert code == 0, err
    assert (world / "sentinel" / "secret").read_text() == "do not copy\n"
    assert all((run_dir / n).is_file() and not (run_dir / n).is_symlink()
               for n in ("summary.txt", "summary.md", "junit.xml"))


# --- export and import ---------------------------------------------------------------------------

def exported(world: Path) -> Path:
    code = cli.main(VERBS["export"](world))
    assert code == 0
    return world / "exported"


@pytest.mark.parametrize("files", [["image"], "image", {"image": 5}, None])
def test_import_refuses_a_manifest_whose_files_are_not_a_mapping(world, capsys, files):
    src = exported(world)
    manifest = src / KEY / "MANIFEST.json"
    data = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**data, "files": files}))
    capsys.readouterr()
    assert_refused(world, ["import", str(src), "--cache", str(world / "cache2")], capsys,
                   str(manifest), "files")


@pytest.mark.parametrize("text", ["[]", "{", '{"key": NaN}', "[" * 100_000])
def test_import_refuses_a_manifest_that_is_not_one(world, capsys, text):
    src = exported(world)
    (src / KEY / "MANIFEST.json").write_text(text)
    capsys.readouterr()
    assert_refused(world, ["import", str(src), "--cache", str(world / "cache2")], capsys,
                   str(src / KEY / "MANIFEST.json"))


def test_import_refuses_a_symlinked_file(world, capsys):
    src = exported(world)
    image = src / KEY / "image"
    image.unlink()
    image.symlink_to(world / "cache" / "kernels" / KEY / "image")   # the very bytes the manifest names
    capsys.readouterr()
    assert_refused(world, ["import", str(src), "--cache", str(world / "cache2")], capsys, str(image))


# --- the command line ----------------------------------------------------------------------------

@pytest.fixture
def no_pipeline(monkeypatch):
    """The run verbs must stop before any build: a case that reaches the pipeline fails."""
    reached = []
    monkeypatch.setattr(commands, "run_plan", lambda *a, **k: reached.append(a) or pytest.fail("reached the pipeline"))
    yield
    assert not reached


@pytest.mark.parametrize("argv, said", [
    (["run", "--scenario", ","], "--scenario ','"),
    (["run", "--variant", ","], "variant ','"),
    (["run", "--profile", ","], "profile ','"),
    (["run", "--arch", ","], "arch ','"),
    (["run", "--cpus", "100000"], "--cpus 100000"),
    (["build", "--variant", ","], "variant ','"),
    (["run", "--cache", "afile"], "--cache afile: not a directory"),
    (["run", "--results", "afile"], "--results afile: not a directory"),
    (["clean", "--max-size", "nan"], "--max-size nan"),
    (["clean", "--max-size", "-1"], "--max-size -1"),
    (["clean", "--older-than", "-1"], "--older-than -1"),
    (["clean", "--older-than", "inf"], "--older-than inf"),
    (["clean", "--older-than", "1", "--cache", "afile"], "--cache afile"),
    (["doctor", "--cache", "afile"], "--cache afile"),
    (["import", "nowhere", "--cache", "afile"], "--cache afile"),
    (["export", "jobs/x86_64", "--to", "x", "--cache", "afile"], "--cache afile"),
])
def test_a_meaningless_command_line_is_one_line(world, capsys, no_pipeline, argv, said):
    (world / "afile").write_text("not a directory\n")
    assert_refused(world, argv, capsys, said)


def mbox(subjects: list[str]) -> str:
    return "".join(f"From x@y Thu Jan  1 00:00:00 1970\nFrom: a <a@b>\nSubject: {s}\n\n"
                   "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n\n" for s in subjects)


@pytest.mark.parametrize("subjects, said", [
    (["[PATCH 1/99999999999] mm: x"], "[1/99999999999]"),
    (["[PATCH 0/0] mm: nothing"], "[0/0]"),
    (["[PATCH 3/2] mm: x"], "[3/2]"),
])
def test_an_mbox_with_meaningless_numbers_is_one_line(world, capsys, no_pipeline, subjects, said):
    (world / "s.mbox").write_text(mbox(subjects))
    assert_refused(world, ["run", "--series", "s.mbox", "--kernel", "linux-5.10", "--cache", str(world / "cache")],
                   capsys, said, own=("cache",))


def test_a_directory_named_like_a_patch_in_a_series_directory_is_one_line(world, capsys, no_pipeline):
    series = world / "series"
    (series / "0002-x.patch").mkdir(parents=True)
    (series / "0001-y.patch").write_text(mbox(["[PATCH 1/2] y"]))
    assert_refused(world, ["run", "--series", "series", "--kernel", "linux-5.10"], capsys,
                   "series: not a patch: 0002-x.patch/")


SCENARIO = (REPO_ROOT / "configs" / "scenarios" / "dying-memcg.yaml").read_text()


@pytest.mark.parametrize("text, said", [
    (b"\x00\xff\xfe binary", "not text"),
    (SCENARIO.replace("min_fraction: 0.9", "min_fraction: .nan").encode(), "reproduced[0].min_fraction"),
    (SCENARIO.replace("timeout: 600", "timeout: -5").encode(), "timeout"),
    (SCENARIO.replace("timeout: 600", "timeout: .inf").encode(), "timeout"),
    (SCENARIO.replace("name: dying-memcg", "name: x;reboot").encode(), "name"),
    (SCENARIO.replace("name: dying-memcg", "name: ../../x").encode(), "name"),
    (("[" * 1_000).encode(), "nested too deep"),
])
def test_a_hostile_scenario_is_one_line_naming_the_file_and_field(world, capsys, no_pipeline, text, said):
    (world / "bad.yaml").write_bytes(text)
    assert_refused(world, ["run", "--scenario", "bad.yaml"], capsys, "bad.yaml", said)


def test_a_crash_is_an_error_in_one_line_never_a_verdict(world, capsys, monkeypatch):
    """Exit 1 means "a row not as expected": a bug must not read as one."""
    def crash(args):
        raise KeyError("a field\nnothing checked")
    monkeypatch.setattr(commands, "cmd_list", crash)
    code, err = run(["list"], capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert "list: internal error: KeyError" in err and "Traceback" not in err


# --- clean: never an entry in use -----------------------------------------------------------------

def old_dir(path: Path) -> Path:
    """A cache entry last used in 1970."""
    path.mkdir(parents=True)
    os.utime(path, (0, 0))
    return path


def test_clean_keeps_what_a_writer_holds_the_lock_of_and_removes_the_rest(tmp_path):
    """A live import's temporary directory (its key's lock held) is not removed; a stale one
    (no one holds the lock) and an unused entry are."""
    import fcntl

    from harness.run.doctor import clean
    kernels = tmp_path / "kernels"
    live = old_dir(kernels / f".{KEY}.abcd_123.tmp")
    in_use = old_dir(kernels / ("cd" * 32))
    stale = old_dir(kernels / f".{'ef' * 32}.zz99_zzz.tmp")
    unused = old_dir(kernels / ("01" * 32))
    image = old_dir(tmp_path / "images" / "img1")
    (tmp_path / "images" / ".locks").mkdir()
    held = []
    for lock in (kernels / f"{KEY}.lock", kernels / f"{'cd' * 32}.lock", tmp_path / "images" / ".locks" / "img1"):
        f = open(lock, "a")
        fcntl.flock(f, fcntl.LOCK_EX)
        held.append(f)
    try:
        lines = clean(tmp_path, older_than_days=1, max_bytes=None, dry_run=False)
    finally:
        for f in held:
            f.close()
    assert live.is_dir() and in_use.is_dir() and image.is_dir(), lines
    assert not stale.exists() and not unused.exists(), lines
    assert sum(line.startswith("kept ") and "in use" in line for line in lines) == 3, lines
    assert (tmp_path / "images" / ".locks").is_dir()   # the locks themselves are never pruned


def test_clean_keeps_the_build_directories_while_a_kernel_builds(tmp_path):
    from harness.build.kbuild import build_lock_path
    from harness.core.cache import machine_lock
    from harness.run.doctor import clean
    builds = old_dir(tmp_path / "builds" / "x86_64")
    with machine_lock(build_lock_path()):
        import threading  # another thread: this one's nested takes would pass through
        lines = []
        t = threading.Thread(target=lambda: lines.extend(clean(tmp_path, 1, None, False)))
        t.start()
        t.join(10)
    assert builds.is_dir() and any(line.startswith(f"kept {builds}") for line in lines), lines
    clean(tmp_path, 1, None, False)
    assert not builds.exists()
