"""What differs between architectures, as data read from configs/arches/*.yaml.

Nothing in the harness asks which architecture it is handling: adding one is a YAML file here and
a kconfig fragment, no code.
"""

from __future__ import annotations

import platform
import re
from dataclasses import dataclass
from pathlib import Path

from harness.config.loader import CONFIG_DIR, check_name, find, load
from harness.core.errors import ConfigError


@dataclass(frozen=True)
class Arch:
    name: str
    kernel_arch: str                 # make ARCH=
    image: str                       # path of the bootable image inside the build directory
    kconfig: tuple[str, ...]         # fragments in configs/kconfig/ specific to this arch
    host_machines: tuple[str, ...]   # `uname -m` values that build and run it natively
    cross_compile: str               # CROSS_COMPILE= prefix on any other host
    debian_arch: str                 # Debian's name, for guest packages
    qemu: str                        # QEMU system emulator binary
    machine: str                     # -M
    cpu_tcg: str                     # -cpu under TCG
    console: str                     # console= device of the serial port QEMU wires to stdio
    nic: str = "virtio-net-pci"      # -device for the guest's network card
    cpu_kvm: str = "host"            # -cpu under KVM
    accel: tuple[str, ...] = ("kvm", "tcg")   # preference order; kvm only when usable
    memory: str = "1G"
    cpus: int = 1                    # -smp: vCPUs of every guest (--cpus)
    cmdline: str = ""                # added to every guest's kernel command line (--append)
    boot_deadline: float = 60.0      # seconds from QEMU start to a working SSH command, TCG
    boot_deadline_kvm: float = 20.0
    qemu_args: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()     # other names for it (Debian's, uname -m's)
    # the Debian suite the guest's packages (and the static libraries of its programs) come
    # from, when guest.yaml's does not have this arch (bookworm has no riscv64)
    guest_suite: str | None = None
    # what the host needs to build and boot it (its QEMU, its cross compiler and libc): the
    # Makefile's `make deps` installs them, read from this line (a one-line YAML list)
    host_packages: tuple[str, ...] = ()
    # `--arch all` (make boot-test, make test) takes it; an arch without says how to run it
    in_all: bool = True

    def validate(self, file: Path, where: str) -> None:
        check_name(file, "name", self.name)
        bad = [a for a in self.accel if a not in ("kvm", "tcg")]
        if bad or not self.accel:
            raise ConfigError(file, "accel", f"expected a list of kvm, tcg; got {list(self.accel)}")
        if self.cpus < 1:
            raise ConfigError(file, "cpus", f"expected at least 1 vCPU, got {self.cpus}")
        if not re.fullmatch(r"[1-9][0-9]*[MG]", self.memory):
            raise ConfigError(file, "memory", f"expected a size such as 1G or 1536M, got {self.memory!r}")
        if self.boot_deadline <= 0:
            raise ConfigError(file, "boot_deadline", "expected a positive number of seconds")
        for p in self.host_packages:
            if not re.fullmatch(r"[a-z0-9][a-z0-9+.-]+", p):
                raise ConfigError(file, "host_packages", f"expected Debian package names, got {p!r}")
        if self.guest_suite is not None:
            check_name(file, "guest_suite", self.guest_suite)

    @property
    def native(self) -> bool:
        return platform.machine() in self.host_machines

    @property
    def make_cross(self) -> str:
        """CROSS_COMPILE for this host: empty when the host runs this architecture."""
        return "" if self.native else self.cross_compile


def arch_name(name: str, config_dir: Path = CONFIG_DIR) -> str:
    """The arch's own name for ``name`` or one of its aliases (aarch64, amd64); else ``name``."""
    if (config_dir / "arches" / f"{name}.yaml").is_file():
        return name
    for known in all_arches(config_dir):
        if name in load(Arch, config_dir / "arches" / f"{known}.yaml").aliases:
            return known
    return name


def load_arch(name: str, config_dir: Path = CONFIG_DIR) -> Arch:
    name = arch_name(name, config_dir)
    arch = load(Arch, find("arches", name, config_dir))
    if arch.name != name:
        raise ConfigError(find("arches", name, config_dir), "name",
                          f"expected {name!r} (the file's name), got {arch.name!r}")
    return arch


def default_arches(config_dir: Path = CONFIG_DIR) -> list[str]:
    """What ``--arch all`` means: every arch whose YAML does not leave itself out (in_all)."""
    return [a for a in all_arches(config_dir) if load(Arch, config_dir / "arches" / f"{a}.yaml").in_all]


def all_arches(config_dir: Path = CONFIG_DIR) -> list[str]:
    return sorted(p.stem for p in (config_dir / "arches").glob("*.yaml"))
