"""Working from files, without Slack or a helpdesk: replaying tickets through the engine and policy
(simulate.py), writing the report (report.py), and importing spreadsheets into ticket JSONL (importers.py;
each helpdesk's own dump importer lives in its folder under bot/helpdesk/)."""
