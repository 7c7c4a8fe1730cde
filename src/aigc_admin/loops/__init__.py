"""Control loops that run inside the API process, each once per interval across the cluster (a Redis lock):
the health monitor (``health_monitor``) and the training scheduler (``FineTuneRunner.tick``). The composition
root (``bootstrap.Platform.control_loops``) builds them; the web app starts and stops them."""
