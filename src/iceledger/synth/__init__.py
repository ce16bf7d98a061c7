"""Synthetic ICE FOIA releases, labelled synthetic wherever they appear."""
