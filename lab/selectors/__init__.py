"""Reads: queries shaped for pages and the API (HackSoft styleguide: writes in services, reads here)."""
