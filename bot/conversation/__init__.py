"""The conversation: the road every inbound message takes (`loop.Conversation`)."""

from bot.conversation.loop import Conversation, Handled
from bot.engine.plan import InboundMessage, Outcome

__all__ = ["Conversation", "Handled", "InboundMessage", "Outcome"]
