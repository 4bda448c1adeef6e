"""Seam's core: configuration, store, decision engine, helpdesk adapters, Slack message builders, simulation
and the command line. Nothing here imports the Slack wiring in `handlers/`.
"""

__version__ = "0.1.0"
