"""The change feed's keyed cache (common.keyed_cache.KeyedCache): a value kept until a change of
its key is heard, everything dropped on a change of unknown extent, nothing kept while the
feed can not hear every change, and never a value loaded while a change arrived."""

from common.changes import KEY_PAYLOAD, Subscription
from common.keyed_cache import KeyedCache


class Feed:
    """A change feed whose changes the test makes: mark() as the listener does."""

    def __init__(self):
        self.hearing = True
        self.subscriptions = []

    def subscribe(self, channel, *, on_key=None):
        subscription = Subscription(self, channel, on_key)
        subscription.dirty = False
        self.subscriptions.append(subscription)
        return subscription

    def changed(self, subscription):
        if subscription.dirty:
            subscription.dirty = False
            return True
        return False

    def instant(self, channel):
        return self.hearing

    def mark(self, channel, payload=None):
        key = payload[len(KEY_PAYLOAD):] if payload and payload.startswith(KEY_PAYLOAD) else None
        for subscription in self.subscriptions:
            subscription._mark(key)


class Store:
    def __init__(self):
        self.rows = {"a": "a1", "b": "b1"}
        self.loads = 0
        self.during_load = None

    def load(self, key):
        self.loads += 1
        value = self.rows.get(key)
        if self.during_load:
            self.during_load()
        return value


def cache(size=100):
    feed, store = Feed(), Store()
    return feed, store, KeyedCache("ch", size=size, changes=feed)


def test_a_value_is_loaded_once_and_kept_until_its_key_changes():
    feed, store, values = cache()
    assert [values.get("a", store.load) for _ in range(5)] == ["a1"] * 5
    assert values.get("b", store.load) == "b1"
    assert store.loads == 2
    store.rows["a"] = "a2"
    feed.mark("ch", KEY_PAYLOAD + "a")
    assert values.get("a", store.load) == "a2"
    assert values.get("b", store.load) == "b1"
    assert store.loads == 3  # b was kept


def test_a_change_of_unknown_extent_drops_every_value():
    feed, store, values = cache()
    values.get("a", store.load), values.get("b", store.load)
    store.rows.update(a="a2", b="b2")
    feed.mark("ch", "approvals_approvalrequest")  # a table's name: anything may have changed
    assert (values.get("a", store.load), values.get("b", store.load)) == ("a2", "b2")


def test_a_value_loaded_while_a_change_arrived_is_not_kept():
    feed, store, values = cache()

    def changed_meanwhile():  # committed after the load's read, heard before it is kept
        store.rows["a"] = "a2"
        feed.mark("ch", KEY_PAYLOAD + "a")

    store.during_load = changed_meanwhile
    assert values.get("a", store.load) == "a1"  # what the read saw
    store.during_load = None
    assert values.get("a", store.load) == "a2"


def test_nothing_is_kept_while_the_feed_can_not_hear_every_change():
    feed, store, values = cache()
    values.get("a", store.load)
    feed.hearing = False  # the listener is down, or behind a pooler
    store.rows["a"] = "a2"  # and its notification is lost
    assert [values.get("a", store.load) for _ in range(3)] == ["a2"] * 3
    assert store.loads == 4 and len(values) == 1  # every get read the store; nothing new kept


def test_the_cache_is_bounded_and_keeps_no_none():
    feed, store, values = cache(size=3)
    store.rows = {key: key.upper() for key in "abcdefg"}
    for key in "abcdefg":
        assert values.get(key, store.load) == key.upper()
    assert len(values) == 3
    assert values.get("missing", store.load) is None
    assert values.get("missing", store.load) is None
    assert store.loads == 9 and len(values) == 3
