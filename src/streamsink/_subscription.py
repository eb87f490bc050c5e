"""Where :class:`Subscription` was defined before the consumer engine got its package
(``streamsink._consuming``); kept so imports of ``streamsink._subscription`` go on working."""

from __future__ import annotations

from ._consuming import Subscription, SubscriptionStatistics

__all__ = ["Subscription", "SubscriptionStatistics"]
