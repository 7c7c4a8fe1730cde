"""The ``aigc-admin`` command (``app``), ``up`` (``up``) and the docs generator (``docs_gen``)."""
