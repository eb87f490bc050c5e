"""Where :class:`Delivery` was defined before the consumer engine got its package
(``streamsink._consuming``); kept so imports of ``streamsink._delivery`` go on working."""

from __future__ import annotations

from ._consuming._delivery import Delivery

__all__ = ["Delivery"]
