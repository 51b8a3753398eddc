from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0003_reservation_order_single_link"),
    ]

    operations = [
        migrations.AddField(
            model_name="order",
            name="email",
            field=models.EmailField(blank=True, default="", max_length=254),
        ),
    ]
