"""Tortoise models: every table of the original aigc-admin, plus what tenancy and audit need.

Table and column names follow the original (``models``, ``model_deploy``, ``chat_channels``,
``fine_tuning_train_job``…) so operators recognise them. Behaviour lives in domain services;
these classes only describe storage. The same schema runs on MariaDB and SQLite.
"""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class TimestampedModel(Model):
    id = fields.BigIntField(primary_key=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        abstract = True


# --- tenancy and accounts -----------------------------------------------------------------
class Tenant(TimestampedModel):
    name = fields.CharField(max_length=64)
    code = fields.CharField(max_length=64, unique=True)  # stable identifier, used by LDAP mappings
    public_tenant_id = fields.CharField(max_length=64, unique=True)
    remark = fields.CharField(max_length=255, default="")
    content_quality_check = fields.BooleanField(default=False)
    deleting = fields.BooleanField(default=False)  # deleteTenant marked it; a job is removing what it owns

    class Meta:
        table = "tenants"


class Account(TimestampedModel):
    username = fields.CharField(max_length=128, unique=True)
    email = fields.CharField(max_length=128, default="", db_index=True)
    nickname = fields.CharField(max_length=128, default="")
    password_hash = fields.CharField(max_length=255, default="")  # argon2; empty for LDAP accounts
    source = fields.CharField(max_length=16, default="local")  # local | ldap
    is_platform_admin = fields.BooleanField(default=False)
    enabled = fields.BooleanField(default=True)
    language = fields.CharField(max_length=16, default="en")
    last_login_at = fields.DatetimeField(null=True)

    class Meta:
        table = "accounts"


class TenantMembership(TimestampedModel):
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="memberships", on_delete=fields.CASCADE)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name="memberships", on_delete=fields.CASCADE)
    role = fields.CharField(max_length=16)  # maintainer | member
    tenant_id: int
    account_id: int

    class Meta:
        table = "tenant_memberships"
        unique_together = (("tenant", "account"),)


# --- models and deployments ---------------------------------------------------------------
class LLMModel(TimestampedModel):
    provider_name = fields.CharField(max_length=50, default="local")  # local | openai (external upstream)
    model_type = fields.CharField(max_length=30, default="chat")  # chat | completion | embedding
    model_name = fields.CharField(max_length=128, unique=True)
    max_tokens = fields.IntField(default=2048)
    is_private = fields.BooleanField(default=False)
    is_fine_tuning = fields.BooleanField(default=False)
    enabled = fields.BooleanField(default=False)
    remark = fields.CharField(max_length=255, default="")
    parameters = fields.DecimalField(max_digits=9, decimal_places=2, default=0)
    last_operator = fields.CharField(max_length=100, default="")
    base_url = fields.CharField(max_length=500, default="")  # external upstream
    upstream_secret = fields.TextField(default="")  # encrypted credentials of an external upstream
    model_path = fields.CharField(max_length=500, default="")
    conversation_template = fields.CharField(max_length=64, default="")  # a FastChat template name: an override
    chat_template = fields.TextField(default="")  # JSON: the model's own chat template, read from its files
    tenants: fields.ManyToManyRelation[Tenant] = fields.ManyToManyField(
        "models.Tenant", related_name="models", through="tenant_model_associations",
        forward_key="tenant_id", backward_key="model_id")

    class Meta:
        table = "models"


class ModelDeploy(TimestampedModel):
    model: fields.ForeignKeyRelation[LLMModel] = fields.ForeignKeyField(
        "models.LLMModel", related_name="deployments", on_delete=fields.CASCADE)
    tenant: fields.ForeignKeyNullableRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="deployments", null=True, on_delete=fields.SET_NULL)
    model_path = fields.CharField(max_length=500, default="")
    status = fields.CharField(max_length=32, default="PENDING", db_index=True)
    reason = fields.TextField(default="")
    engine = fields.CharField(max_length=32, default="model_worker")
    replicas = fields.IntField(default=1)
    gpus_per_replica = fields.IntField(default=0)
    label = fields.CharField(max_length=128, default="")
    quantization = fields.CharField(max_length=32, default="")
    max_gpu_memory = fields.CharField(max_length=32, default="")
    runtime_backend = fields.CharField(max_length=16, default="")
    runtime_handle = fields.TextField(default="")  # JSON: what the runtime needs to find the workload
    worker_addresses = fields.TextField(default="[]")  # JSON list
    operator = fields.CharField(max_length=100, default="")
    started_at = fields.DatetimeField(null=True)
    stopped_at = fields.DatetimeField(null=True)
    restarts = fields.IntField(default=0)  # automatic restarts since the last deploy, redeploy or scale
    engine_options = fields.TextField(default="{}")  # JSON: the vllm engine's options (EngineOptions)
    base_deploy_id = fields.BigIntField(null=True)  # a LoRA adapter served on that deployment's replicas
    model_id: int

    class Meta:
        table = "model_deploy"


