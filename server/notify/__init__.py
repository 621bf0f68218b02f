"""Messages to citizens' phones: a durable outbox, its sender, and the channels behind one interface
(docs/notifications.md)."""

from server.notify.channel import Channel, SendFailed
from server.notify.gammu import GammuSmsdChannel, decode_smsbackup
from server.notify.notifier import OUTBOX_FILE, Notifier
from server.notify.outbox import Outbox
from server.notify.zalo import ZaloOAChannel

__all__ = ["Channel", "SendFailed", "GammuSmsdChannel", "decode_smsbackup", "Notifier", "OUTBOX_FILE", "Outbox",
           "ZaloOAChannel"]
