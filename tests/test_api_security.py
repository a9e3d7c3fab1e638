"""Access rules: constant-time secrets, key parsing, and the per-client token-bucket limiter."""

from __future__ import annotations

from api.security import RateLimiter, parse_keys, secret_equals


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_secret_equals() -> None:
    assert secret_equals("s3cret", "s3cret")
    assert not secret_equals("s3cre", "s3cret")
    assert not secret_equals("مفتاح", "s3cret")  # non-ASCII input compares, never raises


def test_parse_keys() -> None:
    assert parse_keys(" a, b ,,c ") == ("a", "b", "c")
    assert parse_keys("") == ()


def test_bucket_allows_the_burst_then_refills_continuously() -> None:
    clock = Clock()
    limiter = RateLimiter(60, clock=clock)  # one token per second
    assert all(limiter.hit("a") == 0.0 for _ in range(60))
    wait = limiter.hit("a")
    assert 0.99 < wait <= 1.0
    assert limiter.hit("b") == 0.0  # other clients are unaffected
    clock.t += 1.0
    assert limiter.hit("a") == 0.0
    assert limiter.hit("a") > 0.0


def test_denied_hits_do_not_drain_further() -> None:
    clock = Clock()
    limiter = RateLimiter(2, clock=clock)  # one token per 30 s
    limiter.hit("a"), limiter.hit("a")
    first = limiter.hit("a")
    assert first == limiter.hit("a") == 30.0
    clock.t += 30.0
    assert limiter.hit("a") == 0.0


def test_zero_means_off() -> None:
    limiter = RateLimiter(0)
    assert not limiter.enabled
    assert all(limiter.hit("a") == 0.0 for _ in range(1000))


def test_bounded_number_of_clients() -> None:
    clock = Clock()
    limiter = RateLimiter(1, max_clients=3, clock=clock)
    for c in "abcd":
        limiter.hit(c)
    assert len(limiter._buckets) == 3
    assert limiter.hit("a") == 0.0  # evicted, so it starts with a full bucket again
