"""A bank's pre-credit question: authorisations, published profiles, decisions, reviews and the regulator's page."""
