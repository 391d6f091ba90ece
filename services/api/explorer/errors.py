"""Errors of the Explorer's pages, shown as pages (or, for a missing session, a redirect to
the sign-in form)."""

from __future__ import annotations

from shared.errors import BadRequest, Forbidden, NotFound, Unauthorized, Unprocessable


class SignInRequired(Unauthorized):
    """There is no live Explorer session: never opened, signed out, expired or revoked."""

    code = "sign_in_required"
    fix = "Sign in again at /explorer/sign-in with an API key."


class CsrfRejected(Forbidden):
    """A form arrived without the CSRF token of the page that showed it."""

    code = "csrf_token_invalid"
    fix = "Reload the page and send the form again."


class PageItemNotFound(NotFound):
    """The Explorer has no table or chart of that name here, or nothing to draw."""

    code = "explorer_item_not_found"
    fix = "Use the download links on the page."


class AreaNotInRun(NotFound):
    """The area is not one of the run's areas this key may read."""

    code = "area_not_in_run"
    fix = "Choose an area from the page's list."


class SubmitKeyRequired(Forbidden):
    """Returns are uploaded with a submit key bound to one organisation."""

    code = "submit_key_required"
    fix = "Sign in with your organisation's submit key."


class UploadFileRequired(Unprocessable):
    """The upload form arrived without a file."""

    code = "upload_file_required"
    fix = "Choose the CSV file to upload."


class FormDamaged(BadRequest):
    """A hidden field of the form was altered."""

    code = "form_damaged"
    fix = "Upload the file again."
