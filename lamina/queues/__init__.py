"""Lamina's own queues, compatible with SQS: durable in the shared database, with visibility
timeouts, delays, retention, receive counts and redrive to a dead-letter queue.

A leaf package: it knows nothing of functions; invoke/ uses it for DLQs and destinations, api/
serves it as SQS.
"""

from lamina.queues.model import Queue, queue_arn
from lamina.queues.polling import Queues
from lamina.queues.store import NewMessage, ReceivedMessage, SentMessage

__all__ = ["NewMessage", "Queue", "Queues", "ReceivedMessage", "SentMessage", "queue_arn"]
