"""Shared test set-up."""

# Load the system SQLite before any test module imports ecCodes (see workflow/wxpipe/__init__.py).
import sqlite3  # noqa: F401
