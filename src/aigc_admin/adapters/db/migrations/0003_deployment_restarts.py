from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0002_tenant_deleting')]

    initial = False

    operations = [
        ops.AddField(
            model_name='ModelDeploy',
            name='restarts',
            field=fields.IntField(default=0),
        ),
    ]
