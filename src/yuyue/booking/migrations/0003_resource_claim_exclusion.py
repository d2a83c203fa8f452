"""Invariant 3 in the database: on PostgreSQL, one resource cannot hold two overlapping claims.

Other databases have no exclusion constraints; there the engine locks the resource row first.
"""

from django.db import migrations

CREATE = """
CREATE EXTENSION IF NOT EXISTS btree_gist;
ALTER TABLE booking_resourceclaim ADD CONSTRAINT resource_claim_no_overlap
    EXCLUDE USING gist (resource_id WITH =, slot_id WITH <>, tstzrange(starts_at, ends_at, '[)') WITH &&);
"""
DROP = "ALTER TABLE booking_resourceclaim DROP CONSTRAINT IF EXISTS resource_claim_no_overlap;"


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("booking", "0002_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
