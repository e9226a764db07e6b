"""The emulator server: host segment routing, the request log, HTTP faults, the control API."""

from __future__ import annotations

import asyncio
import typing as t

import aiohttp
import pytest
from aiohttp import web

from tests.emulator.core import EmulatedExchange, Fault
from tests.emulator.server import Emulator, Route, serve


class Echo(Emulator):
    """Answers ``GET /ping`` and counts ``POST /work`` (a request with a side effect)."""

    def __init__(self) -> None:
        super().__init__(EmulatedExchange("echo"))
        self.work = 0

    async def handle(self, request: web.Request, route: Route) -> web.StreamResponse | None:
        if route.endpoint == "GET /ping":
            return web.json_response({"host": route.host})
        if route.endpoint == "POST /work":
            self.work += 1
            return web.json_response({"done": self.work})
        return None


def run(scenario: t.Callable[[Echo, str, aiohttp.ClientSession], t.Awaitable[None]]) -> Echo:
    emulator = Echo()

    async def main() -> None:
        async with serve(emulator) as base, aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=1)) as session:
            await scenario(emulator, base, session)

    asyncio.run(main())
    return emulator


def test_requests_route_on_the_path_under_the_host_segment_and_unknown_ones_are_404_and_logged() -> None:
    async def scenario(em: Echo, base: str, session: aiohttp.ClientSession) -> None:
        async with session.get(f"{base}/api.example.com/ping?x=1") as r:
            assert (r.status, await r.json()) == (200, {"host": "api.example.com"})
        async with session.get(f"{base}/api.example.com/missing") as r:
            assert r.status == 404

    em = run(scenario)
    assert [(r.endpoint, r.params, r.status) for r in em.exchange.requests] == [
        ("GET /ping", {"x": "1"}, 200), ("GET /missing", {}, 404)]
    assert "404 GET /missing" in em.exchange.request_log()


def test_status_fault_answers_with_retry_after_and_does_nothing_else() -> None:
    async def scenario(em: Echo, base: str, session: aiohttp.ClientSession) -> None:
        em.exchange.inject(Fault("status", endpoint="POST /work", status=429, retry_after=7))
        async with session.post(f"{base}/h/work") as r:
            assert (r.status, r.headers["Retry-After"]) == (429, "7")
        async with session.post(f"{base}/h/work") as r:
            assert r.status == 200

    assert run(scenario).work == 1


def test_lost_fault_does_the_work_then_drops_the_connection_and_timeout_does_not_do_it() -> None:
    async def scenario(em: Echo, base: str, session: aiohttp.ClientSession) -> None:
        em.exchange.inject(Fault("lost", endpoint="POST /work"))
        with pytest.raises(aiohttp.ClientError):
            async with session.post(f"{base}/h/work") as r:
                await r.read()
        em.exchange.inject(Fault("timeout", endpoint="POST /work"))
        with pytest.raises(asyncio.TimeoutError):
            async with session.post(f"{base}/h/work", timeout=aiohttp.ClientTimeout(total=0.2)) as r:
                await r.read()

    assert run(scenario).work == 1


def test_control_api_sets_balances_injects_faults_and_reports_state() -> None:
    async def scenario(em: Echo, base: str, session: aiohttp.ClientSession) -> None:
        async with session.post(f"{base}/_emulator/balances", json={"BTC": "1.5"}) as r:
            assert r.status == 200
        async with session.post(f"{base}/_emulator/faults", json=[{"kind": "status", "status": 503}]) as r:
            assert r.status == 200
        async with session.get(f"{base}/h/ping") as r:
            assert r.status == 503
        async with session.get(f"{base}/_emulator/state") as r:
            state = await r.json()
        assert state["balances"] == {"BTC": {"free": "1.5", "used": "0"}}
        assert [q["status"] for q in state["requests"]] == [503]

    run(scenario)
