"""The Slack and HTTP wiring: the Bolt app and its listeners, the helpdesk webhook endpoint and the web server.

Listeners stay thin: they `ack()` first and hand the work to `bot/` through the `Services` found in the Bolt
context (never a global).
"""
