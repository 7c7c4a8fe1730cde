"""Background work outside the API process: the RQ job runner (``runner``), the RQ tasks it runs (``tasks``)
and the periodic tasks rq-scheduler enqueues (``periodic``). Each job opens the platform itself (bootstrap):
Tortoise connections belong to one event loop and rq runs every job in a fresh one. The control loops that
run inside the API process are in ``aigc_admin.loops``."""
