"""The Login.gov relying party: exactly what this service needs, by Login.gov's rules.

Not a general OpenID Connect library: one provider, authorization code flow with PKCE
(S256), private_key_jwt client authentication, RS256 ID tokens. It keeps to what a strict
provider enforces: a code_verifier and the redirect_uri in every token request, the
authorization response's `iss` checked (RFC 9207). Functions are named after the
protocol steps. Discovery and keys are cached per Lambda container; an unknown `kid`
triggers at most one refetch per cooldown so a flood of forged tokens cannot become a
flood of fetches, and a failed fetch keeps the last good keys.

PyJWT (with cryptography, ~45 ms to import) is imported inside the functions that need
it: a cold /login only builds a URL, and should not pay for token verification.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import secrets
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from chalicelib import clock, http_client
from chalicelib.config import ConfigurationError, get_settings
from chalicelib.errors import (
    AcrError,
    IdentityProviderUnavailable,
    IdTokenError,
    IssuerMismatch,
    NonceError,
    SignInError,
    TokenExchangeError,
    UserInfoError,
)
from chalicelib.secrets import login_gov_private_key

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

if TYPE_CHECKING:
    from jwt.types import Options  # PyJWT itself is imported when first needed (cold start)

SCOPES = "openid email all_emails"
# Login.gov rejects state and nonce shorter than 22 characters; 32 random bytes is 43,
# which is also RFC 7636's recommended code_verifier (43-128 unreserved characters).
RANDOM_TOKEN_BYTES = 32
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CLIENT_ASSERTION_LIFETIME = 300
ACCEPTED_ALGORITHMS = ("RS256",)


def random_token() -> str:
    return secrets.token_urlsafe(RANDOM_TOKEN_BYTES)


# --- Discovery -----------------------------------------------------------------------------


class DiscoveryError(IdentityProviderUnavailable):
    """Login.gov's discovery document is unreachable, malformed, or names another issuer."""

    event = "discovery_failed"


_REQUIRED_ENDPOINTS = (
    "authorization_endpoint",
    "token_endpoint",
    "userinfo_endpoint",
    "jwks_uri",
    "end_session_endpoint",
)
_discovery_lock = threading.Lock()
_discovery: dict | None = None
_discovery_fetched_at = 0.0


def discover() -> dict:
    """The discovery document, cached; its issuer must equal LOGIN_GOV_ISSUER exactly."""
    global _discovery, _discovery_fetched_at
    settings = get_settings()
    now = clock.monotonic()
    with _discovery_lock:
        if _discovery is not None and now - _discovery_fetched_at < settings.discovery_ttl:
            return _discovery
        url = settings.login_gov_issuer.rstrip("/") + "/.well-known/openid-configuration"
        try:
            resp = http_client.request("GET", url)
            document = resp.json() if resp.status == 200 else None
        except (http_client.HttpFailure, ValueError):
            document = None
        if not isinstance(document, dict):
            if _discovery is not None:
                return _discovery  # keep serving the last good document
            raise DiscoveryError("discovery document unavailable")
        # Issuer mix-up defence: the document must describe the issuer we were configured for.
        if document.get("issuer") != settings.login_gov_issuer:
            raise DiscoveryError("discovery issuer does not match LOGIN_GOV_ISSUER")
        if not all(isinstance(document.get(k), str) for k in _REQUIRED_ENDPOINTS):
            raise DiscoveryError("discovery document lacks an endpoint")
        _discovery, _discovery_fetched_at = document, now
        return document


def discover_in_background() -> threading.Thread | None:
    """Start fetching the discovery document unless it is cached; return the thread to join.

    A cold container's first sign-in then overlaps this round trip to Login.gov with its
    first DynamoDB request (creating the client is most of a cold start) instead of paying
    one after the other. A failure here is left for the caller's own discover() to raise.
    """
    with _discovery_lock:
        if (
            _discovery is not None
            and clock.monotonic() - _discovery_fetched_at < get_settings().discovery_ttl
        ):
            return None
    thread = threading.Thread(target=_discover_quietly, name="discovery", daemon=True)
    thread.start()
    return thread


def _discover_quietly() -> None:
    try:
        discover()
    except IdentityProviderUnavailable:
        pass


# --- Authorization request -----------------------------------------------------------------