class ModelHealth(Model):
    """One probe of a deployed worker (or the controller when deploy is null)."""

    id = fields.BigIntField(primary_key=True)
    deploy: fields.ForeignKeyNullableRelation[ModelDeploy] = fields.ForeignKeyField(
        "models.ModelDeploy", related_name="health", null=True, on_delete=fields.CASCADE)
    worker_address = fields.CharField(max_length=255, default="")
    healthy = fields.BooleanField(default=False)
    speed = fields.FloatField(default=0)
    queue_length = fields.IntField(default=0)
    detail = fields.TextField(default="")
    checked_at = fields.DatetimeField(auto_now_add=True, db_index=True)
    running = fields.IntField(default=0)  # vllm: requests generating, and queued in the engine
    waiting = fields.IntField(default=0)
    kv_cache_usage = fields.FloatField(null=True)  # vllm: share of the KV cache in use

    class Meta:
        table = "model_health"


# --- channels ----------------------------------------------------------------------------
class ChatChannel(TimestampedModel):
    name = fields.CharField(max_length=64, unique=True)
    alias = fields.CharField(max_length=64, default="New Channel")
    remark = fields.CharField(max_length=128, default="")
    quota = fields.BigIntField(null=True)  # tokens; null = unlimited
    used_tokens = fields.BigIntField(default=0)
    only_openai = fields.BooleanField(default=False)
    api_key_hash = fields.CharField(max_length=128, unique=True)
    api_key_prefix = fields.CharField(max_length=16, default="")
    email = fields.CharField(max_length=128, default="")
    last_operator = fields.CharField(max_length=100, default="")
    expires_at = fields.DatetimeField(null=True)
    rpm_limit = fields.IntField(null=True)
    tpm_limit = fields.IntField(null=True)
    enabled = fields.BooleanField(default=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="channels", on_delete=fields.CASCADE)
    models: fields.ManyToManyRelation[LLMModel] = fields.ManyToManyField(
        "models.LLMModel", related_name="channels", through="channel_model_associations",
        forward_key="model_id", backward_key="channel_id")
    tenant_id: int

    class Meta:
        table = "chat_channels"


class ChannelUsage(Model):
    """Usage per channel, model and day, accumulated in batches by the gateway."""

    id = fields.BigIntField(primary_key=True)
    channel: fields.ForeignKeyRelation[ChatChannel] = fields.ForeignKeyField(
        "models.ChatChannel", related_name="usage", on_delete=fields.CASCADE)
    model_name = fields.CharField(max_length=128)
    day = fields.DateField()
    requests = fields.BigIntField(default=0)
    prompt_tokens = fields.BigIntField(default=0)
    completion_tokens = fields.BigIntField(default=0)

    class Meta:
        table = "channel_usage"
        unique_together = (("channel", "model_name", "day"),)


class UsageBatch(Model):
    """A usage journal batch written to ``channel_usage`` (its id, stored in the same transaction): a batch is
    never counted twice (gateway/usage_journal.py). Rows older than a day are pruned."""

    id = fields.CharField(max_length=40, primary_key=True)
    created_at = fields.DatetimeField(auto_now_add=True, db_index=True)

    class Meta:
        table = "usage_batches"


# --- files and datasets ------------------------------------------------------------------
class File(TimestampedModel):
    file_id = fields.CharField(max_length=64, unique=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="files", on_delete=fields.CASCADE)
    name = fields.CharField(max_length=255)
    purpose = fields.CharField(max_length=32, db_index=True)  # fine-tune | fine-tune-eval | …
    size = fields.BigIntField(default=0)
    file_type = fields.CharField(max_length=32, default="")
    storage_path = fields.CharField(max_length=500)  # relative to the storage root
    sha256 = fields.CharField(max_length=64, db_index=True)
    line_count = fields.IntField(default=0)
    token_count = fields.BigIntField(default=0)
    creator_email = fields.CharField(max_length=128, default="")
    tenant_id: int

    class Meta:
        table = "files"
        unique_together = (("tenant", "sha256", "purpose"),)


