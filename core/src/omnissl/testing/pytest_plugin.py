"""Pytest fixtures for plugin authors (auto-registered through the ``pytest11`` entry point)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # the fixtures import torch (through the manager) only when a test uses one
    from omnissl.plugins import PluginManager


@pytest.fixture
def plugin_manager() -> PluginManager:
    """A fresh manager with the core's components and every installed plugin."""
    from omnissl.plugins import PluginManager

    return PluginManager()


@pytest.fixture
def bare_plugin_manager() -> PluginManager:
    """A fresh manager with the core's components only (no entry points)."""
    from omnissl.plugins import PluginManager

    return PluginManager(autoload=False)


@pytest.fixture
def temporary_plugin(bare_plugin_manager: PluginManager) -> Iterator[Callable[[object, str], PluginManager]]:
    """Register an in-process plugin object on a fresh core-only manager: ``temporary_plugin(obj, "name")``."""

    def register(plugin: object, name: str) -> PluginManager:
        bare_plugin_manager.register(plugin, name=name)
        bare_plugin_manager.check_pending()
        return bare_plugin_manager

    yield register


@pytest.fixture
def shared_data():
    """Path of the real datasets (``$OMNISSL_DATA`` or ``../shared/data``); skips the test when absent."""
    from omnissl.testing.data import shared_data_dir

    path = shared_data_dir()
    if path is None:
        pytest.skip("real data not available: set OMNISSL_DATA or place it at ../shared/data")
    return path
