"""The test session's own services are real and answer."""
import psycopg
import redis


def test_redis_server_answers_ping(redis_server):
    client = redis.Redis.from_url(redis_server.url)
    assert client.ping() is True
    client.set("r1lab", "yes")
    assert client.get("r1lab") == b"yes"


def test_postgres_cluster_accepts_queries(postgres_server):
    with psycopg.connect(postgres_server.url.replace("postgres://", "postgresql://")) as conn:
        assert conn.execute("SELECT 1 + 1").fetchone()[0] == 2
