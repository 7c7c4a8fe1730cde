"""Job functions: ``async def task(ctx: JobContext, **kwargs) -> JSON-friendly result``."""
