from django.db import migrations


def create_default_warehouse(apps, schema_editor):
    Warehouse = apps.get_model("inventory", "Warehouse")
    if not Warehouse.objects.filter(is_default=True).exists():
        Warehouse.objects.update_or_create(
            code="default", defaults={"name": "Default warehouse", "is_default": True}
        )


class Migration(migrations.Migration):
    dependencies = [("inventory", "0002_initial")]

    operations = [migrations.RunPython(create_default_warehouse, migrations.RunPython.noop)]
