"""Orchestration: what happens to a ticket event (pipeline.py: fetch, decide, resolve or escalate), to an agent's
click (actions.py: claim, approve, edit, reject, retry), and to a manager's command (controls.py: /escalation,
the App Home's settings and figures). Flows call the store, the helpdesk, the engine and the Slack poster; they
hold no SQL, no HTTP and no Block Kit of their own."""
