"""The per-channel pacer as plain arithmetic on a fake clock."""

from __future__ import annotations

import pytest

from bot.pacing import ChannelPacer


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_a_burst_goes_at_once_and_the_rest_one_per_second_in_order():
    clock = Clock()
    pacer = ChannelPacer(rate=1.0, burst=3, clock=clock, sleep=clock.sleep)
    sent_at = []
    for _ in range(6):
        pacer.wait("C1")
        sent_at.append(round(clock.now - 100.0, 6))
    assert sent_at == [0.0, 0.0, 0.0, 1.0, 2.0, 3.0]


def test_channels_are_paced_separately_and_idle_time_refills_the_burst():
    clock = Clock()
    pacer = ChannelPacer(rate=2.0, burst=2, clock=clock, sleep=clock.sleep)
    assert [pacer.reserve("A"), pacer.reserve("A"), pacer.reserve("A")] == [0.0, 0.0, 0.5]
    assert pacer.reserve("B") == 0.0
    clock.now += 10
    assert [pacer.reserve("A"), pacer.reserve("A")] == [0.0, 0.0]


def test_three_hundred_posts_take_about_three_hundred_seconds_at_slacks_pace():
    clock = Clock()
    pacer = ChannelPacer(rate=1.0, burst=4, clock=clock, sleep=clock.sleep)
    for _ in range(300):
        pacer.wait("C1")
    assert clock.now - 100.0 == pytest.approx(296.0)


def test_nonsense_settings_are_refused():
    with pytest.raises(ValueError):
        ChannelPacer(rate=0, burst=1)


def test_the_zendesk_adapter_keeps_under_both_of_zendesks_limits(fake_zendesk):
    import httpx

    from bot.helpdesk.zendesk.adapter import ZendeskAdapter

    clock = Clock()
    fake_zendesk.add_user(id=5, name="c", email="c@example.com")
    fake_zendesk.add_ticket(id=1, subject="s", requester_id=5, comments=[{"author_id": 5, "body": "hi"}])
    adapter = ZendeskAdapter(httpx.Client(base_url=fake_zendesk.url, auth=fake_zendesk.auth), webhook_secret="s",
                             agent_url="https://acme.zendesk.com",
                             pacer=ChannelPacer(rate=400 / 60, burst=2, clock=clock, sleep=clock.sleep),
                             update_pacer=ChannelPacer(rate=100 / 60, burst=1, clock=clock, sleep=clock.sleep))
    for _ in range(3):
        adapter.add_note("1", "note")
    # Three updates: the update limit (one every 0.6 s) is the tighter one.
    assert clock.now - 100.0 == pytest.approx(1.2)
    assert len(fake_zendesk.calls_to("update_ticket")) == 3