def code_challenge(code_verifier: str) -> str:
    """RFC 7636 4.2, S256: BASE64URL(SHA256(ASCII(code_verifier))), unpadded."""
    digest = hashlib.sha256(code_verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def build_authorization_url(state: str, nonce: str, code_verifier: str) -> str:
    settings = get_settings()
    params = {
        "client_id": settings.login_gov_client_id,
        "response_type": "code",
        "redirect_uri": settings.redirect_uri,
        "scope": SCOPES,
        "acr_values": settings.login_gov_acr_values,
        "state": state,
        "nonce": nonce,
        "prompt": settings.login_gov_prompt,
        # PKCE even with private_key_jwt (RFC 9700 2.1.1): a code stolen on its way back
        # (logs, referrers, a malicious app on the device) is useless without the verifier.
        "code_challenge": code_challenge(code_verifier),
        "code_challenge_method": "S256",
    }
    return discover()["authorization_endpoint"] + "?" + urlencode(params)


def validate_authorization_response_issuer(iss: str | None) -> None:
    """RFC 9207: the authorization response's `iss`, when sent, must be the discovered issuer
    exactly; it must be sent when discovery says `authorization_response_iss_parameter_
    supported`. Applies to error responses too. Mix-up defence: a response another provider
    (or a forger) sent must not have its code redeemed, or its error believed, here."""
    document = discover()
    if iss is None:
        if document.get("authorization_response_iss_parameter_supported") is True:
            raise IssuerMismatch("authorization response lacks the iss Login.gov promises")
        return
    if iss != document["issuer"]:  # exact, including the trailing slash
        raise IssuerMismatch("authorization response names another issuer")


def build_logout_url(state: str) -> str:
    settings = get_settings()
    params = {
        "client_id": settings.login_gov_client_id,
        "post_logout_redirect_uri": settings.post_logout_redirect_uri,
        "state": state,
    }
    return discover()["end_session_endpoint"] + "?" + urlencode(params)


# --- Token exchange (private_key_jwt) -------------------------------------------------------


@dataclass(frozen=True)
class Tokens:
    id_token: str
    access_token: str


@functools.lru_cache(maxsize=1)
def _signing_key() -> RSAPrivateKey:
    # Parsing and validating an RSA key costs milliseconds; do it once per container.
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    key = load_pem_private_key(login_gov_private_key().encode(), password=None)
    if not isinstance(key, RSAPrivateKey):  # private_key_jwt is signed RS256
        raise ConfigurationError("the Login.gov private key is not an RSA key")
    return key


def build_client_assertion(token_endpoint: str) -> str:
    import jwt

    settings = get_settings()
    now = clock.epoch_seconds()
    claims = {
        "iss": settings.login_gov_client_id,
        "sub": settings.login_gov_client_id,
        "aud": token_endpoint,
        "jti": random_token(),
        "iat": now,
        "exp": now + CLIENT_ASSERTION_LIFETIME,
    }
    return jwt.encode(claims, _signing_key(), algorithm="RS256")


def exchange_code(code: str, *, code_verifier: str | None) -> Tokens:
    """Redeem the code: the private_key_jwt assertion, the PKCE verifier (None only for a
    sign-in started before PKCE) and the authorization request's redirect_uri (RFC 6749
    4.1.3, which providers enforce once a client registers several)."""
    token_endpoint = discover()["token_endpoint"]
    fields = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": get_settings().redirect_uri,
        "client_assertion_type": CLIENT_ASSERTION_TYPE,
        "client_assertion": build_client_assertion(token_endpoint),
    }
    if code_verifier is not None:
        fields["code_verifier"] = code_verifier
    try:
        resp = http_client.request("POST", token_endpoint, fields=fields)
    except http_client.HttpFailure as exc:
        raise IdentityProviderUnavailable(f"token endpoint: {exc}") from None
    if resp.status >= 500:
        raise IdentityProviderUnavailable(f"token endpoint answered {resp.status}")
    if resp.status != 200:
        # Login.gov answers 400 with human text for a used, expired or foreign code.
        raise TokenExchangeError(f"token endpoint answered {resp.status}", status=resp.status)
    try:
        body = resp.json()
        id_token, access_token = body["id_token"], body["access_token"]
    except (ValueError, KeyError, TypeError):
        raise TokenExchangeError("token response is not the expected JSON") from None
    if not isinstance(id_token, str) or not isinstance(access_token, str):
        raise TokenExchangeError("token response is not the expected JSON")
    return Tokens(id_token=id_token, access_token=access_token)


# --- Keys (JWKS) ----------------------------------------------------------------------------


