from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('triage', '0002_escalation_delivered_at'),
    ]

    operations = [
        migrations.AddField(
            model_name='assessment',
            name='model_claim',
            field=models.UUIDField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='assessment',
            name='model_claimed_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name='assessment',
            name='model_state',
            field=models.CharField(choices=[('pending', 'Waiting for the model layer'), ('running', 'Claimed by a model-layer worker'), ('done', 'Model layer done'), ('failed', 'Model layer failed: routed to a person')], default='pending', max_length=8),
        ),
    ]
