"""``python -m aigc_admin.cli``: the ``aigc-admin`` command (``up`` starts its worker and scheduler this way)."""

from aigc_admin.cli.app import main

main()
