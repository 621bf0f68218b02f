"""Response bodies shared by more than one router (tickets and devices both answer with a ticket)."""

from pydantic import BaseModel


class TicketOut(BaseModel):
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
    token: str | None = None
    tracking_url: str | None = None
