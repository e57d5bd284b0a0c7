"""The changed code must be built: which changed files and hunks a .config leaves out, read
from the tree's Makefiles and sources as kbuild reads them."""

from __future__ import annotations

from pathlib import Path

from harness.build.coverage import changed_lines, dead_lines, evaluate, kbuild_options, not_built

DIFF = """diff --git a/fs/notify/fanotify/fanotify_user.c b/fs/notify/fanotify/fanotify_user.c
--- a/fs/notify/fanotify/fanotify_user.c
+++ b/fs/notify/fanotify/fanotify_user.c
@@ -10,0 +11,2 @@ static int x;
+int a;
+int b;
@@ -40 +42 @@ int f(void)
-	return 0;
+	return 1;
diff --git a/mm/gone.c b/mm/gone.c
--- a/mm/gone.c
+++ /dev/null
@@ -1,3 +0,0 @@
-x
"""


def tree(tmp_path: Path) -> Path:
    t = tmp_path / "linux"
    (t / "fs" / "notify" / "fanotify").mkdir(parents=True)
    (t / "fs" / "Makefile").write_text("obj-y += notify/\n")
    (t / "fs" / "notify" / "Makefile").write_text("obj-$(CONFIG_FSNOTIFY) += fsnotify.o\nobj-y += dnotify/ \\\n\tfanotify/\n")
    (t / "fs" / "notify" / "fanotify" / "Makefile").write_text(
        "obj-$(CONFIG_FANOTIFY) += fanotify.o\nfanotify-y := fanotify_main.o fanotify_user.o\n")
    src = ["int x;"] * 60
    src[40:43] = ["#ifdef CONFIG_FANOTIFY_ACCESS_PERMISSIONS", "\treturn 1;", "#endif"]   # lines 41-43
    (t / "fs" / "notify" / "fanotify" / "fanotify_user.c").write_text("\n".join(src) + "\n")
    return t


def test_a_diffs_hunks_are_the_new_files_lines():
    assert changed_lines(DIFF) == {"fs/notify/fanotify/fanotify_user.c": [(11, 12), (42, 42)]}


def reader(t: Path):
    return lambda p: (t / p).read_text() if (t / p).is_file() else None


def test_an_objects_options_are_its_makefiles_through_a_composite_and_its_directories(tmp_path):
    assert kbuild_options(reader(tree(tmp_path)), "fs/notify/fanotify/fanotify_user.c") == ["CONFIG_FANOTIFY"]


def test_if_expressions_of_options_and_what_is_left_undecided():
    config = {"CONFIG_A": "y", "CONFIG_M": "m"}
    assert evaluate("defined(CONFIG_A)", config) and not evaluate("defined(CONFIG_M)", config)
    assert evaluate("IS_ENABLED(CONFIG_M)", config) and not evaluate("!IS_ENABLED(CONFIG_M)", config)
    assert evaluate("CONFIG_A && !defined(CONFIG_B)", config) is True
    assert evaluate("CONFIG_B || IS_BUILTIN(CONFIG_A)", config) is True
    assert evaluate("LINUX_VERSION_CODE > 5", config) is None
    assert evaluate("CONFIG_A && (CONFIG_B || CONFIG_C)", config) is None
    src = "#ifdef CONFIG_B\nb\n#elif IS_ENABLED(CONFIG_A)\na\n#else\nc\n#endif\n#if FOO\nd\n#endif\n"
    assert dead_lines(src, config) == {2: "#ifdef CONFIG_B", 6: "#else of #elif IS_ENABLED(CONFIG_A)"}


def test_a_file_or_hunk_the_config_leaves_out_is_named_with_its_option(tmp_path):
    t = reader(tree(tmp_path))
    off = not_built(t, DIFF, {})
    assert off == ["fs/notify/fanotify/fanotify_user.c is not built: CONFIG_FANOTIFY is off "
                   "(its Makefile's obj-$(CONFIG_FANOTIFY))"]
    hunk = not_built(t, DIFF, {"CONFIG_FANOTIFY": "y"})
    assert hunk == ["fs/notify/fanotify/fanotify_user.c:42-42 is not built: under #ifdef "
                    "CONFIG_FANOTIFY_ACCESS_PERMISSIONS, off in this .config"]
    assert not_built(t, DIFF, {"CONFIG_FANOTIFY": "y", "CONFIG_FANOTIFY_ACCESS_PERMISSIONS": "y"}) == []
