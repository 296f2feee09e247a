"""Outgoing mail through Amazon SES (API v2): one function, `send_mail`.

Not a queue and not a template engine for pages: it renders
`templates/mail/<name>.txt` (plain text; its `{% set subject = "..." %}` is the subject) and
`templates/mail/<name>.html` (autoescaped) with the same context, and sends both bodies in
one SendEmail call from MAIL_SENDER. Every failure (SES refusal, timeout, no connection)
becomes `MailNotSent`, so callers decide once what a failed send means.

Locally `AWS_ENDPOINT_URL` points boto3 at moto, whose sent messages the local mailbox
page (localdev/mailbox.py) shows. Never log a recipient or a body: codes are in bodies.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chalicelib import clients
from chalicelib.config import get_settings, support_contact
from chalicelib.errors import MailNotSent
from chalicelib.logs import count, keyed_hash, log_event

if TYPE_CHECKING:
    from jinja2 import Environment

# Mail's own templates (beside the pages' in chalicelib/templates, but mail reads no page).
MAIL_TEMPLATES = Path(__file__).parent / "templates" / "mail"
CHARSET = "UTF-8"


@functools.lru_cache(maxsize=1)
def _environment() -> Environment:
    # Imported on first mail, like pages.py: a cold /login never renders anything.
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    return Environment(
        loader=FileSystemLoader(str(MAIL_TEMPLATES)),
        # HTML bodies are escaped; plain-text bodies are not HTML and must not be.
        autoescape=select_autoescape(
            enabled_extensions=("html",), default=False, default_for_string=False
        ),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        auto_reload=False,
    )


@dataclass(frozen=True)
class RenderedMail:
    subject: str
    text: str
    html: str


def render_mail(template_name: str, **context: Any) -> RenderedMail:
    # Every mail names the support desk; the email-change notice also points to Login.gov.
    context = {
        "support": support_contact(),
        "login_gov_account_url": get_settings().login_gov_account_url,
        **context,
    }
    env = _environment()
    text_module = env.get_template(f"{template_name}.txt").make_module(context)
    subject = str(getattr(text_module, "subject", "")).strip()
    if not subject:
        raise ValueError(f"mail/{template_name}.txt sets no subject")
    html = env.get_template(f"{template_name}.html").render(subject=subject, **context)
    return RenderedMail(subject=subject, text=str(text_module).strip() + "\n", html=html)


def send_mail(to: str | list[str], template_name: str, **context: Any) -> str:
    """Send one message to `to` (one address or a few); the SES message id, or MailNotSent."""
    from botocore.exceptions import BotoCoreError, ClientError

    recipients = [to] if isinstance(to, str) else list(to)
    mail = render_mail(template_name, **context)
    # The configuration set publishes bounces and complaints (chalicelib.mail_feedback).
    feedback = get_settings().ses_configuration_set
    extra = {"ConfigurationSetName": feedback} if feedback else {}
    try:
        response = clients.ses().send_email(
            **extra,
            FromEmailAddress=get_settings().mail_sender,
            Destination={"ToAddresses": recipients},
            Content={
                "Simple": {
                    "Subject": {"Data": mail.subject, "Charset": CHARSET},
                    "Body": {
                        "Text": {"Data": mail.text, "Charset": CHARSET},
                        "Html": {"Data": mail.html, "Charset": CHARSET},
                    },
                }
            },
        )
    except (ClientError, BotoCoreError) as exc:
        code = clients.aws_error_code(exc) or exc.__class__.__name__
        # SES's health, counted for every send; the failure itself is logged once by
        # whoever handles MailNotSent (the edge, a notice, a reminder run).
        count("MailFailed", template=template_name)
        raise MailNotSent(
            f"SES did not send {template_name}: {code}", reason=code, template=template_name
        ) from None
    log_event("mail_sent", template=template_name, to=[keyed_hash(r) for r in recipients])
    count("MailSent", template=template_name)
    return response.get("MessageId", "")
