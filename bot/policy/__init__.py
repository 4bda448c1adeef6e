"""The routing policy: from a ticket and the engine's assessment to resolve, draft or escalate (decide.py), with
the six triggers (triggers.py, tone.py, keywords.py), the exclusion rules (exclusions.py) and the settings they
are tuned with (settings.py)."""
