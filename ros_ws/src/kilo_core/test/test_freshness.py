from kilo_core.core.freshness import earliest, Freshness


def test_Freshness_never_seen_is_stale_without_age() -> None:
    fresh = Freshness(500)
    assert not fresh.fresh(10.0)
    assert fresh.age_ms(10.0) is None
    assert not fresh.update(10.0)
    assert not fresh.lost


def test_Freshness_is_fresh_up_to_ttl_inclusive() -> None:
    fresh = Freshness(500)
    fresh.mark(1.0)
    assert fresh.fresh(1.5)
    assert not fresh.fresh(1.5001)
    assert fresh.age_ms(1.25) == 250


def test_Freshness_reports_loss_once_and_clears_on_receipt() -> None:
    fresh = Freshness(500)
    fresh.mark(1.0)
    assert not fresh.update(1.4)
    assert fresh.update(1.6)
    assert fresh.lost
    assert not fresh.update(1.7)
    fresh.mark(1.8)
    assert not fresh.lost


def test_Freshness_expires_after_its_ttl_while_fresh_and_has_no_deadline_otherwise() -> None:
    fresh = Freshness(500)
    assert fresh.expires_after(0.0) is None
    fresh.mark(1.0)
    assert fresh.expires_after(1.2) == 1.5
    assert fresh.fresh(1.5) and not fresh.fresh(1.5 + 1e-9)
    assert fresh.expires_after(1.6) is None


def test_earliest_ignores_unset_deadlines() -> None:
    assert earliest([None, 2.0, 1.5, None]) == 1.5
    assert earliest([None, None]) is None
