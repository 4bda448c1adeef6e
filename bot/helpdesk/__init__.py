"""The helpdesks Seam works with: the protocol and plug-in description every adapter provides (base.py), the
registry that picks one by `HELPDESK` (registry.py), and one folder per helpdesk (zendesk/)."""
