"""Support policies: the book in force, its last good copy in the database, reloads."""
