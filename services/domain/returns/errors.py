"""Errors of workforce returns and bulk imports."""

from __future__ import annotations

from shared.errors import Conflict, NotFound, Unprocessable


class ReturnNotFound(NotFound):
    """No return with this id is visible to the key."""

    code = "return_not_found"
    fix = "List the organisation's returns to find the id."


class ImportNotFound(NotFound):
    """No bulk import with this id is visible to the key."""

    code = "import_not_found"
    fix = "Use the id from the Location header of POST /v1/imports/returns."


class ConcurrentSubmission(Conflict):
    """Another return for this organisation and date was stored at the same time."""

    code = "concurrent_submission"
    fix = "Retry; the later submission becomes the next version."


class ReturnInvalid(Unprocessable):
    """The return breaks one or more rules; `errors[]` lists every problem by row and column."""

    code = "return_invalid"
    fix = "Correct every listed line and send the whole return again; nothing was stored."


class AsAtRequired(Unprocessable):
    """A CSV return needs the as_at query parameter."""

    code = "as_at_required"
    fix = "Add ?as_at=YYYY-MM-DD (the date the figures describe)."


class AsAtInFuture(Unprocessable):
    """as_at is in the future."""

    code = "as_at_in_future"
    fix = "Send the date the figures describe, today or earlier."


class AsAtBeforeOrganisationOpened(Unprocessable):
    """as_at is before the organisation opened."""

    code = "as_at_before_organisation_opened"
    fix = "Send a date on or after the organisation's opened_on."


class MultipartMalformed(Unprocessable):
    """The multipart/form-data body cannot be parsed."""

    code = "multipart_malformed"
    fix = "Send a well-formed multipart body with the CSV in the field 'file'."


class FileRequired(Unprocessable):
    """The multipart body has no file field."""

    code = "file_required"
    fix = "Send the CSV as a multipart field named 'file'."
