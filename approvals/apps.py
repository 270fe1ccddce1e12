from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "approvals"
    verbose_name = "Approvals"

    def ready(self):
        from approvals.metrics import WorkInTheDatabase
        from common import metrics

        metrics.scrape_collector_add(WorkInTheDatabase())
