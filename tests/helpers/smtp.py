"""Real SMTP servers on loopback (aiosmtpd): one that stores what it gets and can be told how to
answer, and one that fails on purpose, connection by connection, as its plan of faults says."""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

SENDER = "alerts@newsmon.test"


class LoopbackController(Controller):
    """aiosmtpd's Controller, on the port the OS picked (port=0)."""

    def _trigger_server(self) -> None:
        sockets = getattr(self.server, "sockets", None)
        assert sockets
        self.port = sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


def plain_text(received: Received) -> str:
    """The text/plain part of a received email, with \\n line ends."""
    body = received.message.get_body(("plain",))
    assert body is not None
    return str(body.get_content()).replace("\r\n", "\n")


# --- a server that stores what it gets -----------------------------------------------------------


@dataclass
class Handler:
    """Stores what it gets; can be told how to answer, or to drop the connection."""

    received: list[Received] = field(default_factory=list)
    mail_reply: str | None = None
    rcpt_replies: dict[str, str] = field(default_factory=dict)  # address (or "*") -> reply
    data_reply: str | None = None
    drop: str | None = None  # "rcpt": before DATA; "after_data": data taken, no reply;
    # "after_reply": after the 250 for the data

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.mail_reply:
            return self.mail_reply
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.drop == "rcpt":
            server.transport.close()
            return "250 OK"
        reply = self.rcpt_replies.get(address, self.rcpt_replies.get("*"))
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_reply:
            return self.data_reply
        self.received.append(
            Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content)
        )
        if self.drop == "after_data":
            server.transport.close()
        elif self.drop == "after_reply":  # close once the reply is out, before QUIT
            server.loop.call_soon(server.transport.close)
        return "250 2.0.0 Ok: queued as NEWSMON1"


@contextmanager
def smtp_server(**kwargs: Any) -> Iterator[tuple[Handler, int]]:
    """A :class:`Handler` server on 127.0.0.1; ``kwargs`` go to aiosmtpd's Controller."""
    handler = Handler()
    controller = LoopbackController(handler, hostname="127.0.0.1", port=0, **kwargs)
    controller.start()
    try:
        yield handler, controller.port
    finally:
        controller.stop()


# --- a server that fails on purpose --------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    """How the server treats one connection; the default is a clean delivery."""

    greeting: str | None = None  # reply instead of "220", then hang up
    mail: str | None = None  # reply to MAIL FROM
    rcpt: Mapping[str, str] = field(default_factory=dict)  # address (or "*") -> reply
    data: str | None = None  # reply at the end of DATA; the message is not kept
    drop: str | None = None  # "before_data": hang up at RCPT; "after_data": keep the message,
    # hang up without a reply
    stall: float = 0.0  # seconds to wait before the reply to MAIL or DATA (``stall_at``)
    stall_at: str = "data"  # "mail": before any data; "data": the message kept, no reply yet


@dataclass
class FaultyHandler:
    """aiosmtpd handler: each connection takes the next :class:`Fault` of ``plan`` (none left:
    all goes well); it stores what it accepted and counts connections and RCPTs."""

    plan: list[Fault] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    connections: int = 0
    rcpts: list[str] = field(default_factory=list)
    faults: dict[int, Fault] = field(default_factory=dict)  # by id(session)

    def next_fault(self, session: Any) -> Fault:
        self.connections += 1
        fault = self.plan.pop(0) if self.plan else Fault()
        self.faults[id(session)] = fault
        return fault

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        fault = self.faults[id(session)]
        if fault.stall and fault.stall_at == "mail":
            await asyncio.sleep(fault.stall)
        if fault.mail:
            return fault.mail
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        fault = self.faults[id(session)]
        self.rcpts.append(address)
        if fault.drop == "before_data":
            server.transport.close()
            return "250 OK"
        reply = fault.rcpt.get(address, fault.rcpt.get("*"))
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        fault = self.faults[id(session)]
        if fault.data:
            return fault.data
        self.received.append(
            Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content)
        )
        if fault.stall and fault.stall_at == "data":
            await asyncio.sleep(fault.stall)
        if fault.drop == "after_data":
            server.transport.close()
        return "250 2.0.0 Ok: queued"


class _FaultySMTP(SMTP):
    async def _handle_client(self) -> None:
        handler = self.event_handler
        assert isinstance(handler, FaultyHandler)
        fault = handler.next_fault(self.session)
        if fault.greeting is not None:
            await self.push(fault.greeting)
            assert self.transport is not None
            self.transport.close()
            return
        await super()._handle_client()


class _FaultyController(LoopbackController):
    def factory(self) -> SMTP:
        return _FaultySMTP(self.handler, **self.SMTP_kwargs)


@contextmanager
def faulty_smtp_server() -> Iterator[tuple[FaultyHandler, int]]:
    """A :class:`FaultyHandler` server on 127.0.0.1; set its ``plan`` before connecting."""
    handler = FaultyHandler()
    controller = _FaultyController(handler, hostname="127.0.0.1", port=0)
    controller.start()
    handler.connections = 0  # start() connected once to check the server is up
    try:
        yield handler, controller.port
    finally:
        controller.stop()
