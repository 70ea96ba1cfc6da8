from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from realtime.delivery.dispatch import send_event
from realtime.wire.events import EVENT_SCHEMAS
from realtime.wire.schema import EventValidationError
from realtime.wire.protocol import CLIENT_ID_RE, decode


class Command(BaseCommand):
    help = "Publish one validated event to the gateway's subscribers (drills and demos)."

    def add_arguments(self, parser):
        parser.add_argument("event_type", help=f"one of: {', '.join(sorted(EVENT_SCHEMAS))}")
        parser.add_argument("--data", required=True, help="the event's data as a JSON object (decimals stay exact)")
        parser.add_argument("--correlation-id", default=None)
        parser.add_argument("--target-client", default=None, help="deliver to this client id only")

    def handle(self, *args, **options):
        event_type = options["event_type"]
        if event_type not in EVENT_SCHEMAS:
            raise CommandError(f"Unknown event type {event_type!r}; known: {', '.join(sorted(EVENT_SCHEMAS))}.")
        try:
            data = decode(options["data"])
        except (ValueError, RecursionError) as error:
            raise CommandError(f"--data is not valid JSON: {error}") from None
        if not isinstance(data, dict):
            raise CommandError("--data must be a JSON object.")
        target = options["target_client"]
        if target is not None and not CLIENT_ID_RE.fullmatch(target):
            raise CommandError("--target-client must be a client id (letters, digits, '-' and '_').")
        try:
            EVENT_SCHEMAS[event_type].validate(data)
        except EventValidationError as error:
            raise CommandError(f"Invalid event: {error}") from None
        if "hosts" not in settings.CHANNEL_LAYERS["default"].get("CONFIG", {}):
            raise CommandError(
                "The channel layer is in-memory (REDIS_URL is not set): an event published here would reach "
                "no server. Set REDIS_URL (and CHANNEL_LAYER_PREFIX) to those of the running gateway."
            )
        try:
            send_event(event_type, data, correlation_id=options["correlation_id"], target_client=target)
        except EventValidationError as error:
            raise CommandError(f"Invalid event: {error}") from None
        except Exception as error:  # the channel layer (Redis) refused or is unreachable
            raise CommandError(f"Publishing failed: {type(error).__name__}: {error}") from None
        self.stdout.write(f"published {event_type}")
