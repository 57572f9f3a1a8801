"""The Textual app: it turns engine events into messages and user actions into engine commands."""
