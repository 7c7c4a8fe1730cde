from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0006_assistants')]

    initial = False

    operations = [
        ops.CreateModel(
            name='UsageBatch',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=40)),
                ('created_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'usage_batches', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A usage journal batch written to ``channel_usage`` (its id, stored in the same transaction): a batch is'},
            bases=['Model'],
        ),
    ]
