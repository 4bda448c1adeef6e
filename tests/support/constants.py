"""The fixed values every test deployment shares: the repository root, the Slack and Zendesk signing secrets
the fakes and `serve` agree on, the escalation channel and the id of the customer the fake Zendesk knows.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SLACK_SECRET = "slack-signing-secret-for-tests"
ZENDESK_SECRET = "zendesk-webhook-secret-for-tests"
CHANNEL = "C0ESCALATE"
CUSTOMER_ID = 1001
