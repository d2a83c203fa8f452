"""The platform's default FAQ answers (editable and overridable per merchant in the console)."""

from django.db import migrations


def add_defaults(apps, schema_editor):
    # The texts live in yuyue.assistant.defaults, one readable table for every intent and kind.
    from yuyue.assistant.defaults import default_answers

    FaqEntry = apps.get_model("assistant", "FaqEntry")
    FaqEntry.objects.bulk_create(
        [
            FaqEntry(
                merchant=None,
                kind=row.kind,
                intent=row.intent,
                language=row.language,
                question=row.question,
                answer=row.answer,
            )
            for row in default_answers()
        ]
    )


def remove_defaults(apps, schema_editor):
    apps.get_model("assistant", "FaqEntry").objects.filter(merchant=None).delete()


class Migration(migrations.Migration):
    dependencies = [("assistant", "0001_initial")]
    operations = [migrations.RunPython(add_defaults, remove_defaults)]
