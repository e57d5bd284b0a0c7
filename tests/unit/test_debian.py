"""The Debian mirror is read from the machine's apt configuration, never written down."""


import pytest

from harness.core.errors import HarnessError
from harness.sources.debian import PrivateApt, machine_mirrors


def test_deb822_sources_give_main_and_security(tmp_path):
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d/debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main\nSigned-By: /k.gpg\n\n"
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n"
        "Components: main\n")
    m = machine_mirrors(tmp_path)
    assert (m.main, m.security, m.keyring) == (
        "http://mirror.example/debian", "http://mirror.example/debian-security", "/k.gpg")


def test_one_line_sources_list_is_understood(tmp_path):
    (tmp_path / "sources.list").write_text(
        "deb [signed-by=/k.gpg] http://m.example/debian bookworm main\n"
        "# deb http://old.example/debian buster main\n"
        "deb http://m.example/debian-security bookworm-security main\n")
    m = machine_mirrors(tmp_path)
    assert m.main == "http://m.example/debian" and m.security == "http://m.example/debian-security"


def test_third_party_repositories_are_not_taken_for_debian(tmp_path):
    (tmp_path / "sources.list").write_text("deb https://vendor.example/apt cloud-sdk main\n")
    with pytest.raises(HarnessError, match="no Debian archive"):
        machine_mirrors(tmp_path)


def test_private_apt_lives_under_the_cache(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/sources.list").write_text("deb http://m.example/debian bookworm main\n")
    apt = PrivateApt(tmp_path / "cache", "bullseye", sources=True, mirrors=machine_mirrors(tmp_path / "etc"))
    assert apt.root.is_relative_to(tmp_path / "cache")
    assert "Suites: bullseye bullseye-updates" in apt.sources_text and "deb-src" in apt.sources_text
    opts = " ".join(apt._options())
    assert "/etc/apt" not in opts
