from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0003_deployment_restarts')]

    initial = False

    operations = [
        ops.AddField(
            model_name='LLMModel',
            name='chat_template',
            field=fields.TextField(default='', unique=False),
        ),
        ops.AddField(
            model_name='LLMModel',
            name='conversation_template',
            field=fields.CharField(default='', max_length=64),
        ),
    ]
