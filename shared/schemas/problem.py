"""The error body of every 4xx and 5xx answer: RFC 9457 problem details with a stable code."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class FieldProblem(BaseModel):
    """One problem with one field (JSON bodies, query parameters) or one cell (CSV files)."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "example": {
                "field": "lines.2.fte_in_post",
                "in": "body",
                "row": 3,
                "column": "fte_in_post",
                "value": "lots",
                "code": "not_a_number",
                "message": "fte_in_post must be a number (got 'lots').",
            }
        },
    )

    code: str = Field(description="Stable code of the broken rule, e.g. `unknown_role`.")
    message: str = Field(description="What is wrong, for a person to read.")
    field: str | None = Field(
        default=None,
        description="Dotted path of the field in the request, e.g. `lines.2.headcount` "
        "(list positions count from 0); `body` when the body as a whole is wrong.",
    )
    in_: str | None = Field(
        default=None,
        alias="in",
        description="Where the field is: `body`, `query`, `path` or `header`.",
    )
    row: int | None = Field(
        default=None,
        description="Line of a CSV file (the header is line 1), or of a JSON return's `lines` "
        "(counting from 1).",
    )
    column: str | None = Field(
        default=None, description="Column of a CSV file, or the field of a JSON return's line."
    )
    value: str | None = Field(default=None, description="The offending value, as sent.")
    organisation_code: str | None = Field(
        default=None, description="Bulk imports: the line's organisation code."
    )


class Problem(BaseModel):
    """RFC 9457 problem details, sent as `application/problem+json`."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "example": {
                "type": "/problems/return_invalid",
                "title": "Unprocessable content",
                "status": 422,
                "code": "return_invalid",
                "detail": "The return has 1 error(s); nothing was stored.",
                "instance": "/v1/organisations/6f1c0d9e-4b55-4a8e-9a1d-1f0c2b3a4d5e/returns",
                "request_id": "0b6f6c1e6d2a4d0f9a7c1b2e3d4f5a6b",
                "errors": [
                    {
                        "row": 2,
                        "column": "role_code",
                        "value": "astronaut",
                        "code": "unknown_role",
                        "message": "Unknown role code 'astronaut'; see GET /v1/roles.",
                        "field": "lines.1.role_code",
                        "in": "body",
                    }
                ],
            }
        },
    )

    type: str = Field(
        description="A URI reference to a page of this API that explains the code and its fix "
        "(`/problems/{code}`)."
    )
    title: str = Field(description="Short summary of the status; one title per status.")
    status: int = Field(description="The HTTP status code.", ge=100, le=599)
    code: str = Field(description="Stable, machine-readable code; branch on this.")
    detail: str | None = Field(default=None, description="What went wrong in this request.")
    instance: str | None = Field(default=None, description="The path of the request.")
    request_id: str | None = Field(
        default=None, description="The request's id (also in X-Request-ID); quote it in reports."
    )
    errors: list[FieldProblem] | None = Field(
        default=None, description="Every problem with a field or cell, in order."
    )


class ProblemDoc(BaseModel):
    """What a problem code means and how to fix it."""

    code: str = Field(description="The stable code, as in a problem's `code`.")
    status: int = Field(description="The HTTP status it comes with.")
    title: str = Field(description="The status's title.")
    meaning: str = Field(description="What the code means.")
    fix: str = Field(description="What the caller should do about it.")
    type: str = Field(description="This page's address, as in a problem's `type`.")
