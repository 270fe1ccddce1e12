"""Domain errors the services raise; the API turns them into JSON with the right status
(common.api.exception_handler), the pages into a message."""


class HitlError(Exception):
    status = 400

    def __init__(self, detail: str, **extra):
        super().__init__(detail)
        self.detail = detail
        self.extra = extra  # more fields for the JSON body, e.g. who decided and when


class InvalidInput(HitlError):
    status = 400


class NotAllowed(HitlError):
    status = 403


class NotFound(HitlError):
    status = 404


class Conflict(HitlError):
    status = 409


class TooLarge(HitlError):
    status = 413
