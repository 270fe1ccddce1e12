"""The sign-in form: Django's, speaking of the e-mail the page asks for."""

from django.contrib.auth.forms import AuthenticationForm


class SignInForm(AuthenticationForm):
    error_messages = {
        **AuthenticationForm.error_messages,
        # Django's says "username"; the field is the e-mail, in any case.
        "invalid_login": "Wrong e-mail or password. The password is case-sensitive; the e-mail is not.",
    }
