"""Talking to Slack: the Web API client (client.py), the Block Kit builders (blocks.py, pure functions), and the
poster (poster.py) that puts escalations in channels exactly once and keeps their messages up to date."""
