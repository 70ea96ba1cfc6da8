import asyncio
import sys

from django.core.management.base import BaseCommand, CommandError

from realtime.client import add_connection_arguments, connect, is_connection_failure, refused_message
from realtime.wire.events import EVENT_SCHEMAS
from realtime.wire.protocol import decode, encode


class Command(BaseCommand):
    help = "Follow the live event stream of a running gateway over its WebSocket."

    def add_arguments(self, parser):
        add_connection_arguments(parser)
        parser.add_argument("--types", nargs="+", default=None, help="event types (default: every type you may see)")
        parser.add_argument("--json", action="store_true", help="print each event frame as one JSON line, as sent")
        parser.add_argument("--count", type=int, default=None, help="stop after this many events")

    def handle(self, *args, **options):
        event_types = options["types"] or sorted(EVENT_SCHEMAS)
        unknown = [name for name in event_types if name not in EVENT_SCHEMAS]
        if unknown:
            raise CommandError(f"Unknown event types: {', '.join(unknown)}.")
        try:
            asyncio.run(self.follow(options, event_types))
        except KeyboardInterrupt:
            pass

    async def follow(self, options, event_types):
        try:
            async with connect(options) as socket:
                await socket.send(
                    encode({"type": "subscription", "event": "subscribe", "data": {"event_types": event_types}})
                )
                seen = 0
                async for raw in socket:
                    message = decode(raw)
                    event = message.get("event")
                    if event == "subscription.confirmed":
                        self.stderr.write(f"subscribed to {message['data']['event_type']}")
                    elif message.get("type") == "error":
                        self.stderr.write(f"refused: {message['data'].get('error')}")
                    elif event in EVENT_SCHEMAS:
                        self.print_event(message, raw, as_json=options["json"])
                        seen += 1
                        if options["count"] is not None and seen >= options["count"]:
                            return
        except Exception as error:
            if not is_connection_failure(error):
                raise
            raise CommandError(refused_message(error)) from None

    def print_event(self, message, raw, *, as_json):
        if as_json:
            self.stdout.write(raw)
        else:
            self.stdout.write(
                f"{message['timestamp']} {message['event']} correlation_id={message['correlation_id']} "
                f"{encode(message['data'])}"
            )
        sys.stdout.flush()
