"""Secrets: from an environment variable locally, from SSM SecureString in AWS stages.

Values are fetched once per Lambda container. boto3 is imported only when SSM is used, so
local and test stages never pay for it.
"""

from __future__ import annotations

import functools
import os

from chalicelib import clients
from chalicelib.config import ConfigurationError, get_settings


def _from_ssm(parameter_name: str) -> str:
    response = clients.ssm().get_parameter(Name=parameter_name, WithDecryption=True)
    return response["Parameter"]["Value"]


@functools.lru_cache(maxsize=1)
def login_gov_private_key() -> str:
    settings = get_settings()
    if settings.login_gov_private_key:
        return settings.login_gov_private_key
    if settings.login_gov_private_key_parameter:
        return _from_ssm(settings.login_gov_private_key_parameter)
    raise ConfigurationError("set LOGIN_GOV_PRIVATE_KEY or LOGIN_GOV_PRIVATE_KEY_PARAMETER")


@functools.lru_cache(maxsize=1)
def hmac_root_key() -> bytes:
    """The root of every keyed hash (see chalicelib.digests for the keys derived from it)."""
    settings = get_settings()
    if settings.hmac_root_key:
        return settings.hmac_root_key.encode()
    if settings.hmac_root_key_parameter:
        return _from_ssm(settings.hmac_root_key_parameter).encode()
    if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        # One-time codes and send counters are keyed with it: a per-container key would make
        # a code sent by one Lambda container fail in the next. Refuse to run instead.
        raise ConfigurationError("set HMAC_ROOT_KEY_PARAMETER (or HMAC_ROOT_KEY) in AWS stages")
    # Local and test stages: a per-process key still keeps raw values out of the logs.
    return os.urandom(32)


def reset_secrets() -> None:
    login_gov_private_key.cache_clear()
    hmac_root_key.cache_clear()