class KeySet:
    """Login.gov's signing keys by kid, refreshed on TTL and, with a cooldown, on a miss."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # kid -> key; a published key without a kid is under None.
        self._keys: dict[str | None, object] = {}
        self._fetched_at = 0.0
        self._last_attempt = float("-inf")
        self._last_miss_refetch = float("-inf")
        self.fetch_count = 0

    def clear(self) -> None:
        with self._lock:
            self._keys, self._fetched_at = {}, 0.0
            self._last_attempt = self._last_miss_refetch = float("-inf")

    def _fetch(self) -> None:
        """Refresh from jwks_uri; on failure keep what we had."""
        import jwt

        self._last_attempt = clock.monotonic()
        self.fetch_count += 1
        try:
            resp = http_client.request("GET", discover()["jwks_uri"])
            if resp.status != 200:
                return
            document = resp.json()
        except (http_client.HttpFailure, ValueError):
            return
        keys: dict[str | None, object] = {}
        for jwk in document.get("keys", []) if isinstance(document, dict) else []:
            if (
                not isinstance(jwk, dict)
                or jwk.get("kty") != "RSA"
                or jwk.get("use", "sig") != "sig"
            ):
                continue
            try:
                keys[jwk.get("kid")] = jwt.algorithms.RSAAlgorithm.from_jwk(json.dumps(jwk))
            except (ValueError, KeyError, TypeError, jwt.exceptions.InvalidKeyError):
                continue
        if keys:
            self._keys, self._fetched_at = keys, clock.monotonic()

    def keys_for(self, kid: str | None, *, any_without_kid: bool = False) -> list:
        """The keys a token with this `kid` may be signed with: the one named. With no
        `kid`: the one published key, or, when `any_without_kid`, every published key (a
        handful: Login.gov's older security event tokens carried no kid, and a rotation
        publishes two), the signature deciding."""
        settings = get_settings()
        with self._lock:
            now = clock.monotonic()
            stale = now - self._fetched_at >= settings.jwks_ttl
            since_attempt = now - self._last_attempt
            # With no keys, retry at most once a second; when stale, once per cooldown.
            if (not self._keys and since_attempt >= 1) or (
                self._keys and stale and since_attempt >= settings.jwks_refetch_cooldown
            ):
                self._fetch()
            if not self._keys:
                raise IdentityProviderUnavailable("no signing keys available")
            if kid is None:
                # Login.gov's ID tokens always name their key: without one, only an
                # unambiguous key set will do for them.
                if len(self._keys) == 1 or any_without_kid:
                    return list(self._keys.values())
                raise IdTokenError("token has no kid and several keys are published")
            if (
                kid not in self._keys
                and now - self._last_miss_refetch >= settings.jwks_refetch_cooldown
            ):
                self._last_miss_refetch = now
                self._fetch()  # rotation: one refetch, then decide
            key = self._keys.get(kid)
            if key is None:
                raise IdTokenError("ID token signed with an unknown kid")
            return [key]

    def keys_after_a_miss(self) -> list:
        """Every published key after one refetch (at most one per cooldown, as for an
        unknown kid): a token without `kid` that none of the cached keys verifies may be
        signed by a key published since. Empty when the cooldown allows no refetch."""
        settings = get_settings()
        with self._lock:
            now = clock.monotonic()
            if now - self._last_miss_refetch < settings.jwks_refetch_cooldown:
                return []
            self._last_miss_refetch = now
            self._fetch()
            return list(self._keys.values())


key_set = KeySet()


# --- ID token --------------------------------------------------------------------------------


def _at_hash(access_token: str) -> str:
    digest = hashlib.sha256(access_token.encode()).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode()


class JwtRejected(IdTokenError):
    """A Login.gov JWT failed a check; context `reason` names which (malformed, algorithm,
    key, signature, issuer, audience, claims), so each caller can answer in its own terms."""


def verify_login_gov_jwt(
    token: str,
    *,
    require: list[str],
    verify_exp: bool = True,
    audiences: tuple[str, ...] | None = None,
    any_key_without_kid: bool = False,
) -> dict:
    """The one check of a JWT signed by Login.gov (ID tokens and security event tokens):
    RS256 only, a published key chosen by `kid`, `iss` equal to the discovered issuer
    (exactly, with its trailing slash), `aud` naming one of `audiences` (default: our
    client id; see _check_audience), times with leeway, and the `require`d claims present.
    `any_key_without_kid`: a token without `kid` may be signed by any published key
    (security event tokens; see KeySet.keys_for). Returns the claims."""
    import jwt

    settings = get_settings()
    accepted = audiences or (settings.login_gov_client_id,)
    try:
        header = jwt.get_unverified_header(token)
    except jwt.exceptions.InvalidTokenError:  # also a non-string kid or a crit header
        raise JwtRejected("not a usable JWT", reason="malformed") from None
    # Decide the algorithm ourselves: alg=none and HS256-with-the-public-key die here.
    if header.get("alg") not in ACCEPTED_ALGORITHMS:
        raise JwtRejected(f"algorithm {header.get('alg')!r} is not accepted", reason="algorithm")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise JwtRejected("kid is malformed", reason="malformed")
    try:
        keys = key_set.keys_for(kid, any_without_kid=any_key_without_kid)
    except JwtRejected:
        raise
    except IdTokenError as exc:
        raise JwtRejected(str(exc), reason="key") from None
    issuer = discover()["issuer"]
    options: Options = {
        "require": require,
        # Times by _check_times, against our clock (chalicelib.clock): PyJWT reads the
        # system clock itself. Then iss, in PyJWT's order (a token wrong in both is a
        # "claims" refusal, as before).
        "verify_exp": False,
        "verify_iat": False,
        "verify_nbf": False,
        # aud by _check_audience: PyJWT's strict mode refuses the arrays OIDC allows.
        "verify_aud": False,
    }
    claims = _decode_with_any(token, keys, options)
    if claims is None and kid is None and any_key_without_kid:
        # No key named, none cached verifies: one published since may (a rotation).
        claims = _decode_with_any(token, key_set.keys_after_a_miss(), options)
    if claims is None:
        raise JwtRejected("signature does not verify", reason="signature")
    _check_times(claims, settings.token_leeway, verify_exp=verify_exp)
    # Exact, including the trailing slash: a token from another issuer is refused.
    if not isinstance(claims.get("iss"), str) or claims["iss"] != issuer:
        raise JwtRejected("iss is not Login.gov", reason="issuer")
    _check_audience(claims.get("aud"), claims.get("azp"), accepted, settings.login_gov_client_id)
    return claims


def _decode_with_any(token: str, keys: list, options: Options) -> dict | None:
    """The claims, checked with the first key whose signature verifies; None when none
    does. Any other failure is the token's, whatever the key: raised at once."""
    import jwt

    for key in keys:
        try:
            return jwt.decode(token, key=key, algorithms=list(ACCEPTED_ALGORITHMS), options=options)
        except jwt.exceptions.InvalidSignatureError:
            continue
        except jwt.exceptions.PyJWTError as exc:
            raise JwtRejected(f"rejected: {exc}", reason="claims") from None
    return None


