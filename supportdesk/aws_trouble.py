"""When AWS, not the command, fails: one line for the support desk and an exit code, never
a traceback (`manage.py` shows `explain(exc)` for every PynamoDB and botocore error).

- Throttling, an outage, no connection: exit 3. Every change the desk makes is one
  transaction and the import writes one transaction per account, so nothing, or only
  whole accounts, were written: running the command again is safe and finishes the job.
  A step after a change committed (ending sessions) is not reported here: the command
  reports the change as made and the step as failed, with `cause(exc)` (exit 5).
- No region, no or expired credentials, a permission AWS refused, a table or parameter
  that is not there: exit 1, with what to set or ask for (docs/support-desk.md, "The
  desk's machine", lists what the desk's role needs).

AWS's own error messages are never shown: they may carry key values (addresses).
"""

from __future__ import annotations

from dataclasses import dataclass

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ReadTimeoutError,
)
from pynamodb.exceptions import PynamoDBException

from chalicelib.clients import aws_error_code

EXIT_REFUSED, EXIT_INCOMPLETE = 1, 3
SETUP = 'docs/support-desk.md, "The desk\'s machine"'
# Codes that say "who you are" or "what you may do" is the problem, not AWS's health.
DENIED = {
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "MissingAuthenticationToken",
    "KMSAccessDeniedException",
}
EXPIRED = {"ExpiredToken", "ExpiredTokenException", "RequestExpired"}
THROTTLED = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "ThrottlingError",
    "Throttling",
}
UNREACHABLE = (
    EndpointConnectionError,
    ConnectTimeoutError,
    ReadTimeoutError,
    ConnectionClosedError,
)


@dataclass(frozen=True)
class Trouble:
    exit_code: int
    message: str

    @property
    def transient(self) -> bool:
        """Waiting and trying again may help (throttling, an outage)."""
        return self.exit_code == EXIT_INCOMPLETE


def _storage(what: str) -> Trouble:
    return Trouble(
        EXIT_INCOMPLETE,
        f"storage unavailable or throttled ({what}): nothing, or only whole "
        "accounts, were written; run the command again in a minute",
    )


def explain(exc: BaseException) -> Trouble | None:
    """What to tell the desk about an AWS failure (None: not an AWS failure)."""
    cause = exc
    if isinstance(exc, PynamoDBException):
        cause = exc.cause if isinstance(exc.cause, BaseException) else exc
    if isinstance(cause, NoRegionError):
        return Trouble(
            EXIT_REFUSED,
            "no AWS region: set AWS_DEFAULT_REGION to the region the "
            f"stage is deployed in (for example us-east-1); see {SETUP}",
        )
    if isinstance(cause, (NoCredentialsError, PartialCredentialsError, CredentialRetrievalError)):
        return Trouble(
            EXIT_REFUSED,
            "no AWS credentials: sign in with the support desk's "
            "role for this stage (for example `aws sso login` and AWS_PROFILE); "
            f"see {SETUP}",
        )
    if isinstance(cause, ClientError):
        code = aws_error_code(cause) or "unknown error"
        operation = cause.operation_name or "a call"
        if code in DENIED or "AccessDenied" in code:
            return Trouble(
                EXIT_REFUSED,
                f"AWS refused {operation} ({code}): the credentials "
                "in use may not do this; the support desk's role needs the "
                f"actions listed in {SETUP}",
            )
        if code in EXPIRED:
            return Trouble(
                EXIT_REFUSED,
                f"AWS credentials expired ({operation}: {code}): sign in again; see {SETUP}",
            )
        if code == "ResourceNotFoundException":
            return Trouble(
                EXIT_REFUSED,
                f"{operation}: a table is not there ({code}): check "
                "--stage, TABLE_PREFIX and AWS_DEFAULT_REGION",
            )
        if code == "ParameterNotFound":
            return Trouble(
                EXIT_REFUSED,
                f"{operation}: the SSM parameter the stage names is "
                "not there (ParameterNotFound): check --stage, "
                "HMAC_ROOT_KEY_PARAMETER and AWS_DEFAULT_REGION",
            )
        reasons = sorted(
            {
                r.code
                for r in (getattr(exc, "cancellation_reasons", None) or [])
                if r is not None and r.code not in (None, "None")
            }
        )
        return _storage(f"{operation}: {code}" + (f" ({', '.join(reasons)})" if reasons else ""))
    if isinstance(cause, UNREACHABLE):
        return _storage(f"cannot reach AWS: {cause.__class__.__name__}")
    if isinstance(cause, (BotoCoreError, PynamoDBException)):
        return _storage(cause.__class__.__name__)
    return None


def cause(exc: BaseException) -> str:
    """What an AWS failure was, in a few words, for a message that also says what did
    commit: "DynamoDB throttled: Query ProvisionedThroughputExceededException"."""
    service = "DynamoDB" if isinstance(exc, PynamoDBException) else "AWS"
    inner = (
        exc.cause
        if isinstance(exc, PynamoDBException) and isinstance(exc.cause, BaseException)
        else exc
    )
    if isinstance(inner, ClientError):
        code = aws_error_code(inner) or "unknown error"
        reasons = {
            r.code
            for r in (getattr(exc, "cancellation_reasons", None) or [])
            if r is not None and r.code not in (None, "None")
        }
        if code in THROTTLED or reasons & THROTTLED:
            what = "throttled"
        elif code in DENIED or "AccessDenied" in code or code in EXPIRED:
            what = "refused"
        else:
            what = "failed"
        return f"{service} {what}: {inner.operation_name or 'a call'} {code}"
    if isinstance(inner, UNREACHABLE):
        return f"cannot reach {service}: {inner.__class__.__name__}"
    return f"{service} failed: {inner.__class__.__name__}"


def is_transient(exc: BaseException) -> bool:
    trouble = explain(exc)
    return trouble is not None and trouble.transient
