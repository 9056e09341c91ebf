"""Wonkalytics: LLM analytics in your own SQL database."""
