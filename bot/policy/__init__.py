"""The routing policy: from a ticket and the engine's assessment to resolve, draft or escalate (decide.py), with
the triggers (triggers.py; tone.py reads tone, spelling.py forgives typos in requests for a person, keywords.py
turns config keywords into patterns), the exclusion rules (exclusions.py), the settings they are tuned with
(settings.py), and choosing the auto threshold on evidence (thresholds.py)."""
