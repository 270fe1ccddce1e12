"""What the app's ModelAdmins share."""


class AnnouncesChanges:
    """A ModelAdmin mixin: after any save or delete, call `announce_change()` (e.g. to
    tell every process that a cache is out of date)."""

    def announce_change(self) -> None:
        raise NotImplementedError

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        self.announce_change()

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        self.announce_change()

    def delete_queryset(self, request, queryset):
        super().delete_queryset(request, queryset)
        self.announce_change()
