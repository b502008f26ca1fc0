"""Sending alert emails over SMTP: the server settings, and one message per call.

:func:`send` never raises for SMTP or network problems; it returns whether the message was
sent, should be tried again, or failed for good (see docs/mail.md).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import os
import smtplib
import socket
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from enum import StrEnum
from typing import Final

from ..config import ConfigError
from .untrusted import check_address, clean, is_control, is_control_or_space, parse_sender

__all__ = [
    "DEFAULT_PORTS",
    "SECURITY_MODES",
    "SendResult",
    "SendStatus",
    "SmtpNotConfigured",
    "SmtpSettings",
    "require_configured",
    "send",
]

log = logging.getLogger(__name__)

SECURITY_MODES: Final = ("none", "starttls", "ssl")
DEFAULT_PORTS: Final = {"none": 25, "starttls": 587, "ssl": 465}


class SendStatus(StrEnum):
    """How a send ended (see :class:`SendResult`)."""

    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"


@dataclass(frozen=True)
class SmtpSettings:
    """How newsmon reaches its mail server (``NEWSMON_SMTP_*``)."""

    host: str = "127.0.0.1"
    port: int = 25
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    security: str = "none"  # "none" | "starttls" | "ssl"
    sender: str = "newsmon@localhost"  # the From address, optionally "Name <addr>"
    timeout: float = 30.0  # seconds per network operation
    ca_file: str | None = None  # CA bundle to verify the server with, instead of the system's
    # False: read from an environment without NEWSMON_SMTP_HOST (sending refuses, see send)
    configured: bool = True

    def __post_init__(self) -> None:
        if self.security not in SECURITY_MODES:
            raise ValueError(f"security must be one of {', '.join(SECURITY_MODES)}")
        if not 1 <= self.port <= 65535:
            raise ValueError("port must be between 1 and 65535")
        if not (math.isfinite(self.timeout) and self.timeout > 0):
            raise ValueError("timeout must be a positive number of seconds")
        if not self.host or any(is_control_or_space(c) for c in self.host):
            raise ValueError("host must be a host name or address")
        parse_sender(self.sender)

    @property
    def sender_address(self) -> str:
        """The bare address of the sender (the SMTP envelope sender)."""
        return parse_sender(self.sender)[1]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SmtpSettings:
        """Read ``NEWSMON_SMTP_HOST``, ``_PORT``, ``_USERNAME``, ``_PASSWORD``, ``_SECURITY``,
        ``_FROM``, ``_TIMEOUT`` and ``_CA_FILE``; a bad value raises a :class:`ConfigError`
        naming the variable. The port defaults to 25, 587 or 465 by ``_SECURITY``. Without
        ``NEWSMON_SMTP_HOST`` the settings are not ``configured``: sending refuses."""
        env = os.environ if environ is None else environ

        def error(name: str, message: str, *, show: bool = True) -> ConfigError:
            got = f" (got {env.get(name)!r})" if show else ""
            return ConfigError(message + got, file="environment", field=name)

        def text(name: str) -> str:
            return env.get(name, "").strip()

        host = text("NEWSMON_SMTP_HOST") or cls.host
        if any(is_control_or_space(c) for c in host):
            raise error("NEWSMON_SMTP_HOST", "must be a host name or IP address")

        security = (text("NEWSMON_SMTP_SECURITY") or cls.security).lower()
        if security not in SECURITY_MODES:
            raise error("NEWSMON_SMTP_SECURITY", f"must be one of {', '.join(SECURITY_MODES)}")

        port = DEFAULT_PORTS[security]
        if raw_port := text("NEWSMON_SMTP_PORT"):
            if not raw_port.isdigit() or not 1 <= int(raw_port) <= 65535:
                raise error("NEWSMON_SMTP_PORT", "must be a port number from 1 to 65535")
            port = int(raw_port)

        timeout = cls.timeout
        if raw_timeout := text("NEWSMON_SMTP_TIMEOUT"):
            try:
                timeout = float(raw_timeout)
            except ValueError:
                raise error("NEWSMON_SMTP_TIMEOUT", "must be a number of seconds") from None
            if not (math.isfinite(timeout) and timeout > 0):
                raise error("NEWSMON_SMTP_TIMEOUT", "must be a positive number of seconds")

        sender = text("NEWSMON_SMTP_FROM") or cls.sender
        try:
            parse_sender(sender)
        except ValueError as exc:
            raise error("NEWSMON_SMTP_FROM", str(exc)) from None

        username = env.get("NEWSMON_SMTP_USERNAME") or None
        password = env.get("NEWSMON_SMTP_PASSWORD") or None
        if username is not None and any(is_control(c) for c in username):
            raise error("NEWSMON_SMTP_USERNAME", "must not contain control characters")
        if (username is None) != (password is None):
            missing = "NEWSMON_SMTP_PASSWORD" if password is None else "NEWSMON_SMTP_USERNAME"
            raise error(
                missing, "set both NEWSMON_SMTP_USERNAME and _PASSWORD, or neither", show=False
            )

        ca_file = text("NEWSMON_SMTP_CA_FILE") or None
        if ca_file is not None and not os.path.isfile(ca_file):
            raise error("NEWSMON_SMTP_CA_FILE", "must be a readable CA bundle file")

        return cls(
            host=host,
            port=port,
            username=username,
            password=password,
            security=security,
            sender=sender,
            timeout=timeout,
            ca_file=ca_file,
            configured=bool(text("NEWSMON_SMTP_HOST")),
        )


class SmtpNotConfigured(ConfigError):
    """Sending was asked for, but no mail server is configured."""


def require_configured(settings: SmtpSettings) -> None:
    """Raise :class:`SmtpNotConfigured` unless a mail server was configured."""
    if not settings.configured:
        raise SmtpNotConfigured(
            "no mail server configured: set NEWSMON_SMTP_HOST (and _PORT, _SECURITY, _FROM…)"
            " or the Airflow Connection newsmon_smtp; nothing was sent, the emails stay queued",
            file="environment",
            field="NEWSMON_SMTP_HOST",
        )


# --- sending -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SendResult:
    """How a send ended.

    ``status`` is ``sent`` (the server took responsibility for the message), ``retry`` (a transient
    problem: a 4xx reply, no connection, a connection lost or a timeout before the server
    confirmed — if it had in fact taken the message, sending again makes a duplicate with the
    same Message-ID) or ``failed`` (permanent: a 5xx reply, every recipient refused for good,
    TLS or authentication set up wrongly).
    """

    status: SendStatus
    code: int | None  # the SMTP reply code that decided it, if any
    reason: str
    message_id: str
    refused: tuple[str, ...] = ()  # recipients the server refused
    # those of ``refused`` refused with a 4xx code: compose again for just them (same
    # batch_key, so the same Message-ID) and send later
    retry_recipients: tuple[str, ...] = ()


class _Reply(Exception):
    """An SMTP reply that ends the transaction (raised inside :func:`send`)."""

    def __init__(self, code: int, text: str, stage: str) -> None:
        super().__init__(code, text, stage)
        self.code, self.text, self.stage = code, text, stage


def send(message: EmailMessage, settings: SmtpSettings) -> SendResult:
    """Send ``message`` to the addresses in its To/Cc headers; never raises for SMTP or
    network problems (ValueError for a message without valid recipients,
    :class:`SmtpNotConfigured` when no mail server is configured)."""
    require_configured(settings)
    message_id = str(message.get("Message-ID", "")).strip()
    recipients = _envelope_recipients(message)
    payload = _flatten(message)
    client: smtplib.SMTP | None = None
    try:
        client = _open(settings)
        result = _transaction(client, settings.sender_address, recipients, payload, message_id)
    except _Reply as reply:
        result = _from_reply(reply.code, reply.text, reply.stage, message_id)
    except smtplib.SMTPResponseException as exc:
        result = _from_reply(exc.smtp_code, _reply_text(exc.smtp_error), "reply", message_id)
    except smtplib.SMTPServerDisconnected as exc:
        reason = f"connection lost: {exc or 'closed by the server'}"
        result = SendResult(SendStatus.RETRY, None, reason, message_id)
    except smtplib.SMTPNotSupportedError as exc:
        result = SendResult(
            SendStatus.FAILED, None, f"not supported by the server: {exc}", message_id
        )
    except smtplib.SMTPException as exc:
        result = SendResult(SendStatus.FAILED, None, f"SMTP error: {exc}", message_id)
    except ssl.SSLCertVerificationError as exc:
        reason = f"TLS certificate not trusted: {exc.verify_message or exc}"
        result = SendResult(SendStatus.FAILED, None, reason, message_id)
    except (ssl.SSLEOFError, ssl.SSLZeroReturnError, ssl.SSLSyscallError) as exc:
        result = SendResult(SendStatus.RETRY, None, f"TLS connection lost: {exc}", message_id)
    except ssl.SSLError as exc:
        result = SendResult(SendStatus.FAILED, None, f"TLS negotiation failed: {exc}", message_id)
    except socket.gaierror as exc:
        reason = f"cannot resolve {settings.host}: {exc.strerror or exc}"
        result = SendResult(SendStatus.RETRY, None, reason, message_id)
    except TimeoutError:
        reason = f"timed out after {settings.timeout:g}s talking to {_where(settings)}"
        result = SendResult(SendStatus.RETRY, None, reason, message_id)
    except ConnectionRefusedError:
        result = SendResult(
            SendStatus.RETRY, None, f"connection refused by {_where(settings)}", message_id
        )
    except OSError as exc:
        reason = f"network error with {_where(settings)}: {exc.strerror or exc}"
        result = SendResult(SendStatus.RETRY, None, reason, message_id)
    finally:
        if client is not None:
            _close(client)
    level = logging.INFO if result.status == SendStatus.SENT else logging.WARNING
    log.log(
        level,
        "mail %s %s to %d recipient(s): %s",
        message_id,
        result.status,
        len(recipients),
        result.reason,
    )
    return result


def _where(settings: SmtpSettings) -> str:
    return f"{settings.host}:{settings.port}"


def _envelope_recipients(message: EmailMessage) -> list[str]:
    recipients: list[str] = []
    for name in ("To", "Cc", "Bcc"):
        header = message.get(name)
        for address in getattr(header, "addresses", ()):
            recipients.append(check_address(address.addr_spec))
    if not recipients:
        raise ValueError("the message has no recipients")
    return list(dict.fromkeys(recipients))


def _flatten(message: EmailMessage) -> bytes:
    if "Bcc" in message:  # like smtplib.send_message: Bcc is envelope only
        message = _copy_without(message, "Bcc")
    return message.as_bytes(policy=message.policy.clone(linesep="\r\n"))


def _copy_without(message: EmailMessage, header: str) -> EmailMessage:
    clone = copy.copy(message)
    del clone[header]
    return clone


def _open(settings: SmtpSettings) -> smtplib.SMTP:
    context = None
    if settings.security != "none":
        context = ssl.create_default_context(cafile=settings.ca_file)
    client: smtplib.SMTP
    if settings.security == "ssl":
        client = smtplib.SMTP_SSL(
            settings.host, settings.port, timeout=settings.timeout, context=context
        )
    else:
        client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
    try:
        client.ehlo_or_helo_if_needed()
        if settings.security == "starttls":
            client.starttls(context=context)  # SMTPNotSupportedError if not offered
            client.ehlo()
        if settings.username is not None:
            client.login(settings.username, settings.password or "")
    except BaseException:
        _close(client)
        raise
    return client


def _transaction(
    client: smtplib.SMTP, sender: str, recipients: list[str], payload: bytes, message_id: str
) -> SendResult:
    code, reply = client.mail(sender)
    if code != 250:
        raise _Reply(code, _reply_text(reply), "MAIL FROM")
    refused: dict[str, tuple[int, str]] = {}
    for recipient in recipients:
        code, reply = client.rcpt(recipient)
        if code not in (250, 251):
            refused[recipient] = (code, _reply_text(reply))
            if code == 421:  # the server is closing the connection
                raise _Reply(code, _reply_text(reply), f"RCPT TO <{recipient}>")
    if len(refused) == len(recipients):
        _quietly(client.rset)
        return _all_refused(refused, message_id)
    code, reply = client.data(payload)  # SMTPDataError if DATA itself is refused
    if code != 250:
        raise _Reply(code, _reply_text(reply), "end of data")
    reason = f"{code} {_reply_text(reply)}".strip()
    if refused:
        reason += f"; accepted for {len(recipients) - len(refused)} of {len(recipients)}"
        reason += " recipients, refused: " + _refusals(refused)
    return SendResult(
        SendStatus.SENT,
        code,
        reason,
        message_id,
        refused=tuple(refused),
        retry_recipients=tuple(r for r, (c, _) in refused.items() if 400 <= c < 500),
    )


def _all_refused(refused: dict[str, tuple[int, str]], message_id: str) -> SendResult:
    codes = [code for code, _ in refused.values()]
    transient = [code for code in codes if not 500 <= code < 600]
    status = SendStatus.RETRY if transient else SendStatus.FAILED
    return SendResult(
        status,
        transient[0] if transient else codes[0],
        "every recipient refused: " + _refusals(refused),
        message_id,
        refused=tuple(refused),
        retry_recipients=tuple(r for r, (c, _) in refused.items() if 400 <= c < 500),
    )


def _refusals(refused: dict[str, tuple[int, str]]) -> str:
    return "; ".join(
        f"{address} {code} {text}".rstrip() for address, (code, text) in refused.items()
    )


def _from_reply(code: int, text: str, stage: str, message_id: str) -> SendResult:
    """5xx is permanent; 4xx (and anything unexpected) is worth another try."""
    status = SendStatus.FAILED if 500 <= code < 600 else SendStatus.RETRY
    return SendResult(status, code, f"{stage}: {code} {text}".rstrip(), message_id)


def _reply_text(reply: bytes | str) -> str:
    if isinstance(reply, bytes):
        reply = reply.decode("utf-8", "replace")
    return clean(reply, 500)


def _quietly(action: Callable[[], object]) -> None:
    with contextlib.suppress(smtplib.SMTPException, OSError):
        action()


def _close(client: smtplib.SMTP) -> None:
    """QUIT politely, then close; the outcome is already decided, so errors are ignored."""
    try:
        if client.sock is not None:
            client.quit()
    except (smtplib.SMTPException, OSError):
        pass
    finally:
        client.close()