class Dataset(TimestampedModel):
    uuid = fields.CharField(max_length=64, unique=True)
    name = fields.CharField(max_length=64)
    remark = fields.CharField(max_length=500, default="")
    sample_count = fields.IntField(default=0)
    creator_email = fields.CharField(max_length=128, default="")
    type = fields.CharField(max_length=24, default="text")
    format = fields.CharField(max_length=24, default="messages")  # messages | alpaca | sharegpt
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="datasets", on_delete=fields.CASCADE)
    tenant_id: int

    class Meta:
        table = "datasets"
        unique_together = (("tenant", "name"),)


class DatasetSample(TimestampedModel):
    uuid = fields.CharField(max_length=64, unique=True)
    dataset: fields.ForeignKeyRelation[Dataset] = fields.ForeignKeyField(
        "models.Dataset", related_name="samples", on_delete=fields.CASCADE)
    title = fields.CharField(max_length=128, default="")
    system = fields.TextField(default="")
    instruction = fields.TextField(default="")
    input = fields.TextField(default="")
    output = fields.TextField(default="")
    conversations = fields.TextField(default="")  # JSON list of {role, content}
    label = fields.CharField(max_length=64, default="")
    remark = fields.CharField(max_length=500, default="")
    creator_email = fields.CharField(max_length=128, default="")
    turns = fields.IntField(default=0)

    class Meta:
        table = "dataset_samples"


# --- fine-tuning -------------------------------------------------------------------------
class FineTuningTemplate(TimestampedModel):
    name = fields.CharField(max_length=64, unique=True)
    base_model = fields.CharField(max_length=128, db_index=True)
    content = fields.TextField()  # the template; rendered in a sandbox from explicit variables
    params = fields.TextField(default="")
    train_image = fields.CharField(max_length=500, default="")
    remark = fields.CharField(max_length=500, default="")
    base_model_path = fields.CharField(max_length=500, default="")
    script_file = fields.CharField(max_length=500, default="")
    output_dir = fields.CharField(max_length=500, default="")
    max_tokens = fields.IntField(default=2048)
    lora = fields.BooleanField(default=False)
    enabled = fields.BooleanField(default=False)
    template_type = fields.CharField(max_length=24, default="train")  # train | inference

    class Meta:
        table = "fine_tuning_template"


class FineTuningTrainJob(TimestampedModel):
    job_id = fields.CharField(max_length=64, unique=True)
    fine_tuned_model = fields.CharField(max_length=128, null=True, unique=True)
    channel: fields.ForeignKeyNullableRelation[ChatChannel] = fields.ForeignKeyField(
        "models.ChatChannel", related_name="fine_tuning_jobs", null=True, on_delete=fields.SET_NULL)
    template: fields.ForeignKeyNullableRelation[FineTuningTemplate] = fields.ForeignKeyField(
        "models.FineTuningTemplate", related_name="jobs", null=True, on_delete=fields.SET_NULL)
    file: fields.ForeignKeyNullableRelation[File] = fields.ForeignKeyField(
        "models.File", related_name="fine_tuning_jobs", null=True, on_delete=fields.SET_NULL)
    validation_file: fields.ForeignKeyNullableRelation[File] = fields.ForeignKeyField(
        "models.File", related_name="validation_jobs", null=True, on_delete=fields.SET_NULL)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="fine_tuning_jobs", on_delete=fields.CASCADE)
    base_model = fields.CharField(max_length=128, db_index=True)
    train_batch_size = fields.IntField(default=1)
    eval_batch_size = fields.IntField(default=1)
    accumulation_steps = fields.IntField(default=1)
    train_epoch = fields.IntField(default=1)
    proc_per_node = fields.IntField(default=1)
    eval_steps = fields.IntField(default=1500)
    save_steps = fields.IntField(default=1500)
    save_total_limit = fields.IntField(default=8)
    learning_rate = fields.FloatField(default=2e-5)
    weight_decay = fields.FloatField(default=0.0)
    warmup_ratio = fields.FloatField(default=0.04)
    logging_steps = fields.IntField(default=1)
    model_max_length = fields.IntField(default=2048)
    lora = fields.BooleanField(default=False)
    base_model_path = fields.CharField(max_length=500, default="")
    data_path = fields.CharField(max_length=500, default="")
    output_dir = fields.CharField(max_length=500, default="")
    script_file = fields.CharField(max_length=500, default="")
    master_port = fields.IntField(null=True)
    file_url = fields.CharField(max_length=500, default="")
    suffix = fields.CharField(max_length=64, default="")
    train_status = fields.CharField(max_length=16, default="WAITING", db_index=True)
    train_duration = fields.IntField(default=0)  # seconds
    progress = fields.FloatField(default=0)
    progress_epochs = fields.FloatField(default=0)
    progress_loss = fields.FloatField(default=0)
    progress_learning_rate = fields.FloatField(default=0)
    train_publisher = fields.CharField(max_length=128, default="")
    train_script = fields.TextField(default="")
    paas_job_name = fields.CharField(max_length=128, default="")
    runtime_handle = fields.TextField(default="")
    auto_deploy = fields.BooleanField(default=False)
    start_train_time = fields.DatetimeField(null=True)
    finished_at = fields.DatetimeField(null=True)
    error_message = fields.TextField(default="")
    remark = fields.CharField(max_length=128, default="")
    log_cursor = fields.BigIntField(default=0)  # last persisted log line number
    holdout_percent = fields.FloatField(default=0)  # of the file's samples, kept out of training for evaluation
    holdout_seed = fields.BigIntField(default=0)
    gate = fields.TextField(default="")  # JSON: the evaluation gate of the promotion ("" = none)
    gate_status = fields.CharField(max_length=16, default="")  # "" | PENDING | PASSED | FAILED | ERROR
    gate_reason = fields.TextField(default="")
    tenant_id: int

    class Meta:
        table = "fine_tuning_train_job"