def _check_times(claims: dict, leeway: float, *, verify_exp: bool = True) -> None:
    """RFC 7519 4.1.4-4.1.6 with `leeway` seconds either way, by our clock, with PyJWT's
    rules (which checked them before): each present time an integer; `iat` and `nbf` not
    after now + leeway (a token from the future: a skewed or forging issuer); `exp` after
    now - leeway (a replayed old token)."""
    now = clock.now()
    for name in ("iat", "nbf", "exp"):
        if name not in claims or (name == "exp" and not verify_exp):
            continue
        try:
            value = int(claims[name])
        except (ValueError, TypeError, OverflowError):
            raise JwtRejected(f"rejected: {name} must be an integer", reason="claims") from None
        if name != "exp" and value > now + leeway:
            raise JwtRejected(f"rejected: the token is not yet valid ({name})", reason="claims")
        if name == "exp" and value <= now - leeway:
            raise JwtRejected("rejected: Signature has expired", reason="claims")


def _check_audience(aud: object, azp: object, accepted: tuple[str, ...], client_id: str) -> None:
    """OpenID Connect Core 3.1.3.7, items 3-5: `aud` is one audience or an array of them
    and must name one we accept; with several, `azp` must be present and be our client id;
    an `azp` present at all must be our client id. Token substitution defence: a token
    issued to another client, or to another party in our name, is refused."""
    audiences = [aud] if isinstance(aud, str) else aud
    if (
        not isinstance(audiences, list)
        or not audiences
        or not all(isinstance(a, str) for a in audiences)
    ):
        raise JwtRejected("aud is missing or malformed", reason="audience")
    if not any(a in accepted for a in audiences):
        raise JwtRejected("aud does not name us", reason="audience")
    if len(audiences) > 1 and azp is None:
        raise JwtRejected("several audiences and no azp", reason="audience")
    if azp is not None and azp != client_id:
        raise JwtRejected("azp is another party", reason="audience")


