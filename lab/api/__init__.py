"""REST API v1: plain Django views returning JSON (lab/api/views.py), documented in openapi.py."""