class FineTuningLog(Model):
    """One training log line, seq is a per-job monotonically increasing cursor."""

    id = fields.BigIntField(primary_key=True)
    job: fields.ForeignKeyRelation[FineTuningTrainJob] = fields.ForeignKeyField(
        "models.FineTuningTrainJob", related_name="logs", on_delete=fields.CASCADE)
    seq = fields.BigIntField()
    line = fields.TextField()
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "fine_tuning_log"
        unique_together = (("job", "seq"),)


# --- evaluation --------------------------------------------------------------------------
class LLMEvalResult(TimestampedModel):
    """An evaluation job (the original's table, extended): a model scored on a fixed set of samples."""

    uuid = fields.CharField(max_length=64, unique=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="eval_results", on_delete=fields.CASCADE)
    status = fields.CharField(max_length=20, default="pending", db_index=True)
    model_name = fields.CharField(max_length=128, db_index=True)
    metric_name = fields.CharField(max_length=50)  # the primary (first) metric
    score = fields.DecimalField(max_digits=7, decimal_places=2, default=0)  # its mean, in percent
    details = fields.TextField(default="")
    dataset_file: fields.ForeignKeyNullableRelation[File] = fields.ForeignKeyField(
        "models.File", related_name="eval_results", null=True, on_delete=fields.SET_NULL)
    progress = fields.FloatField(default=0)
    eval_total = fields.IntField(default=0)
    error_message = fields.CharField(max_length=1000, default="")
    started_at = fields.DatetimeField(null=True)
    completed_at = fields.DatetimeField(null=True)
    dataset_type = fields.CharField(max_length=50, default="train")  # train (a held-out part) | custom
    remark = fields.CharField(max_length=255, default="")
    # ours
    model: fields.ForeignKeyNullableRelation[LLMModel] = fields.ForeignKeyField(
        "models.LLMModel", related_name="evaluations", null=True, on_delete=fields.SET_NULL)
    channel: fields.ForeignKeyNullableRelation[ChatChannel] = fields.ForeignKeyField(
        "models.ChatChannel", related_name="evaluations", null=True, on_delete=fields.SET_NULL)
    source_file = fields.CharField(max_length=64, default="")  # the file's public id, kept if the file goes
    holdout_percent = fields.FloatField(default=0)
    holdout_seed = fields.BigIntField(default=0)
    metrics = fields.TextField(default="[]")  # JSON list of metric names
    config = fields.TextField(default="{}")  # JSON: generation parameters, judge, baseline, retries
    concurrency = fields.IntField(default=4)
    done_count = fields.IntField(default=0)
    failed_count = fields.IntField(default=0)
    aggregates = fields.TextField(default="{}")  # JSON: per metric mean and interval
    fingerprint = fields.CharField(max_length=64, default="")  # of the samples' inputs and references
    fine_tune_job: fields.ForeignKeyNullableRelation[FineTuningTrainJob] = fields.ForeignKeyField(
        "models.FineTuningTrainJob", related_name="evaluations", null=True, on_delete=fields.SET_NULL)
    role = fields.CharField(max_length=16, default="")  # a gate's: candidate | base
    deploy_for_run = fields.BooleanField(default=False)
    run_deployment_id = fields.BigIntField(null=True)  # the deployment made for the run, undeployed after
    repeat_hours = fields.IntField(default=0)  # > 0: re-evaluated on the same samples that often
    schedule_id = fields.BigIntField(null=True, db_index=True)  # a scheduled run: the evaluation it repeats
    previous_id = fields.BigIntField(null=True)  # a scheduled run: the run before it
    progress_seq = fields.BigIntField(default=0)  # last progress event published
    operator = fields.CharField(max_length=128, default="")
    tenant_id: int

    class Meta:
        table = "llm_eval_results"


