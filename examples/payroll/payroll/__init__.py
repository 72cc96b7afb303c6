"""A tiny payroll service: a Flask API of its own and a plain requests client for a bank API."""
