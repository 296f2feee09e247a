"""Was the staff member's authenticator phishing-resistant? As far as the provider says.

The console asks Login.gov for `urn:acr.login.gov:auth-only` and
`http://idmanagement.gov/ns/assurance/aal/2?phishing_resistant=true` (LOGIN_GOV_ACR_VALUES;
settings.py refuses a console configured without the second). What comes back:

- an `acr` that is an AAL value (a provider that answers with the assurance it met, as the
  local Login.gov does): it must be a phishing-resistant one, else refused;
- a `vot` claim (Login.gov's vectors of trust, in answer to a `vtr` request): it must hold
  `Ca` (phishing-resistant) or `Cb` (PIV/CAC), else refused;
- only the IAL value (`urn:acr.login.gov:auth-only`): Login.gov enforces a requested AAL
  but does not assert it back (identity-idp issue #7922). Accepted only when
  DESK_ACCEPT_UNASSERTED_AAL says the provider enforces without asserting: by default for
  Login.gov's own issuers (production and sandbox), never for any other provider.

chalicelib.login_gov.validate_id_token has already checked that the `acr` is one of the
requested values; the console refuses any `acr` failure as an assurance refusal.
"""

from __future__ import annotations

from supportdesk.console.errors import AssuranceRefused
from supportdesk.console.settings import PHISHING_RESISTANT_AAL, desk_settings

AAL_PREFIX = "http://idmanagement.gov/ns/assurance/aal/"
# AAL values that say the authenticator was phishing-resistant (PIV/CAC is, too).
PHISHING_RESISTANT_ACRS = frozenset(
    {
        PHISHING_RESISTANT_AAL,
        AAL_PREFIX + "2?hspd12=true",
        AAL_PREFIX + "3",
        AAL_PREFIX + "3?hspd12=true",
    }
)
# Vector-of-trust components (developers.login.gov): Ca phishing-resistant, Cb PIV/CAC.
PHISHING_RESISTANT_VOT = frozenset({"Ca", "Cb"})


def check(claims: dict) -> str:
    """How the ID token's assurance was established: "acr", "vot" or "enforced" (asserted
    by nothing, accepted by setting). Raises AssuranceRefused."""
    vot = claims.get("vot")
    if vot is not None:
        if not isinstance(vot, str):
            raise AssuranceRefused("vot is not a string", reason="vot_malformed")
        if not PHISHING_RESISTANT_VOT & set(vot.split(".")):
            raise AssuranceRefused("vot asserts no phishing-resistant authenticator", reason="vot")
        return "vot"
    acr = claims.get("acr")
    if isinstance(acr, str) and acr.startswith(AAL_PREFIX):
        if acr not in PHISHING_RESISTANT_ACRS:
            raise AssuranceRefused("acr asserts a weaker AAL", reason="acr_weaker")
        return "acr"
    # Threat: a provider that neither enforces nor asserts would let a phished password and
    # SMS code in; only a provider known to enforce what was asked gets the benefit.
    if not desk_settings().accept_unasserted_aal:
        raise AssuranceRefused("no AAL asserted by this provider", reason="aal_not_asserted")
    return "enforced"
