# Membership cards pay for bookings (paid_by, card); minimum attendance is checked once per slot.

import django.db.models.deletion
import yuyue.core.timeutil
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('booking', '0005_booking_paid_fen'),
        ('memberships', '0001_initial'),
        ('scheduling', '0001_initial'),
    ]

    operations = [
        migrations.AddField(
            model_name='booking',
            name='paid_by',
            field=models.CharField(choices=[('money', 'money'), ('credit', 'membership card')], default='money', max_length=10, verbose_name='paid by'),
        ),
        migrations.AddField(
            model_name='booking',
            name='card',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='bookings', to='memberships.card'),
        ),
        migrations.CreateModel(
            name='AttendanceCheck',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('checked_at', models.DateTimeField(default=yuyue.core.timeutil.now)),
                ('seats_booked', models.PositiveIntegerField()),
                ('minimum', models.PositiveIntegerField()),
                ('cancelled', models.BooleanField(default=False)),
                ('slot', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='attendance_check', to='scheduling.slot')),
            ],
            options={
                'verbose_name': 'attendance check',
                'verbose_name_plural': 'attendance checks',
            },
        ),
    ]
