"""Shared test setup. The unit layer gives every test a cache of its own (tests/unit/conftest.py:
$KHARNESS_CACHE under its temporary directory); the fault and boot layers build and boot real
kernels and share the real cache, taking its locks as every writer does."""
