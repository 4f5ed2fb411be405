"""Safeguards against misuse of generated media: invisible watermarks (more layers to come: issue 20)."""
