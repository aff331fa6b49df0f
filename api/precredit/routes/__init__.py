"""The pre-credit capability's HTTP routes."""
