"""Interop tests against a real Better Auth server (Node); see README.md here."""
