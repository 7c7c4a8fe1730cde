from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0004_model_templates')]

    initial = False

    operations = [
        ops.CreateModel(
            name='LLMEvalSample',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('evaluation', fields.ForeignKeyField('models.LLMEvalResult', source_field='evaluation_id', db_constraint=True, to_field='id', related_name='samples', on_delete=OnDelete.CASCADE)),
                ('idx', fields.IntField()),
                ('line', fields.IntField(default=0)),
                ('input', fields.TextField(unique=False)),
                ('reference', fields.TextField(default='', unique=False)),
                ('status', fields.CharField(default='pending', max_length=8)),
                ('output', fields.TextField(null=True, unique=False)),
                ('baseline_output', fields.TextField(null=True, unique=False)),
                ('score_exact_match', fields.FloatField(null=True)),
                ('score_contains', fields.FloatField(null=True)),
                ('score_bleu', fields.FloatField(null=True)),
                ('score_chrf', fields.FloatField(null=True)),
                ('score_rouge_l', fields.FloatField(null=True)),
                ('score_judge', fields.FloatField(null=True)),
                ('score_pairwise', fields.FloatField(null=True)),
                ('judge', fields.TextField(default='', unique=False)),
                ('error', fields.TextField(default='', unique=False)),
                ('latency_ms', fields.IntField(null=True)),
                ('prompt_tokens', fields.IntField(default=0)),
                ('completion_tokens', fields.IntField(default=0)),
                ('attempts', fields.IntField(default=0)),
            ],
            options={'table': 'llm_eval_samples', 'app': 'models', 'unique_together': (('evaluation', 'idx'),), 'indexes': [Index(fields=['evaluation_id', 'status'])], 'pk_attr': 'id', 'table_description': 'One sample of an evaluation: its input and reference, and once run the answer and its scores.'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='FineTuningTrainJob',
            name='gate',
            field=fields.TextField(default='', unique=False),
        ),
        ops.AddField(
            model_name='FineTuningTrainJob',
            name='gate_reason',
            field=fields.TextField(default='', unique=False),
        ),
        ops.AddField(
            model_name='FineTuningTrainJob',
            name='gate_status',
            field=fields.CharField(default='', max_length=16),
        ),
        ops.AddField(
            model_name='FineTuningTrainJob',
            name='holdout_percent',
            field=fields.FloatField(default=0),
        ),
        ops.AddField(
            model_name='FineTuningTrainJob',
            name='holdout_seed',
            field=fields.BigIntField(default=0),
        ),
        ops.AlterModelOptions(
            name='LLMEvalResult',
            options={'table': 'llm_eval_results', 'app': 'models', 'pk_attr': 'id', 'table_description': "An evaluation job (the original's table, extended): a model scored on a fixed set of samples."},
        ),
        ops.AddField(
            model_name='LLMEvalResult',
            name='aggregates',
            field=fields.TextField(default='{}', unique=False),
        ),
        ops.AddField(
            model_name='LLMEvalResult',
            name='channel',
            field=fields.ForeignKeyField('models.ChatChannel', source_field='channel_id', null=True, db_constraint=True, to_field='id', related_name='evaluations', on_delete=OnDelete.SET_NULL),
        ),
        ops.AddField(
            model_name='LLMEvalResult',
            name='concurrency',
            field=fields.IntField(default=4),
        ),
        ops.AddField(
            model_name='LLMEvalResult',
            name='config',
            field=fields.TextField(default='{}', unique=False),
        ),
        ops.AddField(
            model_name='LLMEvalResult',
            name='deploy_for_run',
            field=fields.BooleanField(default=False),
        ),
        ops.AddField(
            model_name='LLMEvalResult',
            name='done_count',
            field=fields.IntField(default=0),
        ),
        ops.AddField(
            model_name='LLMEvalResult',
            name='failed_count',
            field=fields.IntField(default=0),
        ),
        ops.AddField(
            model_name='LLMEvalResult',
            name='fine_tune_job',
            field=fields.ForeignKeyField('models.FineTuningTrainJob', source_field='fine_tune_job_id', null=True, db_constraint=True, to_field='id', related_name='evaluations', on_delete=OnDelete.SET_NULL),
        ),
        ops.AddField(
            model_name='LLMEvalResult',
            name='fingerprint',
            field=fields.CharField(default='', max_length=64),
        ),
        ops.AddField(
            model_name='LLMEvalResult',
            name='holdout_percent',
            field=fields.FloatField(default=0),
        ),
        ops.AddField(
            model_name='LLMEvalResult',
            name='holdout_seed',
            field=fields.BigIntField(default=0),
        ),
        ops.AddField(
            model_name='LLMEvalResult',
            name='metrics',
            field=fields.TextField(default='[]', unique=False),
        ),
        ops.AddField(
            model_name='LLMEvalResult',
            name='model',
            field=fields.ForeignKeyField('models.LLMModel', source_field='model_id', null=True, db_constraint=True, to_field='id', related_name='evaluations', on_delete=OnDelete.SET_NULL),
        ),
        ops.AddField(
            model_name='LLMEvalResult',
            name='operator',
            field=fields.CharField(default='', max_length=128),
        ),
        ops.AddField(
            model_name='LLMEvalResult',
            name='previous_id',
            field=fields.BigIntField(null=True),
        ),
        ops.AddField(
            model_name='LLMEvalResult',
            name='progress_seq',
            field=fields.BigIntField(default=0),
        ),
        ops.AddField(
            model_name='LLMEvalResult',
            name='repeat_hours',
            field=fields.IntField(default=0),
        ),
        ops.AddField(
            model_name='LLMEvalResult',
            name='role',
            field=fields.CharField(default='', max_length=16),
        ),
        ops.AddField(
            model_name='LLMEvalResult',
            name='run_deployment_id',
            field=fields.BigIntField(null=True),
        ),
        ops.AddField(
            model_name='LLMEvalResult',
            name='schedule_id',
            field=fields.BigIntField(null=True, db_index=True),
        ),
        ops.AddField(
            model_name='LLMEvalResult',
            name='source_file',
            field=fields.CharField(default='', max_length=64),
        ),
    ]
