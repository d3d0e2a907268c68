from django.apps import AppConfig


class LabConfig(AppConfig):
    name = "lab"
    verbose_name = "R1 Lab"
    default_auto_field = "django.db.models.BigAutoField"
