"""DeliveryKey: the entry id that nack and touch take, with the delivery count it names."""

from __future__ import annotations

import pickle

import pytest

from streamsink.backend import DeliveryKey, Record


def test_a_key_is_its_entry_id_with_the_delivery_count() -> None:
    key = DeliveryKey.of(Record("5-0", "n", b"{}", None, 3))
    assert (key, key.delivery_count) == ("5-0", 3)
    assert isinstance(key, str)
    assert hash(key) == hash("5-0")
    assert type(key.entry_id) is str
    assert type(str(key)) is str
    assert str(key) == "5-0"
    assert repr(key) == "DeliveryKey('5-0', 3)"
    # Two deliveries of one entry compare equal: a backend telling them apart reads the count.
    assert DeliveryKey("5-0", 1) == DeliveryKey("5-0", 2)


def test_a_key_is_immutable_and_pickles_with_its_count() -> None:
    key = DeliveryKey("7-1", 2)
    with pytest.raises(AttributeError, match="immutable"):
        key.delivery_count = 5  # type: ignore[misc]
    again = pickle.loads(pickle.dumps(key))
    assert type(again) is DeliveryKey
    assert (again, again.delivery_count) == ("7-1", 2)
