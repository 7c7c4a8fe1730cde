from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0007_usage_batches')]

    initial = False

    operations = [
        ops.AddField(
            model_name='ModelDeploy',
            name='base_deploy_id',
            field=fields.BigIntField(null=True),
        ),
        ops.AddField(
            model_name='ModelDeploy',
            name='engine_options',
            field=fields.TextField(default='{}', unique=False),
        ),
        ops.AddField(
            model_name='ModelHealth',
            name='kv_cache_usage',
            field=fields.FloatField(null=True),
        ),
        ops.AddField(
            model_name='ModelHealth',
            name='running',
            field=fields.IntField(default=0),
        ),
        ops.AddField(
            model_name='ModelHealth',
            name='waiting',
            field=fields.IntField(default=0),
        ),
    ]
