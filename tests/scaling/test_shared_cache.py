"""With real components: the FastAPI example under ``uvicorn --workers 4`` and the
Flask example under ``gunicorn -w 4``, every worker on one real redis-server. One session
sees one token, minted once, whichever worker answers; a logout on one worker is seen by
all of them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from embedgate.cache import session_tag
from embedgate.config import Config
from embedgate.engine import redis_codec
from embedgate.redis_cache import redis_key
from tests.conftest import TEST_SECRET
from tests.providers.fakes.server import serve
from tests.providers.fakes.toucan import FakeToucan
from tests.scaling.cluster import KINDS, App, jtis, running_app, subjects, workers
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.redis

TOUCAN_KEY = "tc-scaling-key-do-not-log-5e21"


@pytest.fixture(scope="module")
def redis_server(redis_binary: str) -> Iterator[RedisServer]:
    with RedisServer(redis_binary) as server:
        yield server


@pytest.fixture(scope="module", params=KINDS)
def app(request: pytest.FixtureRequest, redis_server: RedisServer) -> Iterator[App]:
    with running_app(request.param, redis_server.url) as running:
        yield running


def test_one_session_sees_one_token_minted_once_on_every_worker(
    app: App, redis_server: RedisServer
) -> None:
    with app.browser() as alice:
        first = alice.log_in("alice")
        answers = alice.spread_over(3, count=60)
        session_id = alice.session_id

    assert len(workers(answers)) >= 3
    assert {answer.via for answer in answers} == {"page", "endpoint"}
    assert subjects(answers) == {"alice"}
    # Distinct jti = mints (see tests/scaling/cluster.py): one, the first page's.
    assert jtis(answers) == {first.jti}

    # Redis holds that one token for the session, and nothing else for it.
    with redis_server.client() as raw:
        index = redis_key("session", session_tag(session_id))
        (entry,) = raw.zrange(index, 0, -1)
        value = raw.get(entry)
    # sealed at rest: read back with the key every worker derives from the shared secret
    stored = redis_codec(Config.load(environ={}, secret=TEST_SECRET)).decode(entry.decode(), value)
    assert stored.jti == first.jti
    assert stored.subject == "alice"


def test_a_logout_on_one_worker_is_seen_by_every_worker(app: App) -> None:
    with app.browser() as jar:
        alice = jar.log_in("alice")
        # The token is now in the in-process tier of every worker that served it.
        warm = jar.spread_over(3, count=40)
        assert jtis(warm) == {alice.jti}

        jar.log_out()  # one worker purges: Redis, its own tier, and a message to the others
        bob = jar.log_in("bob")
        as_bob = jar.spread_over(3, count=40)
        assert subjects(as_bob) == {"bob"}
        assert alice.jti not in jtis(as_bob)
        assert jtis(as_bob) == {bob.jti}

        jar.log_out()
        # Same cookie jar, same user, so the same cache key: only the purge (and its
        # message to every worker's in-process tier) keeps the old token from coming back.
        again = jar.log_in("alice")
        after = jar.spread_over(3, count=60)

    assert again.jti != alice.jti
    assert alice.jti not in jtis(after)
    assert jtis(after) == {again.jti}


@pytest.mark.parametrize("kind", KINDS)
def test_a_cold_session_asked_on_every_worker_at_once_mints_once(
    kind: str, redis_server: RedisServer
) -> None:
    """No first page to warm up: a new session's first requests all race, over every
    worker, for one key. A slow provider (a fake Toucan on loopback, 300 ms a token) keeps
    the race open, and counts the mints: the cluster-wide lock lets one worker call it,
    the others wait and read its token."""
    toucan = FakeToucan(TOUCAN_KEY, delay=0.3)
    with serve(toucan.app) as toucan_url:
        env = {
            "EMBEDGATE_PROVIDER": "toucan",
            "EMBEDGATE_PROVIDER_URL": toucan_url,
            "EMBEDGATE_API_KEY": TOUCAN_KEY,
            "EMBEDGATE_SECRET": "",
            "EXAMPLE_EMBED_RESOURCE": "dash-42",
            # Every request waits for the one mint here: past a page deadline it would
            # answer 503 (see tests/providers/test_outage.py), not what this test counts.
            "EMBEDGATE_PAGE_DEADLINE": "10",
        }
        with (
            running_app(kind, redis_server.url, env=env, opaque=True) as app,
            app.browser() as carol,
        ):
            session_id = carol.preset_session(TOUCAN_KEY)  # no secret: keys from the API key
            carol.log_in_only("carol")
            answers = carol.spread_over(3, count=48, threads=16)
            assert carol.session_id == session_id  # no worker started another session

    assert [seen.body["user"]["distinctId"] for seen in toucan.seen] == ["carol"]
    assert len(jtis(answers)) == 1
