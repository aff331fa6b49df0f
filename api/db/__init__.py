"""The platform's database: API clients, authorisations, published profiles, decisions."""
