"""Shared by every capability: the clock, limits, the kinds of refusal and the edge's statuses, the access log, metrics."""
