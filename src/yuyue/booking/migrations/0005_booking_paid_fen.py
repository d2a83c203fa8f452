from django.db import migrations, models
from django.db.models import F

# Until payment at the venue existed, a priced booking only reached these states by being paid.
PAID_STATES = ["confirmed", "checked_in", "completed", "no_show"]


def backfill_paid(apps, schema_editor):
    Booking = apps.get_model("booking", "Booking")
    Booking.objects.filter(status__in=PAID_STATES, amount_fen__gt=0).update(paid_fen=F("amount_fen"))


class Migration(migrations.Migration):
    dependencies = [
        ("booking", "0004_booking_booking_merchant_newest"),
    ]

    operations = [
        migrations.AddField(
            model_name="booking",
            name="paid_fen",
            field=models.PositiveIntegerField(default=0, verbose_name="paid online (fen)"),
        ),
        migrations.RunPython(backfill_paid, migrations.RunPython.noop),
    ]
