"""Background work: RQ job entry point (``runner``), periodic tasks (``periodic``) and the tasks themselves.

Each job opens and closes Tortoise itself: connections belong to one event loop and rq runs every
job in a fresh one.
"""
