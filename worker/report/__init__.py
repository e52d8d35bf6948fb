"""Reports: compliance, the at-risk queue, a ticket's timeline, contract allowances.

The computation (compliance.py, at_risk.py, timeline.py, allowances.py) is pure: policy, evaluated
SLAs and stored rows in, report rows out. queries.py loads stored state; render.py and plot.py
turn rows into tables, JSON, CSV and a chart; the CLI and the API routes only wire them up.
"""
