# Drops the foreign keys' single-column indexes on chat_message, which the composite
# indexes leading with the same columns cover (chat/models.py). Written by hand: Django's
# AlterField would drop and re-add both foreign key constraints, and re-adding one
# validates every row of the table under a lock. Only the indexes change here.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

INDEXES = {"chat_message_conversation_id_a1207bf4": "conversation_id", "chat_message_sender_id_991c686c": "sender_id"}


class Migration(migrations.Migration):

    dependencies = [
        ('chat', '0002_message_sender_sent'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(f'DROP INDEX IF EXISTS "{name}"',
                                  reverse_sql=f'CREATE INDEX "{name}" ON "chat_message" ("{column}")')
                for name, column in INDEXES.items()
            ],
            state_operations=[
                migrations.AlterField(
                    model_name='message',
                    name='conversation',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='messages', to='chat.conversation'),
                ),
                migrations.AlterField(
                    model_name='message',
                    name='sender',
                    field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL),
                ),
            ],
        ),
    ]
