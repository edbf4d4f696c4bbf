"""The demo: a simulated fleet fed through the public API (``argus demo``)."""
