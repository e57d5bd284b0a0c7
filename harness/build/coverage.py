"""Whether a series' changes are in the kernel that was built: a changed file whose object the
.config leaves out (its Kbuild line's CONFIG_ option is off, or its directory's), a changed hunk
under an #if/#ifdef of an option that is off. A patched kernel that compiled none of the series
is the base again: the run says which code was not built and which option would build it,
never only that the images are the same.

Read from the tree's own Makefiles and sources and the .config, as kbuild would: any file, no
list of known options. Conditions it cannot decide (an expression of other macros) are left
alone, never guessed."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import PurePosixPath as Path

Reader = Callable[[str], str | None]   # a file of the tree by its path, None when it has none

HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@")
COND = re.compile(r"^\s*#\s*(if|ifdef|ifndef|elif|else|endif)\b(.*)")
TERM = re.compile(r"^(!?)\s*(?:defined\s*\(?\s*(CONFIG_\w+)\s*\)?|(IS_ENABLED|IS_BUILTIN|IS_REACHABLE|IS_MODULE)"
                  r"\s*\(\s*(CONFIG_\w+)\s*\)|(CONFIG_\w+))$")


def changed_lines(diff: str) -> dict[str, list[tuple[int, int]]]:
    """The new file's line ranges of each hunk of a `git diff -U0` (a file deleted: none)."""
    files: dict[str, list[tuple[int, int]]] = {}
    current = None
    for line in diff.splitlines():
        if line.startswith("+++ "):
            path = line[4:].strip()
            current = path[2:] if path.startswith("b/") else None
            if current:
                files.setdefault(current, [])
        elif current and (m := HUNK.match(line)):
            start, count = int(m.group(1)), int(m.group(2) if m.group(2) is not None else 1)
            if count:
                files[current].append((start, start + count - 1))
    return files


def _term(text: str, config: dict[str, str]) -> bool | None:
    m = TERM.match(text.strip())
    if not m:
        return None
    negate, defined, macro, macro_sym, bare = m.groups()
    sym = defined or macro_sym or bare
    value = config.get(sym, "n")
    if macro in ("IS_ENABLED", "IS_REACHABLE"):
        on = value in ("y", "m")
    elif macro == "IS_MODULE":
        on = value == "m"
    elif bare and not defined:   # #if CONFIG_X: its value (a bool option is 1 when y)
        on = value == "y" or (value not in ("n", "m", "") and value not in ("0", '"0"'))
    else:                        # #ifdef, defined(), IS_BUILTIN: y only (m defines CONFIG_X_MODULE)
        on = value == "y"
    return (not on) if negate else on


def evaluate(expr: str, config: dict[str, str]) -> bool | None:
    """An #if expression of CONFIG_ options joined by && or || (not both), each maybe negated:
    its value under ``config``; None when it is anything else."""
    expr = re.sub(r"/\*.*?\*/|//.*$", "", expr).strip()
    if "&&" in expr and "||" in expr:
        return None
    parts = [p.strip() for p in re.split(r"&&|\|\|", expr)]
    values = [_term(p, config) for p in parts]
    if any(v is None for v in values):
        return None
    return all(values) if "&&" in expr or len(values) == 1 else any(values)


def dead_lines(source: str, config: dict[str, str]) -> dict[int, str]:
    """The lines (1-based) in a branch of an #if/#ifdef that ``config`` leaves out, each with
    the condition that does."""
    dead: dict[int, str] = {}
    stack: list[list] = []   # [this branch live (None: unknown), an earlier branch live, its condition]
    for number, line in enumerate(source.splitlines(), 1):
        m = COND.match(line)
        if m:
            word, rest = m.group(1), m.group(2).strip()
            if word in ("if", "ifdef", "ifndef"):
                cond = rest if word == "if" else (f"defined({rest.split()[0]})" if rest else "")
                live = evaluate(cond, config)
                if word == "ifndef" and live is not None:
                    live = not live
                shown = f"#{word} {rest}".strip()
                stack.append([live, live, shown])
            elif word == "elif" and stack:
                top = stack[-1]
                live = evaluate(rest, config)
                top[0] = None if top[1] is None or live is None else (live and not top[1])
                top[1] = None if top[1] is None or live is None else (top[1] or live)
                top[2] = f"#elif {rest}"
            elif word == "else" and stack:
                top = stack[-1]
                top[0] = None if top[1] is None else not top[1]
                top[2] = f"#else of {top[2]}"
            elif word == "endif" and stack:
                stack.pop()
            continue
        off = next((s[2] for s in stack if s[0] is False), None)
        if off:
            dead[number] = off
    return dead


