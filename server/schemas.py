"""Response bodies shared by more than one router (tickets and devices both answer with a ticket)."""

from pydantic import BaseModel


class WaitWords(BaseModel):
    """How the wait is told (server.estimates.wait_view): the kiosk's ticket and the tracking page
    say the same words, so both answers carry these fields from one place."""

    wait_range_minutes: list[int] | None = None  # [lo, hi]: the range the citizen is told
    expected_at: str | None = None  # expected call time, centre's local time
    wait_text: str | None = None  # "khoảng 20-35 phút", "sau giờ nghỉ trưa, khoảng 13:20"
    wait_text_en: str | None = None
    after_closing: bool = False  # unlikely to be served before today's closing


class TicketOut(WaitWords):
    id: str
    number: int
    group: str
    group_name: str
    group_name_en: str
    letter: str
    priority: bool
    status: str
    counter: int | None
    counters: list[int]
    ahead: int
    wait_minutes: float | None
    calls: int
    issued_at: str
    called_at: str | None
    offline: bool
    booking: str | None = None  # "remote" or "appointment" for a ticket from a booking (docs/bookings.md)
    booking_id: str | None = None
    checked_in: bool = True  # false only for a remote number that has not checked in
    held_until: str | None = None  # while a remote number's turn has come before its check-in
    token: str | None = None
    tracking_url: str | None = None
    returns_dossier: str | None = None  # a results ticket: the dossier code the citizen came back for
    appointment: str | None = None  # that dossier's appointment date (YYYY-MM-DD), shown on screen and ticket
    return_days: int | None = None  # days after (>0) or before (<0) the appointment the citizen came