class LLMEvalSample(Model):
    """One sample of an evaluation: its input and reference, and once run the answer and its scores."""

    id = fields.BigIntField(primary_key=True)
    evaluation: fields.ForeignKeyRelation[LLMEvalResult] = fields.ForeignKeyField(
        "models.LLMEvalResult", related_name="samples", on_delete=fields.CASCADE)
    idx = fields.IntField()  # 0-based position in the evaluation
    line = fields.IntField(default=0)  # 1-based line of the source file
    input = fields.TextField()  # JSON: the messages before the reference answer
    reference = fields.TextField(default="")
    status = fields.CharField(max_length=8, default="pending")  # pending | done | failed
    output = fields.TextField(null=True)
    baseline_output = fields.TextField(null=True)  # pairwise: the other model's answer
    score_exact_match = fields.FloatField(null=True)
    score_contains = fields.FloatField(null=True)
    score_bleu = fields.FloatField(null=True)
    score_chrf = fields.FloatField(null=True)
    score_rouge_l = fields.FloatField(null=True)
    score_judge = fields.FloatField(null=True)
    score_pairwise = fields.FloatField(null=True)
    judge = fields.TextField(default="")  # JSON: the judge's rating/verdicts, rationale and raw text
    error = fields.TextField(default="")
    latency_ms = fields.IntField(null=True)
    prompt_tokens = fields.IntField(default=0)
    completion_tokens = fields.IntField(default=0)
    attempts = fields.IntField(default=0)
    evaluation_id: int

    class Meta:
        table = "llm_eval_samples"
        unique_together = (("evaluation", "idx"),)
        indexes = (("evaluation_id", "status"),)


# --- assistants and tools ----------------------------------------------------------------
class Tool(TimestampedModel):
    uuid = fields.CharField(max_length=64, unique=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="tools", on_delete=fields.CASCADE)
    name = fields.CharField(max_length=64)
    description = fields.TextField(default="")
    tool_type = fields.CharField(max_length=64, default="function")  # code_interpreter | retrieval | function
    metadata = fields.TextField(default="{}")  # the HTTP spec as JSON, without the secret headers
    secret_headers = fields.TextField(default="")  # encrypted JSON object ("" = none)
    enabled = fields.BooleanField(default=True)
    source = fields.CharField(max_length=255, default="")  # "" or openapi:<operation> (re-import matches on it)
    operator = fields.CharField(max_length=100, default="")
    remark = fields.CharField(max_length=255, default="")

    class Meta:
        table = "tools"
        unique_together = (("tenant", "name"),)


class McpServer(TimestampedModel):
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="mcp_servers", on_delete=fields.CASCADE)
    name = fields.CharField(max_length=32)
    url = fields.CharField(max_length=1024)
    headers = fields.TextField(default="")  # encrypted JSON object ("" = none)
    enabled = fields.BooleanField(default=True)
    timeout_seconds = fields.FloatField(default=30)
    tools = fields.TextField(default="[]")  # what the server listed at the last refresh
    refreshed_at = fields.DatetimeField(null=True)
    last_error = fields.TextField(default="")
    operator = fields.CharField(max_length=100, default="")

    class Meta:
        table = "mcp_servers"
        unique_together = (("tenant", "name"),)
        table_description = "A tenant's MCP server (Streamable HTTP) whose tools its assistants may call."


