"""Real servers on 127.0.0.1 for the channel adapters: HTTP (WeChat, Aliyun SMS) and SMTP.

Each records exactly what it received, so tests check what the adapters sent."""

from __future__ import annotations

import json
import socketserver
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from fake_http import Answer, FakeServer, Received, fake_server


@contextmanager
def fake_http(respond: Callable[[Received], tuple[int, dict[str, Any]]]) -> Iterator[FakeServer]:
    """The shared fake HTTP server, answering ``respond``'s JSON the way WeChat does (as text/plain)."""

    def answer(request: Received) -> Answer:
        status, body = respond(request)
        return Answer(status, json.dumps(body), content_type="text/plain")

    with fake_server(answer) as server:
        yield server


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    message: EmailMessage


@dataclass
class FakeSmtp:
    port: int
    mails: list[Mail] = field(default_factory=list)


@contextmanager
def fake_smtp() -> Iterator[FakeSmtp]:
    """A minimal SMTP server (EHLO, MAIL, RCPT, DATA, QUIT) that keeps every message it accepts."""
    state: FakeSmtp

    class Handler(socketserver.StreamRequestHandler):
        def reply(self, line: str) -> None:
            self.wfile.write(f"{line}\r\n".encode())

        def handle(self) -> None:
            self.reply("220 fake smtp")
            sender, recipients = "", []
            while raw := self.rfile.readline():
                command = raw.decode().strip()
                verb = command.split(" ", 1)[0].upper()
                if verb in {"EHLO", "HELO"}:
                    self.reply("250 fake")
                elif verb == "MAIL":
                    sender, recipients = command.split(":", 1)[1].strip(" <>"), []
                    self.reply("250 ok")
                elif verb == "RCPT":
                    recipients.append(command.split(":", 1)[1].strip(" <>"))
                    self.reply("250 ok")
                elif verb == "DATA":
                    self.reply("354 go ahead")
                    lines = []
                    while (line := self.rfile.readline()) not in (b".\r\n", b""):
                        lines.append(line[1:] if line.startswith(b"..") else line)
                    parsed = message_from_bytes(b"".join(lines), policy=policy.default)
                    assert isinstance(parsed, EmailMessage)
                    state.mails.append(Mail(sender, recipients, parsed))
                    self.reply("250 queued")
                elif verb == "QUIT":
                    self.reply("221 bye")
                    return
                else:
                    self.reply("250 ok")

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state = FakeSmtp(port=server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
