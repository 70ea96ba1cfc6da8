import asyncio
import sys

from django.core.management.base import BaseCommand, CommandError

from realtime.client import add_connection_arguments, connect, is_connection_failure, refused_message
from realtime.wire.protocol import decode, encode, new_correlation_id

HELP_TEXT = """Lines you can type:
  sub <event type> [...]        subscribe
  unsub <event type> [...]      unsubscribe
  cmd <command> [<json data>]   send a command (type "user")
  ping                          heartbeat
  {...}                         a raw JSON message, sent as is
  help | quit"""


class Command(BaseCommand):
    help = "An interactive client of the gateway's WebSocket protocol: type messages, see what arrives."

    def add_arguments(self, parser):
        add_connection_arguments(parser)
        parser.add_argument("--linger", type=float, default=1.0, help="seconds to keep printing after the input ends")

    def handle(self, *args, **options):
        try:
            asyncio.run(self.session(options))
        except KeyboardInterrupt:
            pass

    async def session(self, options):
        try:
            async with connect(options) as socket:
                printer = asyncio.get_running_loop().create_task(self.print_incoming(socket))
                if sys.stdin.isatty():
                    self.stderr.write(HELP_TEXT)
                while True:
                    line = await asyncio.to_thread(sys.stdin.readline)
                    if not line or line.strip() == "quit":
                        break
                    try:
                        message = self.parse(line.strip())
                    except ValueError as error:
                        self.stderr.write(str(error))
                        continue
                    if message is not None:
                        await socket.send(message)
                if not printer.done():
                    await asyncio.wait([printer], timeout=options["linger"])
                printer.cancel()
        except Exception as error:
            if not is_connection_failure(error):
                raise
            raise CommandError(refused_message(error)) from None

    async def print_incoming(self, socket):
        async for raw in socket:
            self.stdout.write(f"< {raw}")
            sys.stdout.flush()
        self.stderr.write(f"connection closed by the server (code {socket.close_code})")

    def parse(self, line: str) -> str | None:
        """Turn one typed line into a frame to send; None for nothing to send."""
        if not line:
            return None
        if line == "help":
            self.stderr.write(HELP_TEXT)
            return None
        if line.startswith("{"):
            return line
        word, _, rest = line.partition(" ")
        if word == "ping":
            return encode({"type": "ping", "event": "heartbeat", "data": {}, "correlation_id": new_correlation_id()})
        if word in ("sub", "unsub"):
            names = rest.split()
            if not names:
                raise ValueError(f"usage: {word} <event type> [...]")
            action = "subscribe" if word == "sub" else "unsubscribe"
            return encode({"type": "subscription", "event": action, "data": {"event_types": names}})
        if word == "cmd":
            name, _, data = rest.strip().partition(" ")
            if not name:
                raise ValueError("usage: cmd <command> [<json data>]")
            try:
                payload = decode(data) if data.strip() else {}
            except ValueError:
                raise ValueError("the command data is not valid JSON") from None
            if not isinstance(payload, dict):
                raise ValueError("the command data must be a JSON object")
            correlation_id = new_correlation_id()
            self.stderr.write(f"> {name} correlation_id={correlation_id}")
            return encode({"type": "user", "event": name, "data": payload, "correlation_id": correlation_id})
        raise ValueError(f"unknown input {word!r}; type 'help'")
