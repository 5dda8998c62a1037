"""Domain errors: what went wrong, independent of the interface that reports it.

GraphQL turns them into `extensions.code`; the REST shim into status codes.
Anything that is not a DomainError is a bug and is masked on both interfaces.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    message: str


class DomainError(Exception):
    code: str = "error"
    graphql_code: str = "INTERNAL_SERVER_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def extensions(self) -> dict[str, object]:
        return {"code": self.graphql_code}


class Unauthenticated(DomainError):
    """No token, or a token that does not prove who the caller is."""

    code = "unauthenticated"
    graphql_code = "UNAUTHENTICATED"

    def __init__(self, message: str, *, token_given: bool) -> None:
        super().__init__(message)
        self.token_given = token_given


class AuthUnavailable(DomainError):
    """The token may be fine, but the keys needed to check it cannot be fetched."""

    code = "auth_unavailable"
    graphql_code = "AUTH_UNAVAILABLE"


class Forbidden(DomainError):
    code = "forbidden"
    graphql_code = "FORBIDDEN"


class NotFound(DomainError):
    code = "not_found"
    graphql_code = "NOT_FOUND"


class ValidationFailed(DomainError):
    code = "validation_error"
    graphql_code = "BAD_USER_INPUT"

    def __init__(self, errors: list[FieldError]) -> None:
        summary = "; ".join(f"{e.field}: {e.message}" for e in errors)
        super().__init__(f"Invalid input: {summary}.")
        self.errors = errors

    @classmethod
    def single(cls, field: str, message: str) -> ValidationFailed:
        return cls([FieldError(field, message)])

    @property
    def extensions(self) -> dict[str, object]:
        return {
            "code": self.graphql_code,
            "field": self.errors[0].field,
            "errors": [{"field": e.field, "message": e.message} for e in self.errors],
        }
