from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('testapp', '0002_event_ledger'),
    ]

    operations = [
        migrations.CreateModel(
            name='EffectCounter',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('group', models.CharField(max_length=100)),
                ('key', models.TextField()),
                ('value', models.BigIntegerField(default=0)),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('group', 'key'), name='testapp_effectcounter_group_key')],
            },
        ),
    ]
