"""Triage: risk, toxicity and PII assessment of every message.

Importing this package (or ``triage.engine``) must stay cheap: ML libraries are
imported lazily inside ``triage.model`` only.
"""
