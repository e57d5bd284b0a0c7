"""Configs: the generic loader (loader), kernels and profiles (models), scenarios (scenarios)
and architectures (arches). The names most callers use are here."""

from harness.config.loader import CONFIG_DIR, check_name, find, from_dict, is_path, known, load, load_yaml, search_dirs
from harness.config.models import (Defaults, KernelConfig, KernelProfile, KnownFlaky, ProfileConfig, SourceSpec,
                                   fragments, kconfig_fragment, load_defaults, load_kernel, load_profile)
from harness.config.scenarios import (GUEST_SCRIPTS, HIERARCHIES, KIND_NEEDS, MEASURES, Expectation, ScenarioConfig,
                                      guest_file, load_scenario, script_dirs)

__all__ = ["CONFIG_DIR", "check_name", "find", "from_dict", "is_path", "known", "load", "load_yaml",
           "search_dirs", "Defaults", "KernelConfig", "KernelProfile", "KnownFlaky", "ProfileConfig",
           "SourceSpec", "fragments", "kconfig_fragment", "load_defaults", "load_kernel",
           "load_profile", "GUEST_SCRIPTS", "HIERARCHIES", "KIND_NEEDS", "MEASURES",
           "Expectation", "ScenarioConfig", "guest_file", "load_scenario", "script_dirs"]
