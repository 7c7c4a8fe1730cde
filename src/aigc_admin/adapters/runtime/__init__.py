"""Runtime adapters: local processes, Docker, Kubernetes."""