def kbuild_options(read: Reader, path: str) -> list[str]:
    """The CONFIG_ options that must be on for kbuild to compile ``path`` (a .c or .S file):
    its Makefile's obj-$(CONFIG_X) line (through a composite object's), then each parent
    directory's obj-$(CONFIG_Y) += dir/ line."""
    options: list[str] = []
    file = Path(path)
    name = file.with_suffix(".o").name
    target, directory = name, file.parent
    while directory != Path("."):
        text = next((x for m in ("Kbuild", "Makefile") if (x := read(str(directory / m))) is not None), "")
        text = text.replace("\\\n", " ")
        for _ in range(3):   # a composite object: foo-y += bar.o, then obj-$(CONFIG_X) += foo.o
            m = re.search(rf"^\s*obj-\$\((CONFIG_\w+)\)\s*[+:]?=.*?(?<![\w-]){re.escape(target)}\b", text, re.M)
            if m:
                options.append(m.group(1))
                break
            m = re.search(rf"^\s*([\w-]+)-(?:y|objs|\$\((CONFIG_\w+)\))\s*[+:]?=.*?(?<![\w-]){re.escape(target)}\b",
                          text, re.M)
            if not m or m.group(1) == "obj":
                break
            if m.group(2):
                options.append(m.group(2))
            target = f"{m.group(1)}.o"
        target, directory = f"{directory.name}/", directory.parent
    return list(dict.fromkeys(options))


def _left_out(read: Reader, diff: str, config: dict[str, str]) -> Iterator[tuple[str, list[str], list[str], bool]]:
    """What of ``diff`` ``config`` leaves out: (where, the off obj-$(CONFIG_X) of a changed file,
    [], True) for a file whose object is not built; (path:start-end, [], the conditions of its
    lines left out, whether all its code is) for a hunk with lines under an #if that is off."""
    for path, ranges in changed_lines(diff).items():
        source = read(path) if path.endswith((".c", ".S")) else None
        if source is None:
            continue
        off = [o for o in kbuild_options(read, path) if config.get(o, "n") not in ("y", "m")]
        if off:
            yield path, off, [], True
            continue
        dead = dead_lines(source, config)
        text = source.splitlines()
        for start, end in ranges:
            # the hunk's own #ifdef/#endif lines are no code: the rest must all be left out
            code = [n for n in range(start, end + 1) if n > len(text) or not COND.match(text[n - 1])]
            lines = [n for n in code if n in dead]
            if lines:
                yield f"{path}:{start}-{end}", [], list(dict.fromkeys(dead[n] for n in lines)), len(lines) == len(code)


def not_built(read: Reader, diff: str, config: dict[str, str]) -> list[str]:
    """What of ``diff`` (git diff -U0 of the series) the kernel of ``config`` does not compile,
    each with the option that would build it."""
    out = []
    for where, off, conds, whole in _left_out(read, diff, config):
        if off:
            out.append(f"{where} is not built: {' and '.join(f'{o} is off' for o in off)} "
                       f"(its Makefile's obj-$({off[0]}))")
        elif whole:
            out.append(f"{where} is not built: under {conds[0]}, off in this .config")
    return out


def wanted(read: Reader, diff: str, config: dict[str, str]) -> dict[str, str]:
    """The options that would build what of ``diff`` ``config`` leaves out, each with the
    change it builds: the off obj-$(CONFIG_X) of a changed file, the CONFIG_X of a changed hunk's
    plain #ifdef / #if IS_ENABLED / defined() (a negated or compound condition is left alone)."""
    out: dict[str, str] = {}
    for where, off, conds, _ in _left_out(read, diff, config):
        for o in off:
            out.setdefault(o, where)
        for cond in conds:
            m = re.fullmatch(r"#(?:ifdef|if)\s+(?:defined\s*\(?\s*|IS_ENABLED\s*\(\s*|IS_BUILTIN\s*\(\s*)?"
                             r"(CONFIG_\w+)\s*\)?", cond)
            if m:
                out.setdefault(m.group(1), where)
    return out


DEPENDS = re.compile(r"^\s*depends on\s+(.+)$")


def with_dependencies(options: list[str], definition: Callable[[str], str | None],
                      config: dict[str, str]) -> list[str]:
    """``options`` and the options their Kconfig `depends on` names that ``config`` has off,
    recursively (``definition``: the text of a symbol's `config` block, None when none is
    found): a && b needs both, a || b the first; a negated or compared term is left to the
    merge's verification."""
    out: list[str] = []
    queue = list(options)
    while queue:
        option = queue.pop(0)
        if option in out:
            continue
        out.append(option)
        block = definition(option[len("CONFIG_"):]) or ""
        for line in block.splitlines():
            m = DEPENDS.match(line)
            if not m:
                continue
            for term in re.split(r"&&", re.sub(r"#.*", "", m.group(1))):
                first = term.split("||")[0].strip().strip("()").strip()
                if re.fullmatch(r"[A-Z0-9_]+", first) and config.get(f"CONFIG_{first}", "n") not in ("y", "m"):
                    queue.append(f"CONFIG_{first}")
    return out
