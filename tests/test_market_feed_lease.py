"""The market feed's lease: one of several `market_feed` processes publishes, another takes over."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
import uuid

import pytest
import redis
from django.core.management import CommandError, call_command

from market.lease import Lease, LeaseLost, run_leased
from market.models import PriceTick
from tests.fixtures.bus import shared_redis_url
from tests.fixtures.market import make_instrument
from tests.fixtures.servers import BASE_DIR, server_env

SECONDS = 0.6


class CountingLease(Lease):
    """A lease that tells when it has been renewed a number of times."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.renewals = 0
        self.renewed = asyncio.Condition()

    async def renew(self) -> bool:
        held = await super().renew()
        async with self.renewed:
            self.renewals += 1
            self.renewed.notify_all()
        return held

    async def renewed_times(self, count: int) -> None:
        async with self.renewed:
            await self.renewed.wait_for(lambda: self.renewals >= count)


def lease(prefix: str) -> CountingLease:
    return CountingLease("market-feed", seconds=SECONDS, url=shared_redis_url(), prefix=prefix)


class Work:
    """A stand-in for the feed: runs until told to stop, and says when it started."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.stop = asyncio.Event()

    async def __call__(self) -> None:
        self.started.set()
        await self.stop.wait()


@pytest.fixture
def prefix():
    return f"lease-test-{uuid.uuid4().hex[:8]}"


async def test_one_contender_runs_the_other_stands_by_and_takes_over_when_the_first_stops(prefix):
    # given two contenders for the same lease
    first, second = lease(prefix), lease(prefix)
    work_a, work_b = Work(), Work()
    stop_a, stop_b = asyncio.Event(), asyncio.Event()
    run_a = asyncio.create_task(run_leased(first, work_a, stop_work=work_a.stop.set, stopping=stop_a))
    await asyncio.wait_for(work_a.started.wait(), 5)
    run_b = asyncio.create_task(run_leased(second, work_b, stop_work=work_b.stop.set, stopping=stop_b))

    # when the first has renewed its lease for longer than a lease lifetime (a renewal every third)
    await asyncio.wait_for(first.renewed_times(4), 10)

    # then only it runs, and it holds the lease
    assert not work_b.started.is_set()
    assert await first.current_holder() == first.holder

    # and when the first stops cleanly, the standby takes over within one renewal pace
    stopped_at = time.monotonic()
    stop_a.set()
    assert await asyncio.wait_for(run_a, 5) is True
    await asyncio.wait_for(work_b.started.wait(), 5)
    assert time.monotonic() - stopped_at < SECONDS
    assert await second.current_holder() == second.holder
    stop_b.set()
    assert await asyncio.wait_for(run_b, 5) is True
    assert await second.current_holder() is None  # given up on the way out
    for contender in (first, second):
        await contender.close()


async def test_a_standby_takes_over_when_the_holder_died_without_giving_the_lease_up(prefix):
    # given a lease held by a process that is gone (it never renews)
    dead = lease(prefix)
    assert await dead.acquire()
    contender, work, stopping = lease(prefix), Work(), asyncio.Event()

    # when another process contends
    started_at = time.monotonic()
    run = asyncio.create_task(run_leased(contender, work, stop_work=work.stop.set, stopping=stopping))
    await asyncio.wait_for(work.started.wait(), 5)

    # then it runs once the dead holder's lease has expired, and not before
    assert SECONDS * 0.8 <= time.monotonic() - started_at < 2 * SECONDS
    stopping.set()
    await asyncio.wait_for(run, 5)
    await dead.close()
    await contender.close()


async def test_a_holder_whose_lease_is_taken_stops_its_work_and_raises(prefix):
    # given a contender running its work under the lease
    holder, work = lease(prefix), Work()
    run = asyncio.create_task(run_leased(holder, work, stop_work=work.stop.set, stopping=asyncio.Event()))
    await asyncio.wait_for(work.started.wait(), 5)

    # when the lease passes to another process (as after a pause longer than the lease)
    client = redis.Redis.from_url(shared_redis_url())
    client.set(holder.key, "someone-else", px=int(SECONDS * 1000))

    # then the work is stopped and the loss reported; the other's lease is left alone
    with pytest.raises(LeaseLost):
        await asyncio.wait_for(run, 5)
    assert work.stop.is_set()
    assert client.get(holder.key) == b"someone-else"
    client.close()
    await holder.close()


@pytest.mark.parametrize("value", ["-1", "nan", "inf"])
def test_market_feed_refuses_a_bad_lease_lifetime(db, value):
    with pytest.raises(CommandError, match="--lease-seconds"):
        call_command("market_feed", lease_seconds=float(value))


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_a_standby_market_feed_publishes_once_the_active_one_is_killed(prefix, tmp_path):
    # given SAP and two market_feed processes on one Redis: one active, one standing by
    make_instrument()
    env = server_env(REDIS_URL=shared_redis_url(), CHANNEL_LAYER_PREFIX=prefix, DJANGO_LOG_LEVEL="INFO")
    command = [
        sys.executable,
        "manage.py",
        "market_feed",
        "--interval",
        "0.1",
        "--symbols",
        "SAP",
        "--lease-seconds",
        "1",
    ]

    def start(name: str) -> subprocess.Popen:
        log = (tmp_path / f"{name}.log").open("w")
        return subprocess.Popen(command, cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT)

    client = redis.Redis.from_url(shared_redis_url())
    key = f"{prefix}:lease:market-feed"
    first = start("first")
    second = None
    try:
        deadline = time.monotonic() + 20
        while client.get(key) is None:
            assert time.monotonic() < deadline, (tmp_path / "first.log").read_text()
            time.sleep(0.05)
        assert f":{first.pid}:" in client.get(key).decode()
        second = start("second")
        deadline = time.monotonic() + 20
        while "standing by" not in (tmp_path / "second.log").read_text():
            assert time.monotonic() < deadline, (tmp_path / "second.log").read_text()
            time.sleep(0.05)

        # when the active one is killed outright
        first.send_signal(signal.SIGKILL)
        first.wait()
        ticks_before = PriceTick.objects.filter(instrument__symbol="SAP").count()
        killed_at = time.monotonic()

        # then the standby holds the lease within its lifetime and its ticks are recorded
        while f":{second.pid}:".encode() not in (client.get(key) or b""):
            assert time.monotonic() - killed_at < 5, (tmp_path / "second.log").read_text()
            time.sleep(0.05)
        assert time.monotonic() - killed_at < 1 + 1
        while PriceTick.objects.filter(instrument__symbol="SAP").count() < ticks_before + 3:
            assert time.monotonic() - killed_at < 10, (tmp_path / "second.log").read_text()
            time.sleep(0.05)

        # and it gives the lease up when stopped
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=10) == 0
        assert client.get(key) is None
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
        client.close()


async def test_the_lease_lives_on_the_primary_the_sentinels_name_and_its_loss_is_noticed(own_redis, tmp_path, prefix):
    from aktienanalyse.redis import sentinel_location
    from tests.fixtures.servers import SentinelServer

    # given a Sentinel watching a primary, and two feed processes configured with REDIS_SENTINELS
    sentinel = SentinelServer(tmp_path, own_redis, quorum=1)
    sentinel.start()
    location = sentinel_location(f"127.0.0.1:{sentinel.port}").url
    first, second = (Lease("market-feed", seconds=SECONDS, url=location, prefix=prefix) for _ in range(2))
    primary = redis.Redis(port=own_redis.port)
    try:
        # then one holds the lease, on that primary, and the other stands by
        assert await first.acquire() and not await second.acquire()
        assert await first.renew() and primary.get(first.key) == first.holder.encode()

        # and when the lease is lost with a failed primary's last writes, the holder learns it
        # at its next renewal and the standby can take it
        primary.delete(first.key)
        assert not await first.renew()
        assert await second.acquire()
    finally:
        primary.close()
        for contender in (first, second):
            await contender.close()
        sentinel.kill()
