"""Authentication factors: the password (``pwd``) and the TOTP one-time code (``otp``).

Names follow RFC 8176 §2 (Authentication Method Reference values). Each module is pure: secrets,
codes and times in, answers out; storage (and the atomic "this TOTP step is used" update) is the
caller's.
"""
