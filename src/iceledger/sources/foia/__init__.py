"""Individual-level ICE FOIA records: read, type, check, load, derive."""
