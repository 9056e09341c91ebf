"""Compatibility home of :class:`~wonkalytics.interaction.Interaction` (it lives below every stage now)."""

from wonkalytics.interaction import Api, Interaction, Status, new_event_id

__all__ = ["Api", "Interaction", "Status", "new_event_id"]