class TenantEgressHost(Model):
    id = fields.BigIntField(primary_key=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="egress_hosts", on_delete=fields.CASCADE)
    host = fields.CharField(max_length=255)

    class Meta:
        table = "tenant_egress_hosts"
        unique_together = (("tenant", "host"),)
        table_description = "A tenant's allow-list for its tools' outbound calls (none: any public host)."


class Assistant(TimestampedModel):
    uuid = fields.CharField(max_length=64, unique=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="assistants", on_delete=fields.CASCADE)
    name = fields.CharField(max_length=64)
    avatar = fields.CharField(max_length=255, default="")
    remark = fields.CharField(max_length=500, default="")
    model_name = fields.CharField(max_length=128)
    description = fields.CharField(max_length=1000, default="")
    instructions = fields.TextField(default="")
    metadata = fields.TextField(default="{}")
    operator = fields.CharField(max_length=64, default="")
    max_steps = fields.IntField(default=5)
    max_tokens = fields.IntField(default=4096)
    timeout_seconds = fields.FloatField(default=120)
    agent_mode = fields.CharField(max_length=16, default="auto")  # auto | native | react
    enabled = fields.BooleanField(default=True)
    mcp_server_ids = fields.TextField(default="[]")  # JSON list of mcp_servers ids
    channel_ids = fields.TextField(default="[]")  # channels that may call the published assistant (JSON list)
    published_version = fields.IntField(default=0)  # 0: not published
    tools: fields.ManyToManyRelation[Tool] = fields.ManyToManyField(
        "models.Tool", related_name="assistants", through="assistant_tool_associations",
        forward_key="tool_id", backward_key="assistant_id")

    class Meta:
        table = "assistants"
        unique_together = (("tenant", "name"),)


class AssistantVersion(Model):
    id = fields.BigIntField(primary_key=True)
    assistant: fields.ForeignKeyRelation[Assistant] = fields.ForeignKeyField(
        "models.Assistant", related_name="versions", on_delete=fields.CASCADE)
    version = fields.IntField()
    config = fields.TextField()  # the frozen agent configuration (tools' secret headers stay encrypted)
    operator = fields.CharField(max_length=100, default="")
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "assistant_versions"
        unique_together = (("assistant", "version"),)
        table_description = "A published, immutable version of an assistant (served as model assistant::<name>)."


class AssistantMessage(TimestampedModel):
    assistant: fields.ForeignKeyRelation[Assistant] = fields.ForeignKeyField(
        "models.Assistant", related_name="messages", on_delete=fields.CASCADE)
    request = fields.TextField()
    response = fields.TextField()
    messages = fields.TextField()  # the run's steps (JSON list)
    thread_id = fields.CharField(max_length=64, default="", db_index=True)
    status = fields.CharField(max_length=16, default="completed")  # running | completed | stopped | failed
    stop_reason = fields.CharField(max_length=32, default="")
    prompt_tokens = fields.IntField(default=0)
    completion_tokens = fields.IntField(default=0)
    version = fields.IntField(default=0)  # 0: the playground (the assistant as it was)
    channel_id = fields.BigIntField(null=True)
    operator = fields.CharField(max_length=100, default="")

    class Meta:
        table = "assistant_messages"


# --- system ------------------------------------------------------------------------------
class SysDict(TimestampedModel):
    parent_id = fields.BigIntField(default=0, db_index=True)
    code = fields.CharField(max_length=32, db_index=True)
    dict_value = fields.CharField(max_length=128)
    dict_label = fields.CharField(max_length=128)
    dict_type = fields.CharField(max_length=10, default="string")  # string | int | bool
    sort = fields.IntField(default=0)
    remark = fields.CharField(max_length=255, default="")

    class Meta:
        table = "sys_dict"


class SysAudit(Model):
    id = fields.BigIntField(primary_key=True)
    trace_id = fields.CharField(max_length=64, db_index=True)
    operator = fields.CharField(max_length=128, default="", db_index=True)
    account_id = fields.BigIntField(null=True)
    tenant_id = fields.BigIntField(null=True, db_index=True)
    operation = fields.CharField(max_length=128, db_index=True)
    variables = fields.TextField(default="{}")  # JSON, secrets masked
    duration_ms = fields.IntField(default=0)
    success = fields.BooleanField(default=True)
    error = fields.TextField(default="")
    remote_addr = fields.CharField(max_length=64, default="")
    created_at = fields.DatetimeField(auto_now_add=True, db_index=True)

    class Meta:
        table = "sys_audit"
