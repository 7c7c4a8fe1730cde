"""Programs that run inside the engine environment (not imported by the platform)."""
