from django.apps import AppConfig


class ZakopsConfig(AppConfig):
    name = "zakops"
    verbose_name = "ZakOps backend tables"