def security_event_audiences() -> tuple[str, ...]:
    """Who a security event token may be addressed to: Login.gov sets `aud` to the push URL
    registered for us (identity-idp push_notification/http_push.rb; developers.login.gov/
    security-events); our client id is accepted too."""
    settings = get_settings()
    return (settings.security_events_url, settings.login_gov_client_id)


def validate_id_token(id_token: str, *, nonce: str, access_token: str) -> dict:
    """Verify signature, issuer, audience, times, nonce, acr and at_hash; return the claims."""
    claims = verify_login_gov_jwt(id_token, require=["iss", "aud", "sub", "exp", "iat", "nonce"])
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub.strip():
        raise IdTokenError("ID token has no subject")
    token_nonce = claims.get("nonce")
    if not isinstance(token_nonce, str) or not hmac.compare_digest(
        token_nonce.encode(), nonce.encode()
    ):
        raise NonceError("ID token nonce does not match this sign-in")
    _check_acr(claims.get("acr"))
    if "at_hash" in claims and not hmac.compare_digest(
        str(claims["at_hash"]).encode(), _at_hash(access_token).encode()
    ):
        raise IdTokenError("ID token at_hash does not match the access token")
    return claims


def _check_acr(acr: object) -> None:
    """OpenID Connect Core 3.1.3.7 (12): the `acr` must be one this sign-in asked for.
    Login.gov echoes the requested value (`urn:acr.login.gov:auth-only`, or the legacy
    `http://idmanagement.gov/ns/assurance/ial/1` to a legacy request): exactly those count."""
    requested = get_settings().login_gov_acr_values.split()
    if not isinstance(acr, str) or acr not in requested:
        raise AcrError("ID token acr is not one that was requested")


# --- Userinfo ----------------------------------------------------------------------------------


def get_userinfo(access_token: str, *, expected_sub: str) -> dict:
    endpoint = discover()["userinfo_endpoint"]
    try:
        resp = http_client.request(
            "GET", endpoint, headers={"Authorization": f"Bearer {access_token}"}
        )
    except http_client.HttpFailure as exc:
        raise IdentityProviderUnavailable(f"userinfo: {exc}") from None
    if resp.status >= 500:
        raise IdentityProviderUnavailable(f"userinfo answered {resp.status}")
    if resp.status != 200:
        raise UserInfoError(f"userinfo answered {resp.status}")
    try:
        info = resp.json()
    except ValueError:
        raise UserInfoError("userinfo is not JSON") from None
    if not isinstance(info, dict):
        raise UserInfoError("userinfo is not an object")
    # Token substitution defence: userinfo must describe the person the ID token names.
    if info.get("sub") != expected_sub:
        raise UserInfoError("userinfo subject differs from the ID token subject")
    return info


def verified_emails(userinfo: dict) -> list[str]:
    """The addresses Login.gov has confirmed: the shared `email` first (when email_verified),
    then all_emails — without the shared `email` when Login.gov says it is not verified."""
    from chalicelib.emails import try_normalize_email

    found: list[str] = []
    shared = shared_email(userinfo)
    if shared:
        found.append(shared)
    # Refuse an unverified email even where all_emails lists it too: linking on it would
    # let anyone pre-register a victim's address (pre-registration takeover).
    email = userinfo.get("email")
    unverified = try_normalize_email(email) if isinstance(email, str) and not shared else None
    all_emails = userinfo.get("all_emails")
    if isinstance(all_emails, list):
        found.extend(
            e
            for e in all_emails
            if isinstance(e, str) and (unverified is None or try_normalize_email(e) != unverified)
        )
    return list(dict.fromkeys(found))


def shared_email(userinfo: dict) -> str | None:
    """The address the person chose to share with us (`email`), when Login.gov verified it:
    shown to them, never used as a key."""
    email = userinfo.get("email")
    return email if isinstance(email, str) and userinfo.get("email_verified") is True else None


def reset_caches() -> None:
    global _discovery, _discovery_fetched_at
    with _discovery_lock:
        _discovery, _discovery_fetched_at = None, 0.0
    key_set.clear()
    _signing_key.cache_clear()


__all__ = [
    "DiscoveryError",
    "SignInError",
    "Tokens",
    "build_authorization_url",
    "build_logout_url",
    "JwtRejected",
    "code_challenge",
    "discover",
    "exchange_code",
    "get_userinfo",
    "key_set",
    "random_token",
    "reset_caches",
    "security_event_audiences",
    "validate_authorization_response_issuer",
    "validate_id_token",
    "verified_emails",
    "verify_login_gov_jwt",
]
