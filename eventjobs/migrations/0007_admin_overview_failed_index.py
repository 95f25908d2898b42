# The admin: a table-less Overview model (its place in the admin index) and a partial
# index on FAILED jobs (the jobs' dead-letter queue, filtered by task newest first,
# counted by queue). Built CONCURRENTLY so an upgrade does not block writes to a big job table.

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):

    atomic = False

    dependencies = [
        ('eventjobs', '0006_ready_index_per_queue'),
    ]

    operations = [
        migrations.CreateModel(
            name='Overview',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
            ],
            options={
                'verbose_name': 'overview',
                'verbose_name_plural': 'overview',
                'db_table': 'eventjobs_overview_unused',
                'managed': False,
                'default_permissions': (),
            },
        ),
        AddIndexConcurrently(
            model_name='job',
            index=models.Index(condition=models.Q(('status', 'FAILED')), fields=['task_path', 'id'], name='eventjobs_job_failed'),
        ),
    ]
