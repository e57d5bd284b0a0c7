# kharness: thin wrappers over the CLI and pytest. `make boot-test` and `make test` install what
# they need first (`make deps`), so both work on a fresh Debian machine.

PYTHON  ?= python3
VENV    ?= .venv
ARCH    ?= all
KERNEL  ?=
# a kernel base named alone runs its base kernel only (the default series is 5.10's)
VARIANT ?= $(if $(KERNEL),base,both)
ARGS    ?=
PYTEST_ARGS ?=

# Debian packages: the native compiler and what a kernel build needs, ccache, the tools that
# unpack Debian packages for the guest image, and b4 (series from mail); then each arch's own
# (its QEMU, its cross compiler), from the host_packages line of configs/arches/*.yaml.
DEB_PACKAGES := gcc make bc bison flex libelf-dev libssl-dev ccache cpio xz-utils \
	git python3-venv dpkg-dev dropbear-bin kmod rsync perl b4
ARCH_PACKAGES := $(shell sed -n 's/^host_packages: *\[\(.*\)\]/\1/p' configs/arches/*.yaml | tr ',' ' ')

VENV_STAMP := $(VENV)/.kharness-installed

.PHONY: deps deps-system deps-python boot-test check-series test test-splats test-extended test-unit lint clean-venv bench

deps: deps-system deps-python

deps-system:
	@missing=""; for p in $(DEB_PACKAGES) $(ARCH_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
		echo "deps: installing$$missing"; \
		$$sudo apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -q --no-install-recommends $$missing; \
	else echo "deps: Debian packages present"; fi

deps-python: $(VENV_STAMP)

$(VENV_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $@

boot-test: deps
	$(VENV)/bin/kharness run --arch $(ARCH) --variant $(VARIANT) $(if $(KERNEL),--kernel $(KERNEL)) $(ARGS)

# Everything but the real check-series matrix (ten 5.10 builds, ~40 min cold on 2 cores: `make
# check-series`; its code runs in the unit layer on tests/fakelinux), the LKDTM splat tests (two
# kernels of their own, ~15 min cold, and the fake fix that stops charging kernel stacks, an
# incremental 5.10 build: `make test-splats`) and the cgroup selftests (3 runs of
# each program per kernel, minutes of guest time per kernel: `make boot-test` runs them) and the
# scenarios marked `extended` (`make test-extended`), so that a cold run stays within CI's limit.
test: deps lint
	$(VENV)/bin/python -m pytest -m "not check_series and not splats and not fake_fix and not cgroup_selftests and not extended" $(PYTEST_ARGS)

test-splats: deps
	$(VENV)/bin/python -m pytest -m "splats or fake_fix" $(PYTEST_ARGS)

# The scenarios marked `extended` (configs/scenarios/*.yaml: audit rows and variants of a guard),
# which make boot-test runs and make test leaves out, as pytest cases on the same kernels.
test-extended: deps
	$(VENV)/bin/python -m pytest -m extended $(PYTEST_ARGS)

test-unit: deps-python lint
	$(VENV)/bin/python -m pytest -m "not boot" $(PYTEST_ARGS)

# ruff (pyflakes, pycodestyle, sorted imports, bugbear) everywhere; mypy on the layers
# pyproject's [tool.mypy] names (the lower ones, typed); seconds either
lint: deps-python
	$(VENV)/bin/ruff check harness tests bench
	$(VENV)/bin/mypy

clean-venv:
	rm -rf $(VENV)

check-series: deps
	$(VENV)/bin/kharness check-series --arch $(ARCH) $(ARGS)

# Not part of `make test`: minutes of kernel builds per arch (see README, Benchmark).
bench: deps
	$(VENV)/bin/python bench/bench.py --arch $(ARCH) $(ARGS)
