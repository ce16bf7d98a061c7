"""ICE's biweekly detention-statistics workbooks: fetch, parse, check, compare."""
