"""One way in for a satisfaction rating, whatever carried it (the pad over HTTP or MQTT, the
citizen's tracking page): the engine records it or refuses it, and a refusal is counted.

Why count refusals: a pad that rates before service, twice, for another counter or with a level
the form does not have is either broken or misused, and the manager only learns of it if the
refusals are visible (``luot_ratings_refused`` in /metrics, the "refused ratings" lines of the
satisfaction report). The refusal is recorded as its own event (``feedback.refused``: the
refusal code, the device, the counter, the source) after the refused command changed nothing,
so no part of the refused rating is ever stored.
"""

from __future__ import annotations

import logging
from typing import Iterable

from server.engine import QueueError
from server.service import CentreService

log = logging.getLogger(__name__)

REFUSAL_WORDS = {
    "not_finished": ("Đánh giá trước khi được phục vụ xong", "Rated before the service ended"),
    "already_rated": ("Đánh giá lần thứ hai", "Rated a second time"),
    "wrong_counter": ("Đánh giá cho quầy khác", "Rated for another counter"),
    "rating": ("Mức đánh giá không có", "Unknown level"),
    "rating_scale": ("Thang đánh giá không có", "Unknown scale"),
    "rating_reason": ("Lý do không hợp lệ", "Invalid reasons"),
    "ticket_not_found": ("Vé không có trong ngày", "No such ticket today"),
}
"""What each refusal code means, for the report's rows (codes not listed show as they are)."""


async def rate(service: CentreService, ticket_id: str, rating: int, *, device: str | None, counter: int | None,
               scale: int, reasons: Iterable[str], source: str, actor: str) -> None:
    """Record one rating, or count its refusal and raise the engine's QueueError unchanged."""
    reasons = list(reasons)
    try:
        await service.run(lambda e, now: (None, e.record_feedback(ticket_id, rating, device, counter, now, scale=scale,
                                                                  reasons=reasons, source=source)), actor=actor)
    except QueueError as refused:
        try:
            await service.run(lambda e, now: (None, e.refuse_feedback(refused.code, device, counter, now, source=source,
                                                                      ticket_id=ticket_id)), actor=actor)
        except QueueError as error:  # past the day's cap, or a clock the engine distrusts: refused all the same
            log.warning("could not count a refused rating (%s): %s", refused.code, error.message_en)
        raise
