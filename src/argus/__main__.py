"""``python -m argus``: the same as the ``argus`` command."""

from argus.entrypoints.cli import main

main()
