"""`manage.py gateway_clients`: the clients connected to every gateway process, from Redis."""

import asyncio

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from realtime.bus.presence import clients_online


class Command(BaseCommand):
    help = "List the client ids connected to any gateway process, with their user and process."

    def add_arguments(self, parser):
        parser.add_argument("--user-id", type=int, help="only the clients of this user")

    def handle(self, *args, user_id=None, **options):
        if not settings.REALTIME_BUS["URL"]:
            raise CommandError(
                "Set REDIS_URL or REDIS_SENTINELS (or REDIS_BUS_URL): the client registry lives in Redis."
            )
        online = asyncio.run(clients_online())
        rows = [
            (client_id, entry)
            for client_id, entries in sorted(online.items())
            for entry in entries
            if user_id is None or entry["user_id"] == user_id
        ]
        for client_id, entry in rows:
            self.stdout.write(
                f"{client_id}\tuser={entry['username']}({entry['user_id']})\t"
                f"connections={entry['connections']}\tprocess={entry['process']}"
            )
        self.stdout.write(f"{len(rows)} client(s) on {len({e['process'] for _, e in rows})} process(es)")
