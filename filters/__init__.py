"""Scoring stages (text, image, video): they add score columns and drop reasons, never delete rows."""
