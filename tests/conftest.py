"""Shared test setup: every test gets a cache of its own unless it asks for the real one."""
