"""Answer the commands desks send to a service: the spec's `UserCommandHandler` (3.2).

The gateway publishes every command it forwards (`BUS_FORWARDED_COMMANDS`) on the commands
channel as the spec's `backend_event`; the handler registered for its `event` gets its `data`
and the sender's `client_id`, and what it returns goes back to that client alone as the spec's
`command_response` with the command's `correlation_id`. Errors go back as the spec shows them,
`{"error": "<message>"}`, with the gateway's `code` added.

Every service on the bus hears every forwarded command. A service that is not the only one
should pass `answer_unknown=False`, or the desk gets its "Unknown command" besides the answer.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import signal
from collections.abc import Callable
from typing import Any

import redis

from .bus import CLIENT_ID_RE, COMMAND_NAME_RE, BusSettings, command_response_message
from .codec import decode, encode
from .dispatcher import WebSocketEventDispatcher

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], str], Any]

RETRY_DELAYS = (0.1, 0.2, 0.5, 1.0)


class CommandError(Exception):
    """A command a handler refuses; the desk gets `message` and `code` (e.g. "validation_error", "not_found")."""

    def __init__(self, message: str, code: str = "invalid_command"):
        super().__init__(message)
        self.message = message
        self.code = code


class UserCommandHandler:
    """Route forwarded user commands to registered handlers and answer each client.

    Register a handler with `@handler.command("get_news")`, `register(name, function)` or, as in
    the spec, by filling `self.command_handlers` in `register_command_handlers()` of a subclass.
    A handler is `(data, client_id) -> result`, a coroutine function or a plain one (run in a
    thread); it raises `CommandError` for an answer the desk should read.
    """

    def __init__(
        self,
        redis_url: str | None = None,
        commands_channel: str | None = None,
        events_channel: str | None = None,
        service_name: str | None = None,
        *,
        answer_unknown: bool = True,
    ):
        self.settings = BusSettings.resolve(
            redis_url=redis_url,
            events_channel=events_channel,
            commands_channel=commands_channel,
            service_name=service_name,
        )
        self.answer_unknown = answer_unknown
        self.command_handlers: dict[str, Handler] = {}
        # For events a handler sends besides its answer; same Redis, channel and service name.
        self.dispatcher = WebSocketEventDispatcher(
            self.settings.redis_url, self.settings.events_channel, self.settings.service_name
        )
        self.redis_client: Any = None
        self.subscribed = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._running: set[asyncio.Task] = set()

    # Registration

    def register_command_handlers(self) -> None:
        """Fill `self.command_handlers` (override in a subclass, as the spec does)."""

    def register(self, name: str, handler: Handler) -> None:
        if not COMMAND_NAME_RE.fullmatch(name):
            raise ValueError(f"{name!r} is not a command name the gateway forwards")
        self.command_handlers[name] = handler

    def command(self, name: str) -> Callable[[Handler], Handler]:
        """Register the decorated function as the handler of `name`."""

        def decorator(handler: Handler) -> Handler:
            self.register(name, handler)
            return handler

        return decorator

    # Running

    async def initialize(self) -> None:
        """Register the handlers and listen for commands in the background, as the spec's `initialize`."""
        await self.start()

    async def start(self, *, ready_within: float = 5.0) -> None:
        """Start listening in the background; return once subscribed, so no command sent after is missed."""
        self.register_command_handlers()
        self._task = asyncio.get_running_loop().create_task(self.user_command_subscriber(), name="user-commands")
        await asyncio.wait_for(self.subscribed.wait(), ready_within)

    async def stop(self) -> None:
        """Stop listening, cancel commands still running, close the connections."""
        tasks = [task for task in (self._task, *self._running) if task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._task = None
        if self.redis_client is not None:
            await self.redis_client.aclose()
            self.redis_client = None
        await self.dispatcher.close()

    def serve(self) -> None:
        """Listen until SIGINT or SIGTERM: the main loop of a service process."""

        async def main() -> None:
            stopped = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stopped.set)
            await self.start()
            listening = self._task
            assert listening is not None  # start() made it
            logger.info(
                "%s answers %s on %s",
                self.settings.service_name,
                sorted(self.command_handlers),
                self.settings.commands_channel,
            )
            waiter = loop.create_task(stopped.wait())
            await asyncio.wait({waiter, listening}, return_when=asyncio.FIRST_COMPLETED)
            await self.stop()

        asyncio.run(main())

    async def user_command_subscriber(self) -> None:
        """Listen on the commands channel forever, reconnecting with backoff when Redis goes away."""
        failures = 0
        while True:
            client = self.settings.async_client()
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.settings.commands_channel)
                if failures:
                    logger.warning(
                        "bus is back after %d attempts; listening on %s again", failures, self.settings.commands_channel
                    )
                failures = 0
                self.subscribed.set()
                while True:
                    # Short polls, not `listen()`: an idle channel must not look like a lost connection.
                    item = await pubsub.get_message(timeout=1.0)
                    if item is not None and item.get("type") == "message":
                        self._spawn(item["data"])
            except asyncio.CancelledError:
                raise
            except (redis.RedisError, OSError) as exc:
                if failures == 0:
                    logger.error("bus lost (%s); commands are not heard until it is back", exc)
                self.subscribed.clear()
                await asyncio.sleep(RETRY_DELAYS[min(failures, len(RETRY_DELAYS) - 1)])
                failures += 1
            finally:
                try:
                    await pubsub.aclose()
                    await client.aclose()
                except Exception:
                    pass

    def _spawn(self, raw: bytes) -> None:
        """Handle one command in its own task, so a slow handler does not hold up the others."""
        task = asyncio.get_running_loop().create_task(self._handle_raw(raw))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _handle_raw(self, raw: bytes) -> None:
        try:
            command_data = decode(raw)
        except (ValueError, RecursionError) as exc:
            logger.warning("command dropped: malformed JSON (%s): %.200r", exc, raw)
            return
        await self.handle_user_command(command_data)

    # Commands and answers

    async def handle_user_command(self, command_data: Any) -> None:
        """Run the handler of one `backend_event` and send its answer to the client that sent it."""
        problem = _backend_event_problem(command_data)
        if problem:
            logger.warning("command dropped: %s: %.200r", problem, command_data)
            return
        event = command_data["event"]
        client_id = command_data["client_id"]
        correlation_id = command_data.get("correlation_id")
        data = command_data.get("data") or {}
        handler = self.command_handlers.get(event)
        if handler is None:
            logger.warning("unknown user command: %s", event)
            if self.answer_unknown:
                await self.send_command_response(
                    client_id,
                    event,
                    "error",
                    {"error": f"Unknown command: {event}", "code": "unknown_command"},
                    correlation_id,
                )
            return
        try:
            if inspect.iscoroutinefunction(handler):
                result = await handler(data, client_id)
            else:
                result = await asyncio.to_thread(handler, data, client_id)
            status = "success"
        except CommandError as exc:
            status, result = "error", {"error": exc.message, "code": exc.code}
        except Exception as exc:
            logger.exception("command %s of client %s failed", event, client_id)
            status, result = "error", {"error": str(exc) or type(exc).__name__, "code": "internal_error"}
        await self.send_command_response(client_id, event, status, result, correlation_id)

    async def send_command_response(
        self, client_id: str, command: str, status: str, data: Any, correlation_id: str | None = None
    ) -> None:
        """Send `data` as the `result` of the spec's `command_response` to one client."""
        message = command_response_message(
            client_id, command, status, data, correlation_id, service_name=self.settings.service_name
        )
        try:
            text = encode(message)
        except (TypeError, ValueError) as exc:
            logger.error("answer to %s of client %s cannot be sent as JSON: %s", command, client_id, exc)
            text = encode(
                command_response_message(
                    client_id,
                    command,
                    "error",
                    {"error": f"{command} gave an answer that cannot be sent", "code": "internal_error"},
                    correlation_id,
                    service_name=self.settings.service_name,
                )
            )
        if self.redis_client is None:
            self.redis_client = self.settings.async_client()
        try:
            await self.redis_client.publish(self.settings.events_channel, text)
        except (redis.RedisError, OSError) as exc:
            logger.error("answer to %s of client %s lost: the bus is unavailable (%s)", command, client_id, exc)


def _backend_event_problem(command_data: Any) -> str | None:
    """Return why a message is not a `backend_event` this handler can answer, or None."""
    if not isinstance(command_data, dict) or command_data.get("type") != "user_command":
        return "not a user_command"
    if not (isinstance(command_data.get("client_id"), str) and CLIENT_ID_RE.fullmatch(command_data["client_id"])):
        return "no client_id to answer"
    if not (isinstance(command_data.get("event"), str) and COMMAND_NAME_RE.fullmatch(command_data["event"])):
        return "no command name"
    correlation_id = command_data.get("correlation_id")
    if correlation_id is not None and not (isinstance(correlation_id, str) and 0 < len(correlation_id) <= 128):
        return "correlation_id is not a string of 1 to 128 characters"
    if not isinstance(command_data.get("data", {}), (dict, type(None))):
        return "data is not an object"
    return None
