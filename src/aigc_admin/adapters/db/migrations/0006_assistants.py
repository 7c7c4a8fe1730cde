from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0005_evaluations')]

    initial = False

    operations = [
        ops.CreateModel(
            name='AssistantVersion',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('assistant', fields.ForeignKeyField('models.Assistant', source_field='assistant_id', db_constraint=True, to_field='id', related_name='versions', on_delete=OnDelete.CASCADE)),
                ('version', fields.IntField()),
                ('config', fields.TextField(unique=False)),
                ('operator', fields.CharField(default='', max_length=100)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'assistant_versions', 'app': 'models', 'unique_together': (('assistant', 'version'),), 'pk_attr': 'id', 'table_description': 'A published, immutable version of an assistant (served as model assistant::<name>).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='McpServer',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
                ('tenant', fields.ForeignKeyField('models.Tenant', source_field='tenant_id', db_constraint=True, to_field='id', related_name='mcp_servers', on_delete=OnDelete.CASCADE)),
                ('name', fields.CharField(max_length=32)),
                ('url', fields.CharField(max_length=1024)),
                ('headers', fields.TextField(default='', unique=False)),
                ('enabled', fields.BooleanField(default=True)),
                ('timeout_seconds', fields.FloatField(default=30)),
                ('tools', fields.TextField(default='[]', unique=False)),
                ('refreshed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('last_error', fields.TextField(default='', unique=False)),
                ('operator', fields.CharField(default='', max_length=100)),
            ],
            options={'table': 'mcp_servers', 'app': 'models', 'unique_together': (('tenant', 'name'),), 'pk_attr': 'id', 'table_description': "A tenant's MCP server (Streamable HTTP) whose tools its assistants may call."},
            bases=['TimestampedModel'],
        ),
        ops.CreateModel(
            name='TenantEgressHost',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('tenant', fields.ForeignKeyField('models.Tenant', source_field='tenant_id', db_constraint=True, to_field='id', related_name='egress_hosts', on_delete=OnDelete.CASCADE)),
                ('host', fields.CharField(max_length=255)),
            ],
            options={'table': 'tenant_egress_hosts', 'app': 'models', 'unique_together': (('tenant', 'host'),), 'pk_attr': 'id', 'table_description': "A tenant's allow-list for its tools' outbound calls (none: any public host)."},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Assistant',
            name='agent_mode',
            field=fields.CharField(default='auto', max_length=16),
        ),
        ops.AddField(
            model_name='Assistant',
            name='channel_ids',
            field=fields.TextField(default='[]', unique=False),
        ),
        ops.AddField(
            model_name='Assistant',
            name='enabled',
            field=fields.BooleanField(default=True),
        ),
        ops.AddField(
            model_name='Assistant',
            name='max_steps',
            field=fields.IntField(default=5),
        ),
        ops.AddField(
            model_name='Assistant',
            name='max_tokens',
            field=fields.IntField(default=4096),
        ),
        ops.AddField(
            model_name='Assistant',
            name='mcp_server_ids',
            field=fields.TextField(default='[]', unique=False),
        ),
        ops.AddField(
            model_name='Assistant',
            name='published_version',
            field=fields.IntField(default=0),
        ),
        ops.AddField(
            model_name='Assistant',
            name='timeout_seconds',
            field=fields.FloatField(default=120),
        ),
        ops.AddField(
            model_name='AssistantMessage',
            name='channel_id',
            field=fields.BigIntField(null=True),
        ),
        ops.AddField(
            model_name='AssistantMessage',
            name='completion_tokens',
            field=fields.IntField(default=0),
        ),
        ops.AddField(
            model_name='AssistantMessage',
            name='operator',
            field=fields.CharField(default='', max_length=100),
        ),
        ops.AddField(
            model_name='AssistantMessage',
            name='prompt_tokens',
            field=fields.IntField(default=0),
        ),
        ops.AddField(
            model_name='AssistantMessage',
            name='status',
            field=fields.CharField(default='completed', max_length=16),
        ),
        ops.AddField(
            model_name='AssistantMessage',
            name='stop_reason',
            field=fields.CharField(default='', max_length=32),
        ),
        ops.AddField(
            model_name='AssistantMessage',
            name='thread_id',
            field=fields.CharField(default='', db_index=True, max_length=64),
        ),
        ops.AddField(
            model_name='AssistantMessage',
            name='version',
            field=fields.IntField(default=0),
        ),
        ops.AddField(
            model_name='Tool',
            name='enabled',
            field=fields.BooleanField(default=True),
        ),
        ops.AddField(
            model_name='Tool',
            name='secret_headers',
            field=fields.TextField(default='', unique=False),
        ),
        ops.AddField(
            model_name='Tool',
            name='source',
            field=fields.CharField(default='', max_length=255),
        ),
    ]
