"""Helpers for tests and local experiments (tiny random Hugging Face model folders); imports nothing heavy."""
