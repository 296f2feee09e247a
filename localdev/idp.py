"""A local, Login.gov-compatible OpenID Connect provider for development and tests.

Never deployed. It is as strict as Login.gov where a relying party can get things wrong,
and as a standard-conforming provider configured like Login.gov: registered client and
exact redirect URI, state and nonce of at least 22 characters, prompt=select_account (or
login), known acr_values, PKCE with S256 required (RFC 7636: the code_verifier is checked
at the token endpoint), the token request's redirect_uri equal to the authorization
request's (RFC 6749 4.1.3), `iss` in every authorization response, success or error
(RFC 9207, advertised in discovery), single-use codes that expire in 5 minutes,
private_key_jwt client assertions verified against the client's public key (single-use
jti, aud = token URL, exp at most 5 minutes out), userinfo by Bearer header only, and a
trailing-slash issuer. Security event tokens are addressed (`aud`) to the client's push
URL, as Login.gov addresses them. Security event tokens a relying party submits (Login.gov's
incoming events, `POST /api/risc/security_events`, found by RISC discovery) are verified as
Login.gov verifies them and kept in `received_security_events`. A tester types one or more
email addresses; the same set always gives the same `sub`.

`faults` switches on misbehaviour for tests (see FAULTS); `rotate_keys()` rotates the
signing key (the old one stays published as secondary until `drop_old_keys()`). Its time is
the app's (chalicelib.clock): a test that moves the clock moves both sides of a sign-in
(codes expiring, token iat and exp).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import logging
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask, Response, jsonify, request
from werkzeug.serving import make_server

from chalicelib import clock

CODE_LIFETIME = 300
ACCESS_TOKEN_LIFETIME = 900
ASSERTION_MAX_LIFETIME = 300
MIN_STATE_NONCE_LENGTH = 22
# RFC 7636: a verifier is 43-128 unreserved characters; an S256 challenge is 43 base64url.
CODE_VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")
S256_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")
KNOWN_ACR_VALUES = {
    "urn:acr.login.gov:auth-only",
    "urn:acr.login.gov:verified",
    "urn:acr.login.gov:verified-facial-match-required",
    "urn:acr.login.gov:verified-facial-match-preferred",
    "http://idmanagement.gov/ns/assurance/ial/1",
    "http://idmanagement.gov/ns/assurance/ial/2",
    "http://idmanagement.gov/ns/assurance/aal/2",
    "http://idmanagement.gov/ns/assurance/aal/2?phishing_resistant=true",
    "http://idmanagement.gov/ns/assurance/aal/2?hspd12=true",
    "http://idmanagement.gov/ns/assurance/aal/3",
}
AAL_PREFIX = "http://idmanagement.gov/ns/assurance/aal/"
# The AAL a person with only a phone or app code meets: MFA, not phishing-resistant.
WEAK_AAL = AAL_PREFIX + "2"
KNOWN_SCOPES = {
    "openid",
    "email",
    "all_emails",
    "profile",
    "profile:name",
    "phone",
    "address",
    "social_security_number",
    "profile:verified_at",
    "x509",
}
SUB_NAMESPACE = uuid.UUID("6f1b3a3e-6a57-4c5b-8f9e-4f2c1b0f9e11")

# Misbehaviour a test can switch on: name -> what the provider does instead.
FAULTS = {
    "token_status": "answer the token request with this HTTP status (400, 500, ...)",
    "token_delay": "sleep this many seconds before answering the token request",
    "userinfo_status": "answer userinfo with this HTTP status",
    "userinfo_delay": "sleep this many seconds before answering userinfo",
    "userinfo_sub": "put this sub in userinfo instead of the real one",
    "userinfo_email_verified": "send this as email_verified (the shared email stays in all_emails)",
    "jwks_status": "answer the JWKS request with this HTTP status",
    "id_token_claims": "dict merged into the ID token claims (None values delete a claim)",
    "id_token_alg": "'none' or 'HS256-public' to sign the ID token badly",
    "id_token_bad_signature": "sign the ID token with a key that is not published",
    "id_token_kid": "header kid to use (None to omit it)",
    "discovery_issuer": "issuer to advertise in discovery",
    "discovery_fields": "dict merged into discovery (None values delete a field)",
    "authorization_response_iss": "iss to send in authorization responses (None: leave it out)",
    "id_token_extra_audiences": "audiences after the client id, as an array ([]: [client id])",
    "weak_authenticator": "the person has no phishing-resistant authenticator: an AAL asked "
    "for is answered with the weaker one they used (a provider that does not enforce it)",
    "auth_time_offset": "seconds added to auth_time (negative: an old sign-in reused, as by a "
    "provider that ignores max_age)",
    "security_events_status": "answer a submitted security event token with this HTTP status",
    "risc_configuration_fields": "dict merged into RISC discovery (None values delete a field)",
}
# Login.gov's incoming events (developers.login.gov/security-events, "Supported incoming
# events"; identity-idp SecurityEvent::EVENT_TYPES).
INCOMING_EVENT_TYPES = frozenset(
    {
        "https://schemas.login.gov/secevent/risc/event-type/authorization-fraud-detected",
        "https://schemas.login.gov/secevent/risc/event-type/identity-fraud-detected",
    }
)
RISC_PUSH = "https://schemas.openid.net/secevent/risc/delivery-method/push"
SECURITY_EVENTS_PATH = "/api/risc/security_events"
log = logging.getLogger("localdev.idp")


def generate_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def normalize_for_sub(email: str) -> str:
    return email.strip().lower()


def sub_for_emails(emails: list[str]) -> str:
    """Same set of emails, same sub (order and case do not matter)."""
    key = ",".join(sorted({normalize_for_sub(e) for e in emails if e.strip()}))
    return str(uuid.uuid5(SUB_NAMESPACE, key))


@dataclass
class Client:
    client_id: str
    public_key_pem: str
    redirect_uris: list[str]
    post_logout_redirect_uris: list[str]
    push_notification_url: str | None = None


@dataclass
class SigningKey:
    kid: str
    key: rsa.RSAPrivateKey


@dataclass
class IssuedCode:
    client_id: str
    redirect_uri: str
    nonce: str
    code_challenge: str
    acr: str
    emails: list[str]
    sub: str
    expires_at: float
    auth_time: int | None = None  # set when max_age was asked (OIDC Core 2: auth_time)
    used: bool = False


@dataclass
class LocalLoginGov:
    issuer: str  # with trailing slash, like Login.gov
    clients: dict[str, Client] = field(default_factory=dict)
    faults: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        assert self.issuer.endswith("/"), "Login.gov issuers end with a slash"
        self._lock = threading.Lock()
        self.keys: list[SigningKey] = [SigningKey(secrets.token_hex(8), generate_rsa_key())]
        self.codes: dict[str, IssuedCode] = {}
        self.access_tokens: dict[str, tuple[str, list[str], float]] = {}
        self.seen_jtis: set[str] = set()
        self.request_log: list[str] = []
        # What relying parties told us (accepted SETs), oldest first: tests read it.
        self.received_security_events: list[dict] = []
        self.seen_event_jtis: set[tuple[str, str]] = set()
        self.app = self._build_app()

    # --- test controls -----------------------------------------------------------------------

    def register_client(
        self,
        client_id: str,
        public_key_pem: str,
        redirect_uri: str,
        post_logout_redirect_uri: str,
        push_notification_url: str | None = None,
    ) -> None:
        """Register a relying party. Its push URL (the `aud` of its security event tokens)
        defaults to this app's: the redirect URI's origin + /api/security-events."""
        if push_notification_url is None:
            origin = urlsplit(redirect_uri)
            push_notification_url = f"{origin.scheme}://{origin.netloc}/api/security-events"
        self.clients[client_id] = Client(
            client_id,
            public_key_pem,
            [redirect_uri],
            [post_logout_redirect_uri],
            push_notification_url,
        )

    def rotate_keys(self) -> str:
        """New primary signing key; the old one stays in the JWKS as secondary."""
        with self._lock:
            self.keys.insert(0, SigningKey(secrets.token_hex(8), generate_rsa_key()))
            del self.keys[2:]
            return self.keys[0].kid

    def drop_old_keys(self) -> None:
        with self._lock:
            del self.keys[1:]

    def count(self, path: str) -> int:
        return sum(1 for p in self.request_log if p == path)

    @property
    def base(self) -> str:
        return self.issuer.rstrip("/")

    def url(self, path: str) -> str:
        return self.base + path

    # --- tokens --------------------------------------------------------------------------------

    def make_id_token(self, issued: IssuedCode, access_token: str, client_id: str) -> str:
        now = clock.epoch_seconds()
        digest = hashlib.sha256(access_token.encode()).digest()
        extra_audiences = self.faults.get("id_token_extra_audiences")
        claims = {
            "iss": self.issuer,
            "sub": issued.sub,
            "aud": client_id if extra_audiences is None else [client_id, *extra_audiences],
            "acr": issued.acr,
            "nonce": issued.nonce,
            **({"auth_time": issued.auth_time} if issued.auth_time is not None else {}),
            "jti": secrets.token_urlsafe(16),
            "at_hash": base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode(),
            "iat": now,
            "nbf": now,
            "exp": now + ACCESS_TOKEN_LIFETIME,
        }
        for name, value in (self.faults.get("id_token_claims") or {}).items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        return self.sign(claims)

    def sign(self, claims: dict, *, typ: str | None = None) -> str:
        signing = self.keys[0]
        headers = {"kid": signing.kid}
        if typ:
            headers["typ"] = typ
        if "id_token_kid" in self.faults:
            kid = self.faults["id_token_kid"]
            headers = {} if kid is None else {"kid": kid}
        alg_fault = self.faults.get("id_token_alg")
        if alg_fault == "none":
            return jwt.encode(claims, None, algorithm="none", headers=headers)
        if alg_fault == "HS256-public":
            # The classic confusion attack: HMAC keyed with the published public key.
            secret = public_pem(signing.key).encode()
            return _hs256_with_any_key(claims, secret, headers)
        key = generate_rsa_key() if self.faults.get("id_token_bad_signature") else signing.key
        return jwt.encode(claims, key, algorithm="RS256", headers=headers)

    def jwks(self) -> dict:
        keys = []
        for k in self.keys:
            jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(k.key.public_key()))
            jwk.update({"kid": k.kid, "use": "sig", "alg": "RS256"})
            keys.append(jwk)
        return {"keys": keys}

    def _verify_client_assertion(self, assertion: str, token_url: str) -> str:
        try:
            unverified = jwt.decode(assertion, options={"verify_signature": False})
            client = self.clients[unverified["iss"]]
            claims = jwt.decode(
                assertion,
                client.public_key_pem,
                algorithms=["RS256"],
                audience=token_url,
                options={
                    "require": ["iss", "sub", "aud", "jti", "exp"],
                    # By the shared clock (chalicelib.clock), below: PyJWT reads the
                    # system clock, which a test's moved clock does not move.
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
            _check_assertion_times(claims, clock.now())
        except (jwt.PyJWTError, KeyError, TypeError) as exc:
            raise ValueError(f"client_assertion is invalid: {exc}") from None
        if claims["iss"] != claims["sub"]:
            raise ValueError("client_assertion iss and sub must both be the client_id")
        if claims["exp"] > clock.now() + ASSERTION_MAX_LIFETIME + 5:
            raise ValueError("client_assertion expires too far in the future")
        with self._lock:
            if claims["jti"] in self.seen_jtis:
                raise ValueError("client_assertion jti has already been used")
            self.seen_jtis.add(claims["jti"])
        return client.client_id

    # --- security events (RISC) ------------------------------------------------------------

    RISC_PREFIX = "https://schemas.openid.net/secevent/risc/event-type/"
    # Login.gov's own events carry its own prefix (identity-idp push_notification/*.rb).
    LOGIN_GOV_RISC_PREFIX = "https://schemas.login.gov/secevent/risc/event-type/"
    LOGIN_GOV_EVENTS = frozenset(
        {"password-reset", "reproof-completed", "mfa-limit-account-locked"}
    )

    def security_event_token(
        self,
        client_id: str,
        event: str,
        sub: str,
        *,
        jti: str | None = None,
        key: rsa.RSAPrivateKey | None = None,
        omit: tuple[str, ...] = (),
        with_kid: bool = True,
        **overrides,
    ) -> str:
        """A Security Event Token as Login.gov pushes it (RFC 8417), signed with our key.

        `aud` is the client's push URL, as Login.gov sends it (identity-idp
        push_notification/http_push.rb); for a client not registered here, the client id.
        Pass `aud=...` to address it otherwise (the client id is accepted too). The event's
        type carries Login.gov's own prefix for its own events (LOGIN_GOV_EVENTS).
        `with_kid=False` leaves `kid` out of the header, as Login.gov's older tokens did."""
        client = self.clients.get(client_id)
        claims = {
            "iss": self.issuer,
            "aud": client.push_notification_url
            if client and client.push_notification_url
            else client_id,
            "iat": clock.epoch_seconds(),
            "jti": jti or secrets.token_hex(16),
            "events": {
                self.risc_event_type(event): {
                    "subject": {"subject_type": "iss-sub", "iss": self.issuer, "sub": sub}
                }
            },
        }
        claims.update(overrides)
        for name in omit:
            claims.pop(name, None)
        signing = self.keys[0]
        headers = (
            {"kid": signing.kid, "typ": "secevent+jwt"} if with_kid else {"typ": "secevent+jwt"}
        )
        return jwt.encode(claims, key or signing.key, algorithm="RS256", headers=headers)

    def risc_event_type(self, event: str) -> str:
        prefix = self.LOGIN_GOV_RISC_PREFIX if event in self.LOGIN_GOV_EVENTS else self.RISC_PREFIX
        return prefix + event

    def receive_security_event(self, body: bytes, content_type: str) -> tuple[int, dict | None]:
        """A SET a relying party submits, checked as Login.gov's SecurityEventForm checks it:
        (202, None) when accepted (and kept in `received_security_events`), else (400,
        {"err", "description"}) with the Security Event HTTP Push error code.

        RS256 with `typ` secevent+jwt, signed with the key of the client named in `iss`,
        `aud` = this endpoint's URL, a `jti` not used before by that client, no `exp`, no
        top-level `sub`, one known event type whose subject is `iss-sub` with this issuer
        and a `sub` this provider issued."""

        def refused(err: str, description: str) -> tuple[int, dict]:
            log.info("security event refused: %s (%s)", err, description)
            return 400, {"err": err, "description": description}

        status = self.faults.get("security_events_status")
        if status:
            return int(status), {"err": "injected", "description": f"injected {status}"}
        if content_type.split(";")[0].strip() != "application/secevent+jwt":
            return refused("setData", "Content-Type must be application/secevent+jwt")
        token = body.decode("utf-8", errors="replace").strip()
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            return refused("jwtParse", "JWT could not be parsed")
        if header.get("typ") != "secevent+jwt":
            return refused("jwtHdr", "typ header must be secevent+jwt")
        if header.get("alg") != "RS256":
            return refused("jwtCrypto", "JWT must be signed with RS256")
        client = self.clients.get(str(unverified.get("iss")))
        if client is None:
            return refused("setData", "Iss invalid issuer")
        try:
            claims = jwt.decode(
                token,
                client.public_key_pem,
                algorithms=["RS256"],
                options={"verify_aud": False, "verify_exp": False, "verify_iat": False},
            )
        except jwt.PyJWTError as exc:
            return refused("jws", f"Jwt {exc}")
        endpoint = self.url(SECURITY_EVENTS_PATH)
        if claims.get("aud") != endpoint:
            return refused("jwtAud", f"Aud is not {endpoint}")
        if "exp" in claims:
            return refused("setData", "Exp claim is not supported")
        if "sub" in claims:
            return refused("setData", "Sub claim is not supported at the top level")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            return refused("setData", "Jti is required")
        events = claims.get("events")
        if not isinstance(events, dict) or len(events) != 1:
            return refused("setData", "Events must hold exactly one event")
        ((event_type, event),) = events.items()
        if event_type not in INCOMING_EVENT_TYPES:
            return refused("setType", f"Event type {event_type} is not supported")
        subject = event.get("subject") if isinstance(event, dict) else None
        if not isinstance(subject, dict) or subject.get("subject_type") != "iss-sub":
            return refused("setData", "Subject type must be iss-sub")
        if subject.get("iss") != self.issuer:
            return refused("setData", f"Subject iss must be {self.issuer}")
        sub = subject.get("sub")
        with self._lock:
            issued = {code.sub for code in self.codes.values()}
            if sub not in issued:
                return refused("setData", "Sub user not found")
            if (client.client_id, jti) in self.seen_event_jtis:
                return refused("dup", "Jti has already been used")
            self.seen_event_jtis.add((client.client_id, jti))
            received = {
                "client_id": client.client_id,
                "event_type": event_type,
                "sub": sub,
                "jti": jti,
                "iat": claims.get("iat"),
                "occurred_at": event.get("occurred_at"),
                "token": token,  # as received, for a test to check on its own
            }
            self.received_security_events.append(received)
        log.info("security event accepted: %s from %s", event_type, client.client_id)
        return 202, None

    def push_security_event(self, endpoint: str, token: str):
        """POST a SET to a relying party's endpoint, as Login.gov's RISC push does."""
        import requests

        return requests.post(
            endpoint,
            data=token,
            timeout=10,
            headers={"Content-Type": "application/secevent+jwt", "Accept": "application/json"},
        )

    # --- HTTP ---------------------------------------------------------------------------------

    def _build_app(self) -> Flask:
        app = Flask("local_login_gov")
        idp = self

        @app.before_request
        def _log():
            idp.request_log.append(request.path)

        @app.get("/.well-known/openid-configuration")
        def discovery():
            document = {
                "issuer": idp.faults.get("discovery_issuer", idp.issuer),
                "authorization_endpoint": idp.url("/openid_connect/authorize"),
                "token_endpoint": idp.url("/api/openid_connect/token"),
                "userinfo_endpoint": idp.url("/api/openid_connect/userinfo"),
                "end_session_endpoint": idp.url("/openid_connect/logout"),
                "jwks_uri": idp.url("/api/openid_connect/certs"),
                "response_types_supported": ["code"],
                "grant_types_supported": ["authorization_code"],
                "acr_values_supported": sorted(KNOWN_ACR_VALUES),
                "subject_types_supported": ["pairwise"],
                "scopes_supported": sorted(KNOWN_SCOPES),
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": ["private_key_jwt"],
                "token_endpoint_auth_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
                "authorization_response_iss_parameter_supported": True,
                "claims_supported": ["iss", "sub", "email", "email_verified", "all_emails"],
            }
            for name, value in (idp.faults.get("discovery_fields") or {}).items():
                if value is None:
                    document.pop(name, None)
                else:
                    document[name] = value
            return jsonify(document)

        @app.get("/.well-known/risc-configuration")
        def risc_configuration():
            # identity-idp RiscConfigurationPresenter: where relying parties push their SETs.
            document = {
                "issuer": idp.issuer,
                "jwks_uri": idp.url("/api/openid_connect/certs"),
                "delivery_methods_supported": [RISC_PUSH],
                "delivery": [{"delivery_method": RISC_PUSH, "url": idp.url(SECURITY_EVENTS_PATH)}],
            }
            for name, value in (idp.faults.get("risc_configuration_fields") or {}).items():
                if value is None:
                    document.pop(name, None)
                else:
                    document[name] = value
            return jsonify(document)

        @app.post(SECURITY_EVENTS_PATH)
        def security_events():
            status, answer = idp.receive_security_event(
                request.get_data(), request.headers.get("Content-Type", "")
            )
            if answer is None:
                return Response("", status=status)
            return jsonify(answer), status

        @app.get("/test/security-events")
        def received_security_events():
            # Test tooling (no Login.gov has it): what relying parties reported, no tokens.
            with idp._lock:
                shown = [
                    {k: v for k, v in e.items() if k != "token"}
                    for e in idp.received_security_events
                ]
            return jsonify(shown)

        @app.get("/api/openid_connect/certs")
        def certs():
            status = idp.faults.get("jwks_status")
            if status:
                return Response("unavailable", status=status)
            return jsonify(idp.jwks())

        @app.get("/openid_connect/authorize")
        def authorize():
            args = request.args
            client = idp.clients.get(args.get("client_id", ""))
            redirect_uri = args.get("redirect_uri", "")
            # Never redirect to an unregistered URI: show an error page instead.
            if client is None:
                return _error_page("Unknown client_id"), 400
            if redirect_uri not in client.redirect_uris:
                return _error_page("redirect_uri does not match a registered URI"), 400
            problem = _authorization_problem(args)
            if problem:
                return idp.authorization_response(
                    redirect_uri,
                    error="invalid_request",
                    error_description=problem,
                    state=args.get("state", ""),
                )
            return _login_form(args)

        @app.post("/openid_connect/authorize")
        def authorize_submit():
            form = request.form
            client = idp.clients.get(form.get("client_id", ""))
            redirect_uri = form.get("redirect_uri", "")
            if client is None or redirect_uri not in client.redirect_uris:
                return _error_page("Unknown client or redirect_uri"), 400
            problem = _authorization_problem(form)
            if problem:
                return _error_page(problem), 400
            if form.get("action") == "cancel":
                return idp.authorization_response(
                    redirect_uri, error="access_denied", state=form["state"]
                )
            emails = [
                e.strip()
                for e in form.get("emails", "").replace(",", "\n").splitlines()
                if e.strip()
            ]
            if not emails:
                return _login_form(form, message="Enter at least one email address."), 400
            code = secrets.token_urlsafe(32)
            # No session here: every sign-in authenticates, so auth_time is now (by the one
            # clock, which tests move: a relying party compares it with its own now).
            from chalicelib import clock

            auth_time = (
                clock.epoch_seconds() + int(idp.faults.get("auth_time_offset", 0))
                if form.get("max_age")
                else None
            )
            with idp._lock:
                idp.codes[code] = IssuedCode(
                    client_id=client.client_id,
                    redirect_uri=redirect_uri,
                    nonce=form["nonce"],
                    code_challenge=form["code_challenge"],
                    acr=idp.answered_acr(form["acr_values"]),
                    emails=emails,
                    sub=form.get("sub") or sub_for_emails(emails),
                    expires_at=clock.now() + CODE_LIFETIME,
                    auth_time=auth_time,
                )
            return idp.authorization_response(redirect_uri, code=code, state=form["state"])

        @app.post("/api/openid_connect/token")
        def token():
            delay = idp.faults.get("token_delay")
            if delay:
                # A slow network, in real time: the app's socket timeout is real, and a
                # moved clock cannot make a socket time out.
                time.sleep(delay)
            status = idp.faults.get("token_status")
            if status:
                return jsonify({"error": f"Injected failure {status}"}), status
            form = request.form
            if form.get("grant_type") != "authorization_code":
                return _token_error("Grant type is not recognized")
            if (
                form.get("client_assertion_type")
                != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
            ):
                return _token_error("Client assertion type is not recognized")
            try:
                client_id = idp._verify_client_assertion(
                    form.get("client_assertion", ""), idp.url("/api/openid_connect/token")
                )
            except ValueError as exc:
                return _token_error(str(exc))
            with idp._lock:
                issued = idp.codes.get(form.get("code", ""))
                if issued is None or issued.used or issued.expires_at < clock.now():
                    return _token_error("Code is invalid, expired or already used")
                if issued.client_id != client_id:
                    return _token_error("Code was issued to another client")
                issued.used = True  # single use, even if the rest fails
                # RFC 6749 4.1.3: the redirect_uri of the authorization request, exactly.
                if form.get("redirect_uri") != issued.redirect_uri:
                    return _token_error("redirect_uri does not match the authorization request")
                problem = _pkce_problem(form.get("code_verifier", ""), issued.code_challenge)
                if problem:
                    return _token_error(problem)
                access_token = secrets.token_urlsafe(32)
                idp.access_tokens[access_token] = (
                    issued.sub,
                    issued.emails,
                    clock.now() + ACCESS_TOKEN_LIFETIME,
                )
            return jsonify(
                {
                    "access_token": access_token,
                    "token_type": "Bearer",
                    "expires_in": ACCESS_TOKEN_LIFETIME,
                    "id_token": idp.make_id_token(issued, access_token, client_id),
                }
            )

        @app.get("/api/openid_connect/userinfo")
        def userinfo():
            delay = idp.faults.get("userinfo_delay")
            if delay:
                time.sleep(delay)  # a slow network, in real time (as token_delay)
            status = idp.faults.get("userinfo_status")
            if status:
                return jsonify({"error": "Injected failure"}), status
            header = request.headers.get("Authorization", "")
            if not header.startswith("Bearer "):
                return jsonify({"error": "Access token is missing"}), 401
            entry = idp.access_tokens.get(header[len("Bearer ") :])
            if entry is None or entry[2] < clock.now():
                return jsonify({"error": "Access token is invalid or expired"}), 401
            sub, emails, _ = entry
            return jsonify(
                {
                    "sub": idp.faults.get("userinfo_sub", sub),
                    "iss": idp.issuer,
                    "email": emails[0],
                    "email_verified": idp.faults.get("userinfo_email_verified", True),
                    "all_emails": emails,
                    "verified_at": None,
                }
            )

        @app.get("/openid_connect/logout")
        def logout():
            client = idp.clients.get(request.args.get("client_id", ""))
            target = request.args.get("post_logout_redirect_uri", "")
            if client is None or target not in client.post_logout_redirect_uris:
                return _error_page("Unknown client or post_logout_redirect_uri"), 400
            state = request.args.get("state", "")
            if "logout_state" in idp.faults:
                state = idp.faults["logout_state"]
            return _redirect(target, state=state) if state else _redirect(target)

        return app

    def answered_acr(self, requested: str) -> str:
        """The `acr` of the ID token. Login.gov echoes only the IAL value and enforces an
        AAL without asserting it (identity-idp issue #7922); this stand-in asserts the AAL
        it met instead, so a relying party's check of it can be tested both ways: the one
        asked for, or, for a person with only a weak authenticator (`weak_authenticator`),
        the weaker one they used. Without an AAL asked for: the (first) value asked for."""
        values = requested.split()
        aal = [v for v in values if v.startswith(AAL_PREFIX)]
        if not aal:
            return values[0] if values else requested
        return WEAK_AAL if self.faults.get("weak_authenticator") else aal[0]

    def authorization_response(self, redirect_uri: str, **params) -> Response:
        """Back to the client, with our `iss` (RFC 9207) on success and error alike."""
        iss = self.faults.get("authorization_response_iss", self.issuer)
        if iss is not None:
            params["iss"] = iss
        return _redirect(redirect_uri, **params)

    # --- serving --------------------------------------------------------------------------------

    def serve_in_thread(self, host: str = "127.0.0.1", port: int = 0):
        server = make_server(host, port, self.app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        return server


def _check_assertion_times(claims: dict, now: float) -> None:
    """PyJWT's time rules (no leeway), by the given time: iat and nbf not in the future,
    exp in the future, each an integer."""
    for name in ("iat", "nbf", "exp"):
        if name not in claims:
            continue
        try:
            value = int(claims[name])
        except (ValueError, TypeError, OverflowError):
            raise jwt.DecodeError(f"{name} must be an integer") from None
        if name == "exp" and value <= now:
            raise jwt.ExpiredSignatureError("Signature has expired")
        if name != "exp" and value > now:
            raise jwt.ImmatureSignatureError(f"The token is not yet valid ({name})")


def _hs256_with_any_key(claims: dict, secret: bytes, headers: dict) -> str:
    """PyJWT refuses PEM keys for HMAC, as it should; build the forgery by hand."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", **headers}).encode())
    payload = b64(json.dumps(claims).encode())
    signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(signature)}"


def _authorization_problem(args) -> str | None:
    """Login.gov's parameter rules for the authorization request."""
    if args.get("response_type") != "code":
        return "response_type must be code"
    scopes = set(args.get("scope", "").split())
    if "openid" not in scopes or not scopes <= KNOWN_SCOPES:
        return "scope must include openid and only known scopes"
    acr = args.get("acr_values", "").split()
    if not acr or not set(acr) <= KNOWN_ACR_VALUES:
        return "acr_values are missing or unknown"
    if len(args.get("state", "")) < MIN_STATE_NONCE_LENGTH:
        return "state must be at least 22 characters"
    if len(args.get("nonce", "")) < MIN_STATE_NONCE_LENGTH:
        return "nonce must be at least 22 characters"
    if args.get("prompt") not in ("select_account", "login"):
        return "prompt must be select_account"
    # OIDC Core 3.1.2.1: seconds since the last authentication, a non-negative integer.
    max_age = args.get("max_age")
    if max_age is not None and max_age != "" and not (max_age.isascii() and max_age.isdigit()):
        return "max_age must be a non-negative integer"
    # PKCE, S256 only: `plain` would put the verifier itself in the browser's URL.
    if args.get("code_challenge_method") != "S256" or not S256_CHALLENGE.fullmatch(
        args.get("code_challenge", "")
    ):
        return "code_challenge with code_challenge_method=S256 is required"
    return None


def _pkce_problem(verifier: str, challenge: str) -> str | None:
    """RFC 7636 4.6: BASE64URL(SHA256(code_verifier)) must equal the stored challenge."""
    if not CODE_VERIFIER.fullmatch(verifier):
        return "code_verifier is missing or malformed"
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    computed = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    if not hmac.compare_digest(computed, challenge):
        return "code_verifier does not match the code_challenge"
    return None


def _redirect(uri: str, **params) -> Response:
    separator = "&" if "?" in uri else "?"
    return Response("", status=302, headers={"Location": uri + separator + urlencode(params)})


def _token_error(message: str):
    # Login.gov answers 400 with human text in "error", not RFC 6749 codes.
    return jsonify({"error": message}), 400


def _page(title: str, body: str) -> str:
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)} | Local Login.gov</title>"
        "<style>body{font-family:Arial,sans-serif;max-width:40rem;margin:2rem auto;"
        "padding:0 1rem;color:#1b1b1b}label{display:block;font-weight:700;margin:1rem 0 .25rem}"
        "textarea{width:100%;font-size:1rem}button{font-size:1rem;padding:.6rem 1rem;"
        "margin:1rem .5rem 0 0}.primary{background:#005ea2;color:#fff;border:0}"
        ".note{background:#faf3d1;padding:.5rem 1rem}</style></head><body>"
        f"<main>{body}</main></body></html>"
    )


