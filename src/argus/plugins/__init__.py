"""Argus plugins: the ``hookimpl`` marker is the one import a plugin author needs from here.

A site plugin is a distribution registered under the ``argus`` entry-point group::

    [project.entry-points.argus]
    acme = "argus_acme.plugin"
"""

import pluggy

PROJECT = "argus"
hookimpl = pluggy.HookimplMarker(PROJECT)

__all__ = ["PROJECT", "hookimpl"]
