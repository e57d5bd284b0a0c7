"""The verdict where reviewers look: b4's external check protocol (``b4 review``'s
review-series-check-cmd and review-perpatch-check-cmd). The command reads one mail (a patch or
the cover letter) on stdin and prints a JSON array of results, each with ``tool``, ``status``
(pass, warn, fail), ``summary``, ``url`` and ``details``; an empty array says nothing is known.

``kharness b4-check`` answers from the newest run directory whose series has the mail's subject
(a patch's, or the cover letter's title) and the mail's diff or version (commands.find_runs,
cmd_b4_check): it never runs kernels while b4 waits."""

from __future__ import annotations

import email
import email.policy
import json
import re

from harness.core.errors import HarnessError
from harness.output.render import notes, table_lines
from harness.output.runreport import RunReport
from harness.sources.lore import patch_tag
from harness.verdict.kinds import FLAKY, NO_CHANGE
from harness.verdict.results import RunMeta

TOOL = "kharness"


def b4_check(rr: RunReport) -> str:
    """One result for the run: pass when every row is as it must be, base against patched;
    warn when the only rows that are not are FLAKY or NO-CHANGE (inconclusive), or a row ran
    one variant alone (nothing compared); fail otherwise (ERROR included: a splat on the
    patched kernel is one, and so is a kernel of the run that failed with no row to show it)."""
    table, meta = rr.table, rr.meta
    bad = [r for r in table if not r.ok]
    failed = [run for run in rr.runs if run.error]
    alone = [r for r in table if r.base is None or r.patched is None]
    status = "fail" if not table or failed or any(r.verdict not in (FLAKY, NO_CHANGE) for r in bad) else \
        "warn" if bad or alone else "pass"
    where = f" on Linux {meta.kernel.version}" if meta and meta.kernel.version else ""
    arches = ", ".join(sorted({r.arch for r in table}))
    summary = (f"{len(table) - len(bad)}/{len(table)} rows as expected{where} ({arches})" if table
               else "nothing ran")
    if bad:
        summary += "; not: " + ", ".join(f"{r.where} {r.verdict}" for r in bad)
    if failed:
        summary += "; failed: " + ", ".join(f"{run.kernel.label} ({run.error})" for run in failed)
    if alone and not bad:
        summary += "; one variant alone, nothing compared"
    header, lines = table_lines(table)
    details = "\n".join(["  ".join(header), *("  ".join(line) for line in lines), "", *notes(table)]).rstrip()
    result = {"tool": TOOL, "status": status, "summary": summary, "details": details}
    if rr.run_dir is not None and (rr.run_dir / "summary.txt").is_file():
        result["url"] = (rr.run_dir / "summary.txt").resolve().as_uri()
    return json.dumps([result], indent=1) + "\n"


def other_version(rr: RunReport) -> str:
    """The answer for a mail whose subject a run tested but whose diff (or version) it did not
    (a v2 under v1's subject): a warning, never the other version's verdict."""
    when = f" of {rr.meta.started}" if rr.meta else ""
    result = {"tool": TOOL, "status": "warn",
              "summary": f"not tested: the run{when} tested another version of this mail's series "
                         "(a patch's diff, or the series' version, differs)",
              "details": f"run directory: {rr.run_dir}" if rr.run_dir else ""}
    return json.dumps([result], indent=1) + "\n"


def version_of(mail: bytes) -> int | None:
    """The version its subject's [PATCH vN n/m] says (1 for none), None for no [PATCH] tag."""
    msg = email.message_from_bytes(mail, policy=email.policy.default)
    try:
        tag = patch_tag(" ".join(str(msg.get("Subject", "")).split()))
    except HarnessError:
        return None
    return tag[0] if tag else None


def series_version(meta: RunMeta) -> int | None:
    """The version of the series a run tested, when it came from mail ("mbox PATH v2")."""
    m = re.search(r" v(\d+)$", meta.series.origin) if meta.series else None
    return int(m.group(1)) if m else None


def subject_of(mail: bytes) -> str:
    """The mail's subject without its [PATCH v2 n/m] prefixes and folding."""
    msg = email.message_from_bytes(mail, policy=email.policy.default)
    subject = " ".join(str(msg.get("Subject", "")).split())
    return re.sub(r"^(\[[^\]]*\]\s*)+", "", subject).strip()
