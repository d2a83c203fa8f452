# Membership cards (次卡): card products, customers' cards and their credit entries.

import django.db.models.deletion
import yuyue.core.timeutil
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('accounts', '0004_points_balances'),
        ('booking', '0005_booking_paid_fen'),
        ('catalog', '0002_initial'),
        ('tenants', '0001_initial'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='CardProduct',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=60, verbose_name='name')),
                ('credits', models.PositiveIntegerField(verbose_name='classes')),
                ('valid_days', models.PositiveIntegerField(verbose_name='valid for (days)')),
                ('price_fen', models.PositiveIntegerField(default=0, verbose_name='price (fen)')),
                ('offering_group', models.CharField(blank=True, help_text='Also covers every offering whose limit group is this.', max_length=50, verbose_name='offering group covered')),
                ('is_active', models.BooleanField(default=True, verbose_name='on sale')),
                ('created_at', models.DateTimeField(default=yuyue.core.timeutil.now)),
                ('merchant', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='card_products', to='tenants.merchant')),
                ('offerings', models.ManyToManyField(blank=True, related_name='card_products', to='catalog.offering', verbose_name='offerings covered')),
            ],
            options={
                'verbose_name': 'card product',
                'verbose_name_plural': 'card products',
                'ordering': ['merchant_id', 'id'],
            },
        ),
        migrations.CreateModel(
            name='Card',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('credits_total', models.PositiveIntegerField(verbose_name='classes')),
                ('credits_left', models.IntegerField(verbose_name='classes left')),
                ('expires_at', models.DateTimeField(verbose_name='expires at')),
                ('status', models.CharField(choices=[('active', 'active'), ('void', 'void')], default='active', max_length=10, verbose_name='status')),
                ('price_fen', models.PositiveIntegerField(default=0, verbose_name='price (fen)')),
                ('created_at', models.DateTimeField(default=yuyue.core.timeutil.now)),
                ('granted_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('merchant', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='cards', to='tenants.merchant')),
                ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='cards', to='accounts.enduser')),
                ('product', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='cards', to='memberships.cardproduct')),
            ],
            options={
                'verbose_name': 'membership card',
                'verbose_name_plural': 'membership cards',
                'ordering': ['-created_at', '-id'],
            },
        ),
        migrations.CreateModel(
            name='CreditEntry',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('delta', models.IntegerField(verbose_name='change')),
                ('credits_after', models.IntegerField(verbose_name='classes left after')),
                ('reason', models.CharField(max_length=200, verbose_name='reason')),
                ('created_at', models.DateTimeField(default=yuyue.core.timeutil.now)),
                ('booking', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='credit_entries', to='booking.booking')),
                ('card', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='entries', to='memberships.card')),
                ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'verbose_name': 'card entry',
                'verbose_name_plural': 'card entries',
                'ordering': ['-id'],
            },
        ),
        migrations.AddConstraint(
            model_name='cardproduct',
            constraint=models.CheckConstraint(condition=models.Q(('credits__gte', 1)), name='card_product_has_credits'),
        ),
        migrations.AddConstraint(
            model_name='cardproduct',
            constraint=models.CheckConstraint(condition=models.Q(('valid_days__gte', 1)), name='card_product_has_validity'),
        ),
        migrations.AddIndex(
            model_name='card',
            index=models.Index(fields=['user', 'merchant', 'status'], name='memberships_user_id_6b1aa9_idx'),
        ),
        migrations.AddConstraint(
            model_name='card',
            constraint=models.CheckConstraint(condition=models.Q(('credits_left__gte', 0), ('credits_left__lte', models.F('credits_total'))), name='card_credits_within_total'),
        ),
    ]
