from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self):
        # The approval services tell of their transitions through approvals.notices, in the
        # transition's transaction; this app writes the notifications to send.
        from approvals.notices import notices_plug
        from notifications.services import notifications_write

        notices_plug(notifications_write)
