"""Text filters: Gopher quality and repetition, C4 and FineWeb line rules, fastText, language ID."""