def _error_page(message: str) -> Response:
    return Response(
        _page("Error", f"<h1>Request refused</h1><p>{html.escape(message)}</p>"),
        status=400,
        mimetype="text/html",
    )


def _login_form(params, message: str = "") -> str:
    hidden = "".join(
        f'<input type="hidden" name="{name}" value="{html.escape(params.get(name, ""))}">'
        for name in (
            "client_id",
            "redirect_uri",
            "response_type",
            "scope",
            "acr_values",
            "state",
            "nonce",
            "prompt",
            "code_challenge",
            "code_challenge_method",
            "max_age",
        )
    )
    note = f'<p class="note" role="alert">{html.escape(message)}</p>' if message else ""
    return _page(
        "Sign in",
        f"""
<p class="note">Local Login.gov stand-in for development. Never use real credentials.</p>
<h1>Sign in</h1>{note}
<form method="post" action="/openid_connect/authorize">{hidden}
<label for="emails">Email addresses on this Login.gov account</label>
<p id="emails-hint">One per line. The first is the one shared as <code>email</code>;
all are sent as <code>all_emails</code>. The same set always gives the same identity.</p>
<textarea id="emails" name="emails" rows="3" aria-describedby="emails-hint"></textarea>
<button class="primary" type="submit" name="action" value="continue">Continue</button>
<button type="submit" name="action" value="cancel">Cancel and return</button>
</form>""",
    )
