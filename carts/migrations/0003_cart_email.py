from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("carts", "0002_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="cart",
            name="email",
            field=models.EmailField(blank=True, default="", max_length=254),
        ),
    ]
